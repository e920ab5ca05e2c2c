/**
 * Watch the config file with chokidar and call `onChange` once per settled
 * change. The folder is watched, not the file: editors that save by rename
 * (vim, sed -i) replace the inode, which a watch on the file itself loses.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface ConfigWatcher {
  close(): Promise<void>;
}

export function watchConfig(file: string, onChange: () => void, debounceMs = 200): ConfigWatcher {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  let timer: NodeJS.Timeout | undefined;
  const w: FSWatcher = watch(dir, {
    depth: 0,
    ignoreInitial: true,
    ignored: (p: string) => p !== dir && path.resolve(p) !== abs,
  });
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
