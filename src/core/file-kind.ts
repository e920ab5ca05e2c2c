/**
 * What a path that is not a regular file is, in words for an error message
 * (`not a regular file: it is a named pipe (FIFO)`). One wording for every
 * file tcplb refuses to read: the config and the state file.
 */
import type { Stats } from 'node:fs';

export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'of another kind';
}
