/**
 * JSON5 text -> momoa AST with positions, or one syntax issue with the exact
 * line:col. Never throws.
 */
import { parse, tokenize } from '@humanwhocodes/momoa';
import type { ValueNode } from '@humanwhocodes/momoa';

/**
 * Deepest nesting we accept. A real config is ~5 levels; momoa's parser is
 * recursive, so a hostile `[[[[…` would otherwise overflow the stack.
 */
export const MAX_DEPTH = 64;

/** A 1-based position as editors show it. */
export interface Pos {
  readonly line: number;
  readonly column: number;
}

export type ParseOutcome = { ok: true; body: ValueNode } | { ok: false; pos: Pos; message: string };

/** Punctuation token types momoa names in its messages, back to the character the operator typed. */
const PUNCT: Readonly<Record<string, string>> = {
  Comma: ',', Colon: ':', LBrace: '{', RBrace: '}', LBracket: '[', RBracket: ']',
};

interface MomoaError {
  message: string;
  line: number;
  column: number;
  offset: number;
}

function isMomoaError(e: unknown): e is MomoaError {
  return e instanceof Error && typeof (e as Partial<MomoaError>).line === 'number' && typeof (e as Partial<MomoaError>).offset === 'number';
}

type Expecting = 'key' | 'colon' | 'value' | 'comma' | 'unknown';

/**
 * What the grammar expected at `offset`, replayed from the tokens before it,
 * so a syntax error can say "missing comma?" or "missing colon?" rather than
 * guess. Linear in the prefix; 'unknown' if the prefix does not tokenize.
 */
function expectingAt(text: string, offset: number): Expecting {
  const stack: string[] = [];
  let state: Expecting = 'value';
  try {
    const prefix = text.slice(0, offset);
    for (const t of tokenize(prefix.endsWith('\\') ? prefix + '\n' : prefix, { mode: 'json5' })) {
      switch (t.type) {
        case 'LineComment':
        case 'BlockComment':
          break;
        case 'LBrace':
        case 'LBracket':
          stack.push(t.type);
          state = t.type === 'LBrace' ? 'key' : 'value';
          break;
        case 'RBrace':
        case 'RBracket':
          stack.pop();
          state = 'comma';
          break;
        case 'Colon':
          state = 'value';
          break;
        case 'Comma':
          state = stack[stack.length - 1] === 'LBrace' ? 'key' : 'value';
          break;
        default:
          state = state === 'key' ? 'colon' : 'comma';
      }
    }
  } catch {
    return 'unknown';
  }
  return state;
}

const EOF_MESSAGE = 'syntax error: unexpected end of file (unclosed "{", "[", string or comment?)';

/** Position just after the last non-blank character: where "end of file" errors point. */
function endOf(text: string): Pos {
  const t = text.trimEnd();
  let line = 1;
  for (let i = t.indexOf('\n'); i >= 0; i = t.indexOf('\n', i + 1)) line++;
  return { line, column: t.length - t.lastIndexOf('\n') };
}

