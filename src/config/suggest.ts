/**
 * Small text helpers shared by the config validator: "did you mean"
 * suggestions, safe quoting of user text in messages, and naming the JSON type
 * of a node the way an operator reads it ("a string", "an array").
 */
import { distance } from 'fastest-levenshtein';
import type { ValueNode } from '@humanwhocodes/momoa';

/**
 * Words longer than this are never compared: Levenshtein is O(n·m), and a
 * 10 MB key pasted by mistake must not make validation quadratic.
 */
const MAX_SUGGEST_LENGTH = 64;

/**
 * Above this many candidates we stop looking for a suggestion (e.g. a config
 * with thousands of upstreams): keeps validation linear in the input size.
 */
const MAX_CANDIDATES = 1000;

/**
 * The closest candidate to `word`: a case-insensitive match first, else the
 * smallest Levenshtein distance if it is <= 2 (and smaller than the word, so
 * "ab" does not suggest "xy"). Undefined when nothing is close.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > MAX_SUGGEST_LENGTH) return undefined;
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  let seen = 0;
  for (const c of candidates) {
    if (++seen > MAX_CANDIDATES) break;
    if (c === word || c.length > MAX_SUGGEST_LENGTH) continue;
    if (c.toLowerCase() === lower) return c;
    const d = distance(word, c);
    if (d < bestDistance && d < Math.max(word.length, c.length)) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** JSON-quote user text for a message, shortened so a huge value cannot flood the terminal. */
export function quote(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max - 1)}…` : s);
}

/** The JSON type of a node for "must be X (got Y)" messages. */
export function describe(node: ValueNode): string {
  switch (node.type) {
    case 'String':
      return 'a string';
    case 'Number':
      return 'a number';
    case 'Boolean':
      return node.value ? 'true' : 'false';
    case 'Null':
      return 'null';
    case 'Object':
      return 'an object';
    case 'Array':
      return 'an array';
    case 'NaN':
      return 'NaN';
    case 'Infinity':
      return 'Infinity';
  }
}

/** "a", "b" or "c" — for enum messages. */
export function listChoices(values: readonly (string | false)[]): string {
  const q = values.map((v) => (v === false ? 'false' : JSON.stringify(v)));
  if (q.length <= 1) return q.join('');
  return `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}
