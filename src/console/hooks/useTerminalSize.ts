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

function sizeOf(stdout: NodeJS.WriteStream): TerminalSize {
  return { columns: stdout.columns || 80, rows: stdout.rows || 24 };
}

/** Read `stdout.columns/rows` and re-render when stdout emits `resize`. */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => sizeOf(stdout));
  useEffect(() => {
    const onResize = (): void => {
      const next = sizeOf(stdout);
      setSize((prev) => (prev.columns === next.columns && prev.rows === next.rows ? prev : next));
    };
    // The size may have changed between the first render and this subscription.
    onResize();
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}
