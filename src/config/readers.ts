/**
 * A tiny schema walker over the momoa AST. Each reader checks one node,
 * reports problems with that node's position, and returns the converted value
 * or undefined. Walking the AST ourselves (rather than converting to a plain
 * value and validating it with zod) keeps every message at the exact key or
 * value it is about, and lets one pass report every problem at once.
 */
import type { MemberNode, ObjectNode, ValueNode } from '@humanwhocodes/momoa';
import type { ConfigIssue } from '../core/config.js';
import type { Pos } from './parse.js';
import { describe, didYouMean, quote, listChoices } from './suggest.js';
import { formatDuration, parseDuration } from './duration.js';

export type { Pos } from './parse.js';

/** Collects issues for one load. */
export class Ctx {
  readonly issues: ConfigIssue[] = [];
  /** Problems that do not stop the config (a certificate expiring soon). */
  readonly warnings: ConfigIssue[] = [];
  /** "Now" for expiry checks; tests may move it. */
  readonly now = Date.now();
  /**
   * @param file name used in issues, as the caller gave it
   * @param baseDir absolute folder that relative paths in the config are resolved against
   */
  constructor(readonly file: string, readonly baseDir: string) {}

  /**
   * Comparisons left for "did you mean" suggestions. A pathological file with
   * a million misspelt keys must stay linear: once spent, issues simply come
   * without suggestions.
   */
  private suggestBudget = 200_000;

  /** The closest candidate (see suggest.ts), or undefined; counts against the budget. */
  closest(word: string, candidates: readonly string[]): string | undefined {
    if (this.suggestBudget <= 0) return undefined;
    this.suggestBudget -= Math.min(candidates.length, 1000);
    return didYouMean(word, candidates);
  }

  /** ` (did you mean "x"?)` or '' — ready to append to a message. */
  suggest(word: string, candidates: readonly string[]): string {
    const c = this.closest(word, candidates);
    return c === undefined ? '' : ` (did you mean ${quote(c)}?)`;
  }

  /** Report `path: message` at `pos` (no prefix for the document root). */
  error(pos: Pos, path: string, message: string): void {
    this.issues.push({ file: this.file, line: pos.line, column: pos.column, message: path === '' ? message : `${path}: ${message}` });
  }

  /** Like `error`, for a problem the config still loads with. */
  warn(pos: Pos, path: string, message: string): void {
    this.warnings.push({ file: this.file, line: pos.line, column: pos.column, message: path === '' ? message : `${path}: ${message}` });
  }
}

/** Converts one node; undefined means "invalid, already reported". */
export type Reader<T> = (node: ValueNode, path: string, ctx: Ctx) => T | undefined;

/** One key of an object schema. */
export interface Field<T> {
  readonly read: Reader<T>;
  readonly required: boolean;
  /** Applied when the key is absent (never when present but invalid). */
  readonly def?: T;
}

/** A key that must be present. */
export function req<T>(read: Reader<T>): Field<T> {
  return { read, required: true };
}

/** An optional key with its default. */
export function opt<T>(read: Reader<T>, def: T): Field<T> {
  return { read, required: false, def };
}

/** An optional key without default (absent stays undefined). */
export function maybe<T>(read: Reader<T>): Field<T> {
  return { read, required: false };
}

export type Spec = Record<string, Field<any>>;
export type ValuesOf<S extends Spec> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

/** A validated object: its values plus where things are, for cross-reference messages. */
export interface Obj<S extends Spec> {
  /** Position of the opening brace (or of the shorthand string). */
  readonly pos: Pos;
  readonly path: string;
  /** Valid or defaulted values; a key is missing when absent-and-required or invalid. */
  readonly values: Partial<ValuesOf<S>>;
  /** Position of each present key's value. */
  readonly at: Partial<Record<keyof S, Pos>>;
  /** Position of each present key (its name). */
  readonly keyAt: Partial<Record<keyof S, Pos>>;
}

export function posOf(node: { loc: { start: Pos } }): Pos {
  return { line: node.loc.start.line, column: node.loc.start.column };
}

