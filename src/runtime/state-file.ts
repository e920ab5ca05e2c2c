/**
 * The state file (`stateFile` in the config): operator states (drain,
 * disable) that survive restarts. Written atomically (tmp file, fsync,
 * rename, fsync of the folder), so a crash at any moment leaves either the
 * old file or the new one, never a torn one. The tmp file has a random name
 * and is created exclusively (never through a planted symlink or file), mode
 * 0600. Read leniently and boundedly: a damaged, foreign or oversized file
 * costs the saved states and a warning (which never quotes the file), never
 * the start-up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import nodePath from 'node:path';
import { readRegularFileSync, type RegularRead } from '../core/read-regular.js';

/** One saved operator state. Backends in `ready` are simply not listed. */
export interface StateEntry {
  /** `upstream/host:port`. */
  readonly backend: string;
  readonly admin: 'drain' | 'disabled';
}

/** The instance's standby (`ctl standby on`): who set it and when (epoch ms). */
export interface StandbyRecord {
  readonly by: string;
  readonly since: number;
}

/** What `loadState` found. */
export interface LoadedState {
  readonly entries: StateEntry[];
  /** Set when the instance was put in standby and not taken out. */
  readonly standby?: StandbyRecord;
  /** Set when the file exists but could not be used (fully or partly). */
  readonly warning?: string;
}

const VERSION = 1;

/**
 * Largest state file read or written: 4 MiB, about 50,000 saved states.
 * A real file holds one entry per drained or disabled backend of the config;
 * past this it is not ours (or not sane), and parsing it would cost the
 * start-up memory and seconds (a file at the cap: +0.2 s and +28 MB at start).
 */
export const MAX_STATE_BYTES = 4 * 1024 * 1024;

/** A backend id longer than this, or with control characters, is an invalid entry (it would end up in the log). */
const MAX_ID_CHARS = 512;

/** Creating a tmp file: new only (`O_EXCL`), never through a symlink, owner-only. */
const TMP_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const TMP_MODE = 0o600;

interface Slot {
  running: boolean;
  next?: { entries: StateEntry[]; standby: StandbyRecord | null; waiters: { resolve: () => void; reject: (e: Error) => void }[] };
}

/** One writer per path: saves run one at a time; a burst collapses into its last state. */
const slots = new Map<string, Slot>();
/** Paths whose dead writers' tmp files were already swept by this process. */
const swept = new Set<string>();

/**
 * Save `entries` (and the standby, when set) to `path` as `{version:1,
 * savedAt, backends:[...], standby?:{by, since}}`.
 * Concurrent calls are serialised: while one write runs, later calls coalesce
 * into one more write of the newest entries, and every caller resolves once a
 * write containing its state (or a newer one) is on disk. Rejects on I/O errors.
 */
export function saveState(path: string, entries: readonly StateEntry[], standby: StandbyRecord | null = null): Promise<void> {
  const key = nodePath.resolve(path);
  const slot = slots.get(key) ?? { running: false };
  slots.set(key, slot);
  const copy = entries.map((e) => ({ backend: e.backend, admin: e.admin }));
  const done = new Promise<void>((resolve, reject) => {
    slot.next ??= { entries: copy, standby, waiters: [] };
    slot.next.entries = copy;
    slot.next.standby = standby === null ? null : { by: standby.by, since: standby.since };
    slot.next.waiters.push({ resolve, reject });
  });
  if (!slot.running) void drain(key, slot);
  return done;
}

async function drain(key: string, slot: Slot): Promise<void> {
  slot.running = true;
  while (slot.next !== undefined) {
    const job = slot.next;
    slot.next = undefined;
    try {
      await writeAtomic(key, job.entries, job.standby);
      for (const w of job.waiters) w.resolve();
    } catch (err) {
      for (const w of job.waiters) w.reject(err as Error);
    }
  }
  slot.running = false;
  slots.delete(key);
}

