/**
 * The state file (`stateFile` in the config): operator states (drain,
 * disable) that survive restarts. Written atomically (tmp file, fsync,
 * rename, fsync of the folder), so a crash at any moment leaves either the
 * old file or the new one, never a torn one. Read leniently: a damaged file
 * costs the saved states and a warning, never the start-up.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import nodePath from 'node:path';

/** One saved operator state. Backends in `ready` are simply not listed. */
export interface StateEntry {
  /** `upstream/host:port`. */
  readonly backend: string;
  readonly admin: 'drain' | 'disabled';
}

/** What `loadState` found. */
export interface LoadedState {
  readonly entries: StateEntry[];
  /** Set when the file exists but could not be used (fully or partly). */
  readonly warning?: string;
}

const VERSION = 1;

interface Slot {
  running: boolean;
  next?: { entries: StateEntry[]; waiters: { resolve: () => void; reject: (e: Error) => void }[] };
}

/** One writer per path: saves run one at a time; a burst collapses into its last state. */
const slots = new Map<string, Slot>();
/** Paths whose dead writers' tmp files were already swept by this process. */
const swept = new Set<string>();

/**
 * Save `entries` to `path` as `{version:1, savedAt, backends:[...]}`.
 * Concurrent calls are serialised: while one write runs, later calls coalesce
 * into one more write of the newest entries, and every caller resolves once a
 * write containing its state (or a newer one) is on disk. Rejects on I/O errors.
 */
export function saveState(path: string, entries: readonly StateEntry[]): Promise<void> {
  const key = nodePath.resolve(path);
  const slot = slots.get(key) ?? { running: false };
  slots.set(key, slot);
  const copy = entries.map((e) => ({ backend: e.backend, admin: e.admin }));
  const done = new Promise<void>((resolve, reject) => {
    slot.next ??= { entries: copy, waiters: [] };
    slot.next.entries = copy;
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
      await writeAtomic(key, job.entries);
      for (const w of job.waiters) w.resolve();
    } catch (err) {
      for (const w of job.waiters) w.reject(err as Error);
    }
  }
  slot.running = false;
  slots.delete(key);
}

async function writeAtomic(path: string, entries: StateEntry[]): Promise<void> {
  const dir = nodePath.dirname(path);
  if (!swept.has(path)) {
    swept.add(path);
    await sweepTmp(path);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const body = `${JSON.stringify({ version: VERSION, savedAt: new Date().toISOString(), backends: entries }, null, 2)}\n`;
  try {
    const fh = await fsp.open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => {});
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

/** Remove `path.tmp-PID` files left by writers that died (never a live process's). */
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
    const pid = Number(name.slice(base.length));
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
 * An unreadable, corrupt, partial or foreign file yields `[]` (or the entries
 * that are valid) and a warning to log. Never throws. Leftover tmp files of
 * interrupted saves are ignored: only `path` itself is read.
 */
export function loadState(path: string): LoadedState {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { entries: [] };
    return { entries: [], warning: `state file ${path} unreadable (${e.code ?? e.message}); starting without saved operator states` };
  }
  const bad = (why: string): LoadedState => ({ entries: [], warning: `state file ${path} ${why}; starting without saved operator states` });
  if (text.trim() === '') return bad('is empty');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return bad(`is corrupt (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('is not a tcplb state file');
  const o = v as Record<string, unknown>;
  if (o.version !== VERSION) return bad(`has unsupported version ${JSON.stringify(o.version)} (expected ${VERSION})`);
  if (!Array.isArray(o.backends)) return bad('has no "backends" list');
  const byId = new Map<string, StateEntry>();
  let skipped = 0;
  for (const item of o.backends as unknown[]) {
    const e = item as Partial<Record<string, unknown>> | null;
    if (e !== null && typeof e === 'object' && typeof e.backend === 'string' && e.backend !== '' && (e.admin === 'drain' || e.admin === 'disabled')) {
      byId.set(e.backend, { backend: e.backend, admin: e.admin });
    } else skipped++;
  }
  const entries = [...byId.values()];
  if (skipped === 0) return { entries };
  return { entries, warning: `state file ${path}: ignored ${skipped} invalid entr${skipped === 1 ? 'y' : 'ies'}` };
}
