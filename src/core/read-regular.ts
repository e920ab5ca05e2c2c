/**
 * Read a small text file tcplb is given a path to (the config, a fleet
 * file), safely: only a regular file (a symlink is followed) is read. A FIFO
 * would block the open and the read until a writer came, and a device such
 * as /dev/zero reports size 0 and never ends. The type is checked before
 * opening (opening a device can have effects of its own), and again on the
 * descriptor (opened non-blocking, so a file swapped for a FIFO in between
 * cannot block); at most `maxBytes` + 1 bytes are read, so a file that grows
 * while read is refused without holding more. I/O errors (ENOENT, EACCES)
 * are thrown; the caller words them. `readRegularFileSync` is the same for
 * the few callers that must read before anything else runs (the state file,
 * restored before the listeners open).
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { fileKind } from './file-kind.js';

export type RegularRead =
  | { readonly text: string }
  /** `kind`: what it is instead, in words (`a named pipe (FIFO)`). */
  | { readonly notRegular: string }
  /** `size`: the size seen, or undefined when it grew past the cap while read. */
  | { readonly tooLarge: number | undefined };

export async function readRegularFile(path: string, maxBytes: number): Promise<RegularRead> {
  const notRegular = (st: Stats): RegularRead => ({ notRegular: fileKind(st) });
  const before = await stat(path);
  if (!before.isFile()) return notRegular(before);
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) return notRegular(st);
    if (st.size > maxBytes) return { tooLarge: st.size };
    let buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > maxBytes) return { tooLarge: undefined };
        // It grew since the stat: read on, still bounded by the cap.
        const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(bigger);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    return { text: buf.toString('utf8', 0, len) };
  } finally {
    await fh.close();
  }
}

/** {@link readRegularFile}, synchronously. */
export function readRegularFileSync(path: string, maxBytes: number): RegularRead {
  const notRegular = (st: Stats): RegularRead => ({ notRegular: fileKind(st) });
  const before = statSync(path);
  if (!before.isFile()) return notRegular(before);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return notRegular(st);
    if (st.size > maxBytes) return { tooLarge: st.size };
    let buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > maxBytes) return { tooLarge: undefined };
        const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(bigger);
        buf = bigger;
      }
      const bytesRead = readSync(fd, buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    return { text: buf.toString('utf8', 0, len) };
  } finally {
    closeSync(fd);
  }
}
