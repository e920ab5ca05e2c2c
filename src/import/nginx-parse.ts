/**
 * A tokenizer and parser for nginx configuration files, following nginx's
 * own reader (ngx_conf_read_token): words separated by blanks, `;` ends a
 * directive, `{ }` delimit blocks, `#` starts a comment at the start of a
 * word, single and double quotes group a word, backslash escapes `\" \' \\`
 * and `\t \r \n` (any other `\x` is kept as written), `${var}` keeps its
 * braces. `loadNginxTree` reads a file and splices its `include`s in place.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ERR_IMPORT, ImportError, isLbError } from '../core/errors.js';


/** One lexical token. Words carry their unescaped text and the source as written. */
export interface Token {
  readonly kind: 'word' | ';' | '{' | '}';
  /** Unescaped, unquoted text (for punctuation: the character). */
  readonly text: string;
  /** The token exactly as written in the file. */
  readonly raw: string;
  /** True when the word was written in quotes. */
  readonly quoted: boolean;
  /** 1-based line where the token starts. */
  readonly line: number;
  /** Offset of the token's first character in the text. */
  readonly offset: number;
}

/** Where a directive was read from: the path for errors/warnings and the one for output comments. */
export interface Source {
  /** Path as shown in errors and warnings (as given, or relative to the working directory). */
  readonly file: string;
  /** Path as shown in generated comments (relative to the imported main file's folder). */
  readonly ref: string;
}

/** One directive: `name args...;` or `name args... { block }`. */
export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  /** The tokens as written (name first), for "as written" comments. */
  readonly raw: readonly string[];
  readonly line: number;
  /** Line of the closing `}` for blocks, else the line of the `;`. */
  readonly endLine: number;
  readonly src: Source;
  /** Present for block directives (`events {}`, `upstream x {}`). */
  readonly block?: Directive[];
}

const BLANK = new Set([' ', '\t', '\r', '\n', '\f', '\v']);
/** After a closing quote nginx wants a blank, `;`, `{` or `)`. */
const AFTER_QUOTE = new Set([...BLANK, ';', '{', ')']);
/** Escapes nginx replaces in every word; any other `\x` stays as both characters. */
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', "'": "'", '\\': '\\', t: '\t', r: '\r', n: '\n' };

/**
 * Split nginx config text into tokens.
 *
 * @param text file contents.
 * @param file path for error messages.
 * @throws ImportError on an unterminated quote (at the opening quote's line)
 *   or a quote followed by something other than a blank, `;`, `{` or `)`.
 */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const ch = text[i]!;
    if (BLANK.has(ch)) {
      if (ch === '\n') line++;
      i++;
    } else if (ch === '#') {
      while (i < n && text[i] !== '\n') i++;
    } else if (ch === ';' || ch === '{' || ch === '}') {
      out.push({ kind: ch, text: ch, raw: ch, quoted: false, line, offset: i });
      i++;
    } else {
      const start = i;
      const startLine = line;
      const quote = ch === '"' || ch === "'" ? ch : '';
      let value = '';
      if (quote !== '') i++;
      for (;;) {
        if (i >= n) {
          if (quote !== '') throw new ImportError(file, startLine, `unterminated ${quote === '"' ? 'double' : 'single'} quote (opened here, never closed)`);
          break;
        }
        const c = text[i]!;
        if (c === '\\' && i + 1 < n) {
          const next = text[i + 1]!;
          if (next === '\n') line++;
          value += ESCAPES[next] ?? c + next;
          i += 2;
          continue;
        }
        if (quote !== '' && c === quote) {
          i++;
          if (i < n && !AFTER_QUOTE.has(text[i]!)) throw new ImportError(file, line, `unexpected "${text[i]}" after a quoted string (missing blank?)`);
          break;
        }
        if (quote === '') {
          if (BLANK.has(c) || c === ';' || c === '{') break;
          if (c === '$' && text[i + 1] === '{') {
            // `${name}`: the brace belongs to the variable, as in nginx.
            value += '${';
            i += 2;
            continue;
          }
        }
        if (c === '\n') line++;
        value += c;
        i++;
      }
      out.push({ kind: 'word', text: value, raw: text.slice(start, i), quoted: quote !== '', line: startLine, offset: start });
    }
  }
  return out;
}

/**
 * Directive names that, when they start a new line inside an unfinished
 * directive, almost surely mean the previous line lacks its `;`
 * (`server a:1` newline `server b:2;`). Only names that are never values.
 */
const DIRECTIVE_NAMES = new Set([
  'upstream', 'server', 'listen', 'proxy_pass', 'check', 'check_http_send', 'check_http_expect_alive', 'ip_hash',
  'least_conn', 'hash', 'proxy_connect_timeout', 'proxy_timeout', 'proxy_read_timeout', 'proxy_send_timeout',
  'proxy_protocol', 'allow', 'deny', 'include', 'user', 'worker_processes', 'events', 'http', 'stream', 'tcp',
  'error_log', 'access_log', 'pid', 'so_keepalive', 'tcp_nodelay', 'resolver', 'worker_connections', 'zone',
]);

