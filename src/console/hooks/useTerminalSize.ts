/**
 * The terminal's columns and rows, updated on resize (ssh sessions resize
 * often). Without a TTY (tests, pipes) it falls back to 80x24.
 */
import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

/** A terminal size in cells. */
export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

/** Read `stdout.columns/rows` and re-render when stdout emits `resize`. */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const read = (): TerminalSize => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => {
      const next = read();
      setSize((prev) => (prev.columns === next.columns && prev.rows === next.rows ? prev : next));
    };
    onResize();
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stdout]);
  return size;
}
