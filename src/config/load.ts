/**
 * Entry points: config text or file -> LoadResult. Pure apart from reading
 * the file; never throws; nothing is returned as `ok` unless the whole
 * document is valid.
 */
import { dirname, resolve } from 'node:path';
import type { Config, ConfigIssue, LoadResult } from '../core/config.js';
import { parseJson5 } from './parse.js';
import { Ctx, readObject } from './readers.js';
import { ROOT_SPEC, type RootObj } from './schema.js';
import { resolveListenHosts } from './resolve.js';
import { build, crossCheck, listenEndpoints, type Resolved } from './validate.js';
import { describe } from './suggest.js';
import { readRegularFile } from '../core/read-regular.js';

/**
 * At most this many issues are returned (sorted by position), then one
 * "… and N more" issue: a file of 100,000 wrong values is fully checked, but
 * the operator's terminal is not flooded.
 */
export const MAX_ISSUES = 1000;

/** Files larger than this are refused (at most one byte more is read): a config is kilobytes. */
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

/** Parsed and read document (per-key rules checked), or the result that ends the load. */
type Analysed = { ok: true; root: RootObj; ctx: Ctx } | { ok: false; result: LoadResult };

function analyse(text: string, file: string): Analysed {
  const parsed = parseJson5(text);
  if (!parsed.ok) return { ok: false, result: one(file, parsed.message, parsed.pos.line, parsed.pos.column) };
  const body = parsed.body;
  if (body.type !== 'Object') {
    return { ok: false, result: one(file, `the config must be an object { listeners: [...], upstreams: {...} } (got ${describe(body)})`, body.loc.start.line, body.loc.start.column) };
  }
  const ctx = new Ctx(file, file === '' ? process.cwd() : dirname(resolve(file)));
  return { ok: true, root: readObject(body, '', ctx, ROOT_SPEC)!, ctx };
}

function finish(root: RootObj, ctx: Ctx, file: string, resolved?: Resolved): LoadResult {
  const names = crossCheck(root, ctx, resolved);
  if (ctx.issues.length > 0) return failure(ctx.issues);
  const config: Config = build(root, names, file, resolved);
  return deepFreeze(ctx.warnings.length > 0 ? { ok: true, config, warnings: ctx.warnings } : { ok: true, config });
}

/** A bug of ours must still come out as an issue: --check and reload rely on never throwing. */
function internal(file: string, e: unknown): LoadResult {
  return one(String(file), `internal error while validating: ${e instanceof Error ? e.message : String(e)}`);
}

/**
 * Parse and validate config text. Pure but for the certificate, key and CA
 * files a `tls` section names (read and checked here, relative to `file`'s
 * folder): listen host names are checked for
 * form but not resolved (the native engine binds numeric addresses only);
 * a config to run comes from `loadConfigFile`, which resolves them.
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
    const a = analyse(text, file);
    return a.ok ? finish(a.root, a.ctx, file) : a.result;
  } catch (e) {
    return internal(file, e);
  }
}


/** The config file's text, or why it cannot be a config (core/read-regular.ts: regular files only, bounded). */
async function readConfig(path: string): Promise<{ text: string } | { error: string }> {
  const r = await readRegularFile(path, MAX_FILE_BYTES);
  if ('text' in r) return r;
  if ('notRegular' in r) return { error: `not a regular file: it is ${r.notRegular}; the config must be a regular file (or a symlink to one)` };
  return { error: r.tooLarge === undefined ? `config file too large (more than ${MAX_FILE_BYTES} bytes)` : `config file too large (${r.tooLarge} bytes, at most ${MAX_FILE_BYTES})` };
}

/**
 * Read and validate a config file, resolving listen host names (see
 * ./resolve.ts). A read error (missing file, permissions, a directory, a
 * FIFO or device) is one issue at 1:1 carrying the reason. Never rejects.
 */
export async function loadConfigFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    const r = await readConfig(path);
    if ('error' in r) return one(path, `cannot read config: ${r.error}`);
    text = r.text;
  } catch (e) {
    return one(path, `cannot read config: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    const a = analyse(text, path);
    if (!a.ok) return a.result;
    const resolved = await resolveListenHosts(listenEndpoints(a.root), a.ctx);
    return finish(a.root, a.ctx, path, resolved);
  } catch (e) {
    return internal(path, e);
  }
}