/** Turn momoa's `Unexpected token Comma found. (1:7)` into `syntax error: unexpected ","` plus a hint. */
function syntaxMessage(e: MomoaError, text: string): string {
  const raw = e.message.replace(/\s*\(\d+:\d+\)\s*$/, '');
  if (raw.startsWith('Unexpected end of input')) return EOF_MESSAGE;
  const token = /^Unexpected token (\w+) found/.exec(raw);
  if (token !== null) {
    const type = token[1]!;
    // momoa reports a dangling "," or ":" at the end of the text as that token, not as end of file.
    if (['Comma', 'Colon', 'LBrace', 'LBracket'].includes(type) && text.slice(e.offset + 1).trim() === '') return EOF_MESSAGE;
    const expecting = expectingAt(text, e.offset);
    const hint = expecting === 'comma' && type !== 'Comma' ? ' (missing comma?)' : expecting === 'colon' && type !== 'Colon' ? ' (missing ":" after the key?)' : '';
    if (PUNCT[type] !== undefined) return `syntax error: unexpected "${PUNCT[type]}"${hint}`;
    const word = /^(?:"[^"\n]{0,40}"?|'[^'\n]{0,40}'?|[^\s,:{}[\]]{1,40})/.exec(text.slice(e.offset, e.offset + 42))?.[0] ?? '';
    const shown = /^["']/.test(word) ? word : JSON.stringify(word);
    const quoteHint = type === 'Identifier' && expecting === 'value' ? ' (strings need quotes)' : hint;
    return `syntax error: unexpected ${type.toLowerCase()} ${shown}${quoteHint}`;
  }
  const ch = /^Unexpected character '(.*)' found/s.exec(raw);
  // momoa reports reading past the end as the character U+FFFF.
  if (ch !== null && ch[1] === '\uffff') return EOF_MESSAGE;
  if (ch !== null) return `syntax error: unexpected character ${JSON.stringify(ch[1])}`;
  return `syntax error: ${raw.replace(/\.$/, '')}`;
}

/**
 * Deepest bracket nesting of `text`, skipping strings and comments. A plain
 * scan (no tokens, no allocation): a 10,000-upstream config is a megabyte, and
 * tokenizing it a second time cost as much as parsing it.
 */
function maxDepth(text: string): number {
  let depth = 0;
  let max = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x22 || c === 0x27) {
      // A string ends at its quote or, unterminated, at a line end (JSON5
      // strings hold no raw newline: parse() reports it there).
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === c || d === 0x0a) break;
      }
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      const close = text.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 1;
    }
  }
  return max;
}

/**
 * Position of the first bracket nested deeper than MAX_DEPTH, or undefined.
 * Uses momoa's iterative tokenizer, so it cannot overflow itself; a tokenizer
 * error is left for parse() to report with its own position. Only run when
 * the cheap scan finds such nesting.
 */
function tooDeep(text: string): Pos | undefined {
  if (maxDepth(text) <= MAX_DEPTH) return undefined;
  let depth = 0;
  try {
    for (const t of tokenize(text, { mode: 'json5' })) {
      if (t.type === 'LBrace' || t.type === 'LBracket') {
        if (++depth > MAX_DEPTH) return { line: t.loc.start.line, column: t.loc.start.column };
      } else if (t.type === 'RBrace' || t.type === 'RBracket') {
        depth--;
      }
    }
  } catch {
    // Syntax error: parse() reports it.
  }
  return undefined;
}

/** Parse JSON5 text; a leading BOM is dropped so columns match what editors show. */
export function parseJson5(input: string): ParseOutcome {
  const bom = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  // momoa 3.3 loops forever on a text ending in a backslash (an escape cut by
  // end of file: an editor saving mid-typing). A trailing newline is harmless
  // to every valid text and turns that into an ordinary syntax error.
  const text = bom.endsWith('\\') ? bom + '\n' : bom;
  if (text.trim() === '') return { ok: false, pos: { line: 1, column: 1 }, message: 'the config is empty: expected an object { listeners: [...], upstreams: {...} }' };
  const deep = tooDeep(text);
  if (deep !== undefined) return { ok: false, pos: deep, message: `nested too deeply (more than ${MAX_DEPTH} levels)` };
  try {
    const doc = parse(text, { mode: 'json5', ranges: false, tokens: false });
    return { ok: true, body: doc.body };
  } catch (e) {
    if (isMomoaError(e)) {
      const message = syntaxMessage(e, text);
      // momoa places some end-of-file errors on the last token; point after it, where the text stops.
      const pos = message === EOF_MESSAGE ? endOf(text) : { line: e.line, column: e.column };
      return { ok: false, pos, message };
    }
    return { ok: false, pos: { line: 1, column: 1 }, message: `cannot parse: ${e instanceof Error ? e.message : String(e)}` };
  }
}