/** The key text of a member (`a` or `"a"`). */
export function keyName(m: MemberNode): string {
  return m.name.type === 'String' ? m.name.value : m.name.name;
}

/** Child path for a key; odd keys are quoted so the path stays readable. */
export function childPath(path: string, key: string): string {
  const k = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : `[${quote(key, 40)}]`;
  return path === '' ? k : k.startsWith('[') ? `${path}${k}` : `${path}.${k}`;
}

/**
 * Members of an object node with duplicate keys reported (JSON5 would let the
 * last silently win, which hides mistakes). Only the first occurrence is kept.
 */
export function uniqueMembers(node: ObjectNode, path: string, ctx: Ctx): Array<{ key: string; member: MemberNode }> {
  const seen = new Map<string, Pos>();
  const out: Array<{ key: string; member: MemberNode }> = [];
  for (const member of node.members) {
    const key = keyName(member);
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.error(posOf(member.name), path, `duplicate key ${quote(key)} (first at line ${first.line})`);
      continue;
    }
    seen.set(key, posOf(member.name));
    out.push({ key, member });
  }
  return out;
}

/** An object with exactly the keys of `spec`: unknown keys are errors with a suggestion. */
export function readObject<S extends Spec>(node: ValueNode, path: string, ctx: Ctx, spec: S): Obj<S> | undefined {
  if (node.type !== 'Object') {
    ctx.error(posOf(node), path, `must be an object (got ${describe(node)})`);
    return undefined;
  }
  const values: Record<string, unknown> = {};
  const at: Record<string, Pos> = {};
  const keyAt: Record<string, Pos> = {};
  const known = Object.keys(spec);
  // Keys already offered as "did you mean": their "missing required key" would only repeat the point.
  const suggested = new Set<string>();
  for (const { key, member } of uniqueMembers(node, path, ctx)) {
    if (!Object.hasOwn(spec, key)) {
      const close = ctx.closest(key, known);
      ctx.error(posOf(member.name), path, `unknown key ${quote(key)}${close === undefined ? '' : ` (did you mean ${quote(close)}?)`}`);
      if (close !== undefined) suggested.add(close);
      continue;
    }
    at[key] = posOf(member.value);
    keyAt[key] = posOf(member.name);
    const v = spec[key]!.read(member.value, childPath(path, key), ctx);
    if (v !== undefined) values[key] = v;
  }
  for (const key of known) {
    if (Object.hasOwn(at, key)) continue;
    const field = spec[key]!;
    if (field.required && !suggested.has(key)) ctx.error(posOf(node), path, `missing required key ${quote(key)}`);
    else if (field.def !== undefined) values[key] = field.def;
  }
  return { pos: posOf(node), path, values: values as Partial<ValuesOf<S>>, at, keyAt } as Obj<S>;
}

/** An Obj built from defaults only, for shorthands such as a server written as a plain string. */
export function defaultsObj<S extends Spec>(spec: S, pos: Pos, path: string, given: Partial<ValuesOf<S>>): Obj<S> {
  const values: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) if (field.def !== undefined) values[key] = field.def;
  Object.assign(values, given);
  const at: Record<string, Pos> = {};
  for (const key of Object.keys(given)) at[key] = pos;
  return { pos, path, values: values as Partial<ValuesOf<S>>, at, keyAt: { ...at } } as Obj<S>;
}

/** An element of an array with its position. */
export interface Item<T> {
  readonly value: T;
  readonly pos: Pos;
  readonly index: number;
}

/** An array whose elements all pass `read`; invalid elements are reported and skipped. */
export function readArray<T>(node: ValueNode, path: string, ctx: Ctx, read: Reader<T>, what = 'an array'): Array<Item<T>> | undefined {
  if (node.type !== 'Array') {
    ctx.error(posOf(node), path, `must be ${what} (got ${describe(node)})`);
    return undefined;
  }
  const out: Array<Item<T>> = [];
  node.elements.forEach((el, index) => {
    const value = read(el.value, `${path}[${index}]`, ctx);
    if (value !== undefined) out.push({ value, pos: posOf(el.value), index });
  });
  return out;
}

