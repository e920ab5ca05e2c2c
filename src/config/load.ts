/**
 * Entry points: config text or file -> LoadResult. Pure apart from reading
 * the file; never throws; nothing is returned as `ok` unless the whole
 * document is valid.
 */
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Config, ConfigIssue, LoadResult } from './types.js';
import { parseJson5 } from './parse.js';
import { Ctx, readObject } from './readers.js';
import { ROOT_SPEC } from './schema.js';
import { build, crossCheck } from './validate.js';
import { describe } from './suggest.js';

/**
 * At most this many issues are returned (sorted by position), then one
 * "… and N more" issue: a file of 100,000 wrong values is fully checked, but
 * the operator's terminal is not flooded.
 */
export const MAX_ISSUES = 1000;

/** Files larger than this are refused before reading: a config is kilobytes. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Freeze an object graph (the Config is a tree: no cycles to worry about). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function failure(issues: ConfigIssue[]): LoadResult {
  const sorted = issues.slice().sort((a, b) => a.line - b.line || a.column - b.column);
  if (sorted.length > MAX_ISSUES) {
    const next = sorted[MAX_ISSUES]!;
    sorted.length = MAX_ISSUES;
    sorted.push({ ...next, message: `… and ${issues.length - MAX_ISSUES} more issues` });
  }
  return deepFreeze({ ok: false, issues: sorted });
}

function one(file: string, message: string, line = 1, column = 1): LoadResult {
  return failure([{ file, line, column, message }]);
}

function load(text: string, file: string): LoadResult {
  const parsed = parseJson5(text);
  if (!parsed.ok) return one(file, parsed.message, parsed.pos.line, parsed.pos.column);
  const body = parsed.body;
  if (body.type !== 'Object') {
    return one(file, `the config must be an object { listeners: [...], upstreams: {...} } (got ${describe(body)})`, body.loc.start.line, body.loc.start.column);
  }
  const ctx = new Ctx(file, file === '' ? process.cwd() : dirname(resolve(file)));
  const root = readObject(body, '', ctx, ROOT_SPEC)!;
  const names = crossCheck(root, ctx);
  if (ctx.issues.length > 0) return failure(ctx.issues);
  const config: Config = build(root, names, file);
  return deepFreeze({ ok: true, config });
}

/**
 * Parse and validate config text.
 *
 * @param text JSON5 source.
 * @param file Name used in issues (as given) and whose folder relative paths
 *   (`log.access`, `control.socket`, `stateFile`) are resolved against; ''
 *   for in-memory text (paths then resolve against the working directory).
 * @returns `{ok: true, config}` with a fully-defaulted, deeply frozen Config,
 *   or `{ok: false, issues}` with every problem, sorted by line and column.
 *   Never throws.
 */
export function loadConfigText(text: string, file: string): LoadResult {
  try {
    if (typeof text !== 'string') return one(String(file), 'config text is not a string');
    return load(text, file);
  } catch (e) {
    // A bug of ours must still come out as an issue: --check and reload rely on never throwing.
    return one(String(file), `internal error while validating: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Read and validate a config file. A read error (missing file, permissions,
 * a directory) is one issue at 1:1 carrying the OS message. Never rejects.
 */
export async function loadConfigFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_FILE_BYTES) return one(path, `config file too large (${size} bytes, at most ${MAX_FILE_BYTES})`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    return one(path, `cannot read config: ${e instanceof Error ? e.message : String(e)}`);
  }
  return loadConfigText(text, path);
}
