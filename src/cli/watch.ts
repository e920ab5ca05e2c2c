/**
 * Watch the config file with chokidar and call `onChange` once per settled
 * change. The file itself is watched: chokidar follows a save by rename (vim,
 * sed -i: a new inode) and a delete-then-create. Not its folder: a folder
 * watch re-reads the whole folder on every event in it, and an access log or
 * state file written next to the config then cost the proxy more CPU than
 * the connections it logged (measured: 2.2x the CPU per connection with the
 * access log beside the config, 1.0x with a file watch; bench/optimisations.md).
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface ConfigWatcher {
  close(): Promise<void>;
}

export function watchConfig(file: string, onChange: () => void, debounceMs = 200): ConfigWatcher {
  const abs = path.resolve(file);
  let timer: NodeJS.Timeout | undefined;
  const w: FSWatcher = watch(abs, { ignoreInitial: true });
  const fire = (p: string): void => {
    if (path.resolve(p) !== abs) return;
    clearTimeout(timer);
    // A burst (write twice, unlink + add) settles into one reload.
    timer = setTimeout(onChange, debounceMs);
  };
  w.on('add', fire).on('change', fire);
  // A deleted config is not a change to apply; the next save is.
  w.on('error', () => {});
  return {
    async close() {
      clearTimeout(timer);
      await w.close();
    },
  };
}