/** Plain array of `read` values (positions dropped). */
export function arrayOf<T>(read: Reader<T>, what?: string): Reader<T[]> {
  return (node, path, ctx) => readArray(node, path, ctx, read, what)?.map((i) => i.value);
}

export interface StrOptions {
  /** Reject ''. */
  readonly nonEmpty?: boolean;
  /** Longest accepted string, in UTF-16 units. */
  readonly max?: number;
}

export function str(opts: StrOptions = {}): Reader<string> {
  return (node, path, ctx) => {
    if (node.type !== 'String') {
      ctx.error(posOf(node), path, `must be a string (got ${describe(node)})`);
      return undefined;
    }
    if (opts.nonEmpty && node.value === '') return void ctx.error(posOf(node), path, 'must not be empty');
    if (opts.max !== undefined && node.value.length > opts.max) {
      return void ctx.error(posOf(node), path, `too long (${node.value.length} characters, at most ${opts.max})`);
    }
    return node.value;
  };
}

export function bool(): Reader<boolean> {
  return (node, path, ctx) => {
    if (node.type === 'Boolean') return node.value;
    return void ctx.error(posOf(node), path, `must be true or false (got ${describe(node)})`);
  };
}

/** An integer in [min, max]. */
export function int(min: number, max: number): Reader<number> {
  return (node, path, ctx) => {
    if (node.type !== 'Number' || !Number.isInteger(node.value)) {
      const got = node.type === 'Number' ? String(node.value) : describe(node);
      return void ctx.error(posOf(node), path, `must be an integer from ${min} to ${max} (got ${got})`);
    }
    if (node.value < min || node.value > max) {
      return void ctx.error(posOf(node), path, `must be from ${min} to ${max} (got ${node.value})`);
    }
    return node.value;
  };
}

/** One of the given strings (or `false`), with a suggestion for near misses. */
export function oneOf<const V extends string | false>(choices: readonly V[]): Reader<V> {
  const strings = choices.filter((c): c is Exclude<V, false> => c !== false);
  return (node, path, ctx) => {
    if (node.type === 'String' && (choices as readonly (string | false)[]).includes(node.value)) return node.value as V;
    if (node.type === 'Boolean' && !node.value && choices.includes(false as V)) return false as V;
    const got = node.type === 'String' ? quote(node.value) : describe(node);
    const hint = node.type === 'String' ? ctx.suggest(node.value, strings) : '';
    return void ctx.error(posOf(node), path, `must be ${listChoices(choices)} (got ${got})${hint}`);
  };
}

/** `null`, or what `read` accepts. */
export function nullable<T>(read: Reader<T>): Reader<T | null> {
  return (node, path, ctx) => (node.type === 'Null' ? null : read(node, path, ctx));
}

/** A duration (number of ms or `"5s"`-style string) within [minMs, maxMs]. */
export function duration(minMs: number, maxMs: number): Reader<number> {
  return (node, path, ctx) => {
    let ms: number | undefined;
    if (node.type === 'Number') {
      ms = parseDuration(node.value);
      if (ms === undefined) return void ctx.error(posOf(node), path, node.value < 0 ? `must not be negative (got ${node.value})` : 'must be a finite number');
    } else if (node.type === 'String') {
      ms = parseDuration(node.value);
      if (ms === undefined) {
        const hint = /^\s*\d+(\.\d+)?\s*$/.test(node.value) ? ' needs a unit:' : ':';
        return void ctx.error(posOf(node), path, `invalid duration ${quote(node.value)}${hint} use e.g. "5s", "2000ms", "10m" or a number of milliseconds`);
      }
    } else {
      return void ctx.error(posOf(node), path, `must be a duration like "5s" or a number of milliseconds (got ${describe(node)})`);
    }
    if (ms < minMs || ms > maxMs) {
      return void ctx.error(posOf(node), path, `must be from ${formatDuration(minMs)} to ${formatDuration(maxMs)} (got ${formatDuration(ms)})`);
    }
    return ms;
  };
}