function shown(tokens: readonly Token[]): string {
  const s = tokens.map((t) => t.raw).join(' ');
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parse nginx config text into a directive tree (includes not followed).
 *
 * @param text file contents.
 * @param src where the text came from (errors use `src.file`).
 * @throws ImportError with the line to fix: a directive missing its `;`
 *   (reported at its last word), a `}` with no open block, a block never
 *   closed (reported at the line that opened it), a stray `;` or `{`, or a
 *   tokenizer error.
 */
export function parseNginx(text: string, src: Source): Directive[] {
  const tokens = tokenize(text, src.file);
  const root: Directive[] = [];
  const stack: Array<{ d: Directive; list: Directive[]; indent: string }> = [];
  // Blocks whose "}" sits at another indentation than their opening line: the likely culprit when braces don't balance.
  const misaligned: Array<{ d: Directive; closeLine: number }> = [];
  let pending: Token[] = [];
  const list = (): Directive[] => (stack.length > 0 ? stack[stack.length - 1]!.list : root);
  const indentAt = (offset: number): string | undefined => {
    const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
    const lead = text.slice(lineStart, offset);
    return /^[ \t]*$/.test(lead) ? lead : undefined;
  };
  const missingSemicolon = (before: string): ImportError => {
    const last = pending[pending.length - 1]!;
    return new ImportError(src.file, last.line, `missing ";" after "${shown(pending)}" (${before})`);
  };
  const make = (endLine: number, block?: Directive[]): Directive => ({
    name: pending[0]!.text,
    args: pending.slice(1).map((t) => t.text),
    raw: pending.map((t) => t.raw),
    line: pending[0]!.line,
    endLine,
    src,
    ...(block ? { block } : {}),
  });
  for (const t of tokens) {
    if (t.kind === 'word') {
      const prev = pending[pending.length - 1];
      if (prev !== undefined && t.line > prev.line && !t.quoted && DIRECTIVE_NAMES.has(t.text)) {
        throw missingSemicolon(`the next line starts "${t.raw}"`);
      }
      pending.push(t);
    } else if (t.kind === ';') {
      if (pending.length === 0) throw new ImportError(src.file, t.line, 'unexpected ";" (no directive before it)');
      list().push(make(t.line));
      pending = [];
    } else if (t.kind === '{') {
      if (pending.length === 0) throw new ImportError(src.file, t.line, 'unexpected "{" (no directive name before it)');
      const d = make(t.line, []);
      list().push(d);
      stack.push({ d, list: d.block!, indent: indentAt(pending[0]!.offset) ?? '' });
      pending = [];
    } else {
      if (pending.length > 0) throw missingSemicolon(`before "}" at line ${t.line}`);
      const open = stack.pop();
      if (open === undefined) {
        const m = misaligned[0];
        const hint = m === undefined ? '' : `; probably the "}" at line ${m.closeLine}, which closes "${m.d.name} {" (line ${m.d.line}) at another indentation`;
        throw new ImportError(src.file, t.line, `unexpected "}": no block is open here (one "}" too many${hint})`);
      }
      (open.d as { endLine: number }).endLine = t.line;
      const closeIndent = indentAt(t.offset);
      if (closeIndent !== undefined && closeIndent !== open.indent && open.d.line !== t.line) misaligned.push({ d: open.d, closeLine: t.line });
    }
  }
  if (pending.length > 0) throw missingSemicolon('at end of file');
  const unclosed = stack[stack.length - 1];
  if (unclosed !== undefined) {
    // nginx reports the end of file; the useful line is the block that lacks its "}".
    const guess = misaligned[0];
    const d = guess?.d ?? unclosed.d;
    const why = guess === undefined ? '' : ` (the "}" at line ${guess.closeLine} is indented for an outer block)`;
    throw new ImportError(src.file, d.line, `"${[d.name, ...d.args].join(' ')} {" is never closed: missing "}"${why}`);
  }
  return root;
}

/** A directive as written, on one line: `name arg "quoted arg";` or `name args { … }` for blocks. */
export function asWritten(d: Directive): string {
  const s = d.raw.join(' ').replace(/\r?\n/g, '\\n').replace(/[\u2028\u2029]/g, ' ');
  if (d.block === undefined) return `${s};`;
  const inner = d.block.length === 1 && d.block[0]!.block === undefined ? ` ${asWritten(d.block[0]!)} ` : d.block.length === 0 ? ' ' : ' … ';
  return `${s} {${inner}}`;
}

/** One `include` as followed, for the output's header. */
export interface IncludeInfo {
  /** The pattern as written and where (`nginx.conf:12`). */
  readonly pattern: string;
  readonly at: string;
  /** Matched files, relative to the main file's folder. */
  readonly files: readonly string[];
}

/** A glob segment (`*`, `?`, `[a-z]`, `[!x]`) as a RegExp; `*` and `?` skip dot files, as glob(3) does. */
function segmentRe(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    const close = c === '[' ? seg.indexOf(']', i + 2) : -1;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (close > 0) {
      const body = seg.slice(i + 1, close);
      const neg = body.startsWith('!');
      re += `[${neg ? '^' : ''}${(neg ? body.slice(1) : body).replace(/[\\^\]]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Expand an absolute glob pattern into existing paths, sorted as nginx (glob(3)) does. */
async function glob(pattern: string): Promise<string[]> {
  let paths = [pattern.startsWith('/') ? '/' : ''];
  for (const seg of pattern.split('/').filter((x) => x !== '')) {
    if (!/[*?[]/.test(seg)) {
      paths = paths.map((p) => join(p, seg));
      continue;
    }
    const re = segmentRe(seg);
    const next: string[] = [];
    for (const p of paths) {
      const names = await readdir(p).catch(() => [] as string[]);
      next.push(...names.filter((x) => re.test(x) && (!x.startsWith('.') || seg.startsWith('.'))).sort().map((x) => join(p, x)));
    }
    paths = next;
  }
  const found: string[] = [];
  for (const p of paths) if (await stat(p).then((st) => st.isFile(), () => false)) found.push(p);
  return found;
}

/**
 * Blocks whose includes are not followed: nothing in them is translated
 * (`http { include mime.types; include sites-enabled/*; }`), so a file
 * missing on the importing machine must not stop the import.
 */
const UNFOLLOWED = new Set(['http', 'mail', 'events']);

/** How a file read fails, in words. */
function whyUnreadable(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String((e as Error).message ?? e);
}

/**
 * Read an nginx config and follow its `include`s (globs too) recursively,
 * splicing the included directives where the `include` stood.
 *
 * Relative include paths are resolved against the including file's folder.
 * (nginx itself resolves them against its prefix/conf directory; for the
 * usual layout, where nginx.conf lives in that directory, it is the same.)
 * A glob that matches nothing is fine (as in nginx); a plain path that does
 * not exist is an error. Includes inside `http {}`, `mail {}` and `events {}`
 * are not followed (nothing there is translated).
 *
 * @param file the main file; errors show paths as given (relative to the
 *   working directory when `file` is relative).
 * @throws ImportError for unreadable files, syntax errors, a bad `include`
 *   or an include cycle, at the `file:line` to fix.
 */
export async function loadNginxTree(file: string): Promise<{ tree: Directive[]; includes: IncludeInfo[] }> {
  const mainAbs = resolve(file);
  const baseDir = dirname(mainAbs);
  const display = (abs: string): string => (isAbsolute(file) ? abs : relative(process.cwd(), abs) || abs);
  const includes: IncludeInfo[] = [];
  const read = async (abs: string, chain: readonly string[]): Promise<Directive[]> => {
    const src: Source = { file: display(abs), ref: relative(baseDir, abs) || basename(abs) };
    const text = (await readFile(abs, 'utf8')).replace(/^\uFEFF/, '');
    return expand(parseNginx(text, src), src, abs, [...chain, abs]);
  };
  const expand = async (list: Directive[], src: Source, abs: string, chain: readonly string[]): Promise<Directive[]> => {
    const out: Directive[] = [];
    for (const d of list) {
      if (d.name !== 'include') {
        const follow = d.block !== undefined && !UNFOLLOWED.has(d.name);
        out.push(follow ? { ...d, block: await expand(d.block!, src, abs, chain) } : d);
        continue;
      }
      const pattern = d.args[0];
      if (d.block !== undefined || d.args.length !== 1 || pattern === undefined || pattern === '') {
        throw new ImportError(src.file, d.line, 'include takes exactly one file name or glob: include conf.d/*.conf;');
      }
      const target = resolve(dirname(abs), pattern);
      const files = /[*?[]/.test(pattern) ? await glob(target) : [target];
      includes.push({ pattern, at: `${src.ref}:${d.line}`, files: files.map((f) => relative(baseDir, f)) });
      for (const f of files) {
        if (chain.includes(f)) throw new ImportError(src.file, d.line, `include "${pattern}" includes ${display(f)} again (an include cycle)`);
        try {
          out.push(...(await read(f, chain)));
        } catch (e) {
          if (isLbError(e, ERR_IMPORT)) throw e;
          throw new ImportError(src.file, d.line, `cannot read include "${pattern}" (${display(f)}): ${whyUnreadable(e)}; relative includes are resolved against the including file's folder`);
        }
      }
    }
    return out;
  };
  try {
    return { tree: await read(mainAbs, []), includes };
  } catch (e) {
    if (isLbError(e, ERR_IMPORT)) throw e;
    throw new ImportError(display(mainAbs), 0, `cannot read: ${whyUnreadable(e)}`);
  }
}
