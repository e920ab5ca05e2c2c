/**
 * Mount the console on the process's terminal. The proxy runs in the same
 * process, so Ctrl-C must not kill it behind the operator's back: it goes to
 * the console, which asks first, like `q`.
 */
import { render } from 'ink';
import type { ConsoleSource } from '../runtime/console-source.js';
import { App } from './App.js';

/** Options of {@link runConsole}. */
export interface RunConsoleOptions {
  /** Called after the operator confirmed quitting (`q` or Ctrl-C, then `y`). The caller shuts down and unmounts. */
  readonly onQuit: () => void;
  /** Shown in the header instead of the snapshot's version. */
  readonly version?: string;
  /** Redraw period in ms (see App's intervalMs). */
  readonly intervalMs?: number;
  /** Terminal streams; default the process's (another tty, or fakes in tests). */
  readonly stdout?: NodeJS.WriteStream;
  readonly stdin?: NodeJS.ReadStream;
}

/** A mounted console. */
export interface ConsoleHandle {
  /** Unmount and give the terminal back (raw mode off, cursor restored). */
  unmount(): void;
  /** Resolves once the console is unmounted. */
  waitUntilExit(): Promise<void>;
}

/** Render the console on stdout/stdin with Ctrl-C handled by the app and console.* left alone (the logger owns it). */
export function runConsole(actions: ConsoleSource, opts: RunConsoleOptions): ConsoleHandle {
  const instance = render(
    <App actions={actions} onQuit={opts.onQuit} {...(opts.version !== undefined ? { version: opts.version } : {})} {...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {})} />,
    {
      exitOnCtrlC: false,
      patchConsole: false,
      ...(opts.stdout !== undefined ? { stdout: opts.stdout } : {}),
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    },
  );
  return {
    unmount: () => instance.unmount(),
    waitUntilExit: async () => {
      await instance.waitUntilExit();
    },
  };
}
