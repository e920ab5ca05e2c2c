/**
 * Watch the config file with chokidar and call `onChange` once per settled
 * change. chokidar polls the path (a stat every half second) rather than
 * using inotify:
 * - an inotify watch on the file sits on one inode: a symlinked config that
 *   is re-pointed (`ln -sfn`, deploy tools) was never seen again, and after
 *   any save that left the path missing for a moment chokidar fell back to
 *   watching the folder for good;
 * - an inotify watch on the folder re-reads the whole folder on every event
 *   in it: an access log or state file written beside the config cost the
 *   proxy more CPU than the connections it logged (2.2x the CPU per
 *   connection, bench/optimisations.md).
 * A stat of the path follows every way a file gets replaced (in place, by
 * rename as vim and sed -i save, delete then create, a re-pointed link) and
 * costs the same however busy the folder is.
 */
import type { Stats } from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface ConfigWatcher {
  /**
   * Also watch these files (the certificates and keys the config names):
   * a change to one reloads the config as a change to it would. Replaces
   * the previous list.
   */
  follow(files: readonly string[]): void;
  /** Resolves once a save is seen as a change (after the first scan and one poll): a save before may be taken as the initial state. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const POLL_MS = 500;

export function watchConfig(file: string, onChange: () => void, debounceMs = 200): ConfigWatcher {
  const abs = path.resolve(file);
  let timer: NodeJS.Timeout | undefined;
  const w: FSWatcher = watch(abs, { ignoreInitial: true, usePolling: true, interval: POLL_MS, binaryInterval: POLL_MS });
  let followed = new Set<string>();
  // chokidar's 'ready' ends its scan, but each polled file's baseline stat
  // is taken on the thread pool after it: one poll later, a save is a change.
  const ready = new Promise<void>((resolve) => w.once('ready', () => setTimeout(resolve, POLL_MS).unref()));
  const fire = (p: string): void => {
    const at = path.resolve(p);
    if (at !== abs && !followed.has(at)) return;
    clearTimeout(timer);
    // A burst (write twice, unlink + add) settles into one reload.
    timer = setTimeout(onChange, debounceMs);
  };
  w.on('add', fire).on('change', fire);
  // chokidar's 'change' wants a newer mtime or another size; a link re-pointed
  // at an older file of the same size (a rollback) only shows in the raw
  // stats as another inode.
  w.on('raw', (_event: string, p: string, details: unknown) => {
    const d = details as { curr?: Stats; prev?: Stats } | undefined;
    const { curr, prev } = d ?? {};
    if (curr === undefined || prev === undefined || curr.mtimeMs === 0) return; // gone: the next 'add' reloads
    if (curr.ino !== prev.ino || curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size) fire(p);
  });
  // A deleted config is not a change to apply; the next save is.
  w.on('error', () => {});
  return {
    ready,
    follow(files) {
      const next = new Set(files.map((f) => path.resolve(f)));
      next.delete(abs);
      const gone = [...followed].filter((f) => !next.has(f));
      const added = [...next].filter((f) => !followed.has(f));
      followed = next;
      if (gone.length > 0) w.unwatch(gone);
      if (added.length > 0) w.add(added);
    },
    async close() {
      clearTimeout(timer);
      await w.close();
    },
  };
}