async function writeAtomic(path: string, entries: StateEntry[], standby: StandbyRecord | null): Promise<void> {
  const dir = nodePath.dirname(path);
  if (!swept.has(path)) {
    swept.add(path);
    await sweepTmp(path);
  }
  const doc = { version: VERSION, savedAt: new Date().toISOString(), backends: entries, ...(standby === null ? {} : { standby }) };
  const body = `${JSON.stringify(doc, null, 2)}\n`;
  const size = Buffer.byteLength(body);
  if (size > MAX_STATE_BYTES) throw new Error(`cannot save state file ${path}: ${entries.length} entries make ${size} bytes, over the ${MAX_STATE_BYTES}-byte limit`);
  let tmp: string | undefined;
  try {
    const made = await createTmp(path);
    tmp = made.tmp;
    const fh = made.fh;
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
  } catch (err) {
    // Only a tmp file this call created is removed: never a name someone else planted.
    if (tmp !== undefined) await fsp.unlink(tmp).catch(() => {});
    throw new Error(`cannot save state file ${path}: ${(err as Error).message}`);
  }
  // Make the rename itself durable. Some systems can't fsync a folder: not fatal.
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Create `path.tmp-PID-RANDOM` exclusively. The random part makes the name
 * unpredictable; O_EXCL|O_NOFOLLOW make a name someone planted anyway (file
 * or symlink) fail with EEXIST/ELOOP instead of being written through: then
 * another name is drawn. The PID stays in the name so dead writers' leftovers
 * can be told from a live one's.
 */
async function createTmp(path: string): Promise<{ tmp: string; fh: fsp.FileHandle }> {
  for (let attempt = 1; ; attempt++) {
    const tmp = `${path}.tmp-${process.pid}-${crypto.randomBytes(8).toString('hex')}`;
    try {
      return { tmp, fh: await fsp.open(tmp, TMP_FLAGS, TMP_MODE) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EEXIST' && code !== 'ELOOP') || attempt >= 5) throw err;
    }
  }
}

/** Remove `path.tmp-PID[-RANDOM]` files left by writers that died (never a live process's). */
async function sweepTmp(path: string): Promise<void> {
  const base = `${nodePath.basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await fsp.readdir(nodePath.dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(base)) continue;
    const m = /^(\d+)(?:-[0-9a-f]+)?$/.exec(name.slice(base.length));
    const pid = m === null ? NaN : Number(m[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    await fsp.unlink(nodePath.join(nodePath.dirname(path), name)).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Read the state file. A missing file is no saved state (`[]`, no warning).
 * An unreadable, oversized, non-regular, corrupt, partial or foreign file
 * yields `[]` (or the entries that are valid) and a warning to log, which
 * names the path once and says what is wrong without quoting the file (it may
 * be a symlink to anything). Never throws, never blocks on a FIFO or device,
 * never reads more than MAX_STATE_BYTES + 1 bytes. Leftover tmp files of
 * interrupted saves are ignored: only `path` itself is read.
 */
export function loadState(path: string): LoadedState {
  const bad = (why: string): LoadedState => ({ entries: [], warning: `state file ${path} ${why}; starting without saved operator states` });
  const read = readBounded(path);
  if (read === 'missing') return { entries: [] };
  if ('why' in read) return bad(read.why);
  const text = read.text;
  if (text.trim() === '') return bad('is empty');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the error: keep only the position.
    const at = /position (\d+)/.exec((err as Error).message);
    return bad(`is corrupt (not valid JSON${at === null ? '' : ` at character ${at[1]}`})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('is not a tcplb state file');
  const o = v as Record<string, unknown>;
  if (o.version !== VERSION) {
    const which = Number.isSafeInteger(o.version) ? ` ${o.version as number}` : '';
    return bad(`has unsupported version${which} (expected ${VERSION})`);
  }
  if (!Array.isArray(o.backends)) return bad('has no "backends" list');
  const byId = new Map<string, StateEntry>();
  let skipped = 0;
  for (const item of o.backends as unknown[]) {
    const e = item as Partial<Record<string, unknown>> | null;
    if (e !== null && typeof e === 'object' && validId(e.backend) && (e.admin === 'drain' || e.admin === 'disabled')) {
      byId.set(e.backend, { backend: e.backend, admin: e.admin });
    } else skipped++;
  }
  const entries = [...byId.values()];
  // A standby field that is not one is ignored like an invalid entry: serving is the safe default.
  const sb = o.standby as Partial<Record<string, unknown>> | null | undefined;
  const standby = sb !== null && typeof sb === 'object' && validId(sb.by) && Number.isSafeInteger(sb.since) ? { standby: { by: sb.by, since: sb.since as number } } : {};
  if (sb !== undefined && !('standby' in standby)) skipped++;
  if (skipped === 0) return { entries, ...standby };
  return { entries, ...standby, warning: `state file ${path}: ignored ${count(skipped)} invalid entr${skipped === 1 ? 'y' : 'ies'}` };
}

/** A backend id fit to look up and to log: a short line of printable text. */
function validId(v: unknown): v is string {
  return typeof v === 'string' && v !== '' && v.length <= MAX_ID_CHARS && !/[\u0000-\u001f\u007f-\u009f]/.test(v);
}

/** The file's text through the bounded reader of regular files (core/read-regular.ts), or why not. */
function readBounded(path: string): 'missing' | { text: string } | { why: string } {
  let r: RegularRead;
  try {
    r = readRegularFileSync(path, MAX_STATE_BYTES);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return 'missing';
    return { why: `is unreadable (${e.code ?? 'error'})` };
  }
  if ('notRegular' in r) return { why: `is not a regular file (${r.notRegular})` };
  if ('tooLarge' in r) return { why: r.tooLarge === undefined ? `is too large (over ${count(MAX_STATE_BYTES)} bytes)` : `is too large (${count(r.tooLarge)} bytes, at most ${count(MAX_STATE_BYTES)})` };
  return r;
}

/** 1500000 -> "1,500,000". */
function count(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * Split loaded entries into those of backends the config still has and the
 * rest, which are dropped with one log line for all of them, however many:
 * `state file P: 1,500,000 entries for backends no longer in the config
 * dropped (u/a:1 drain, u/b:2 disabled, u/c:3 drain, …)`.
 */
export function dropStale(path: string, entries: readonly StateEntry[], known: (backend: string) => boolean): { kept: StateEntry[]; note?: string } {
  const kept: StateEntry[] = [];
  const stale: StateEntry[] = [];
  for (const e of entries) (known(e.backend) ? kept : stale).push(e);
  if (stale.length === 0) return { kept };
  const shown = stale.slice(0, 3).map((e) => `${e.backend} ${e.admin}`);
  const more = stale.length > 3 ? ', …' : '';
  const what = stale.length === 1 ? 'entry for a backend' : 'entries for backends';
  return { kept, note: `state file ${path}: ${count(stale.length)} ${what} no longer in the config dropped (${shown.join(', ')}${more})` };
}
