/**
 * Real terminals for end-to-end console tests: a private tmux server per
 * test (`tmux -L NAME`, so nothing of the user's tmux is touched), sessions
 * running a command, the screen as text, and waits on what it shows. Every
 * process in a pane (the pane's shell and what it runs) is killed by PID when
 * the test ends, then the server: closing a terminal alone leaves tcplb
 * serving headless, by design.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { waitFor } from './wait.js';

/** The children of `pid`, from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

const killed = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

let servers = 0;

export class Tmux {
  readonly #name: string;
  readonly #t: TestContext;
  readonly #panes: number[] = [];

  /** A private server named after `tag` and this process (one per test). */
  constructor(t: TestContext, tag: string) {
    this.#t = t;
    this.#name = `tcplb-${tag}-${process.pid}-${++servers}`;
  }

  /** One tmux command on this server; its output. */
  run(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.#name, ...args], { encoding: 'utf8' });
  }

  /** The visible text of session `win`. */
  screen(win: string): string {
    return this.run('capture-pane', '-p', '-t', win);
  }

  /** The screen of `win` with its colours and attributes (SGR escapes, as tmux writes them). */
  colours(win: string): string {
    return this.run('capture-pane', '-p', '-e', '-t', win);
  }

  /** Keys to session `win` (tmux key names, or with '-l' first, literal text in one write). */
  keys(win: string, ...keys: string[]): void {
    this.run('send-keys', '-t', win, ...keys);
  }

  /** Wait until the screen of `win` matches `re`; fails with the last screen. */
  async waitScreen(win: string, re: RegExp, what: string, ms = 10_000): Promise<string> {
    let last = '';
    try {
      await waitFor(() => re.test((last = this.screen(win))), { timeoutMs: ms, what: `${win}: ${what}` });
    } catch (err) {
      throw new Error(`${(err as Error).message}; screen:\n${last}`);
    }
    return last;
  }

  /**
   * Run `command` (a shell line) in a new session `name` of `width`×`height`.
   * `; echo EXITED $?; sleep 30` follows it, so its exit code stays on screen.
   * Returns the pane's pid (the shell); cleanup is registered.
   */
  session(name: string, command: string, width: number, height: number): number {
    this.run('new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), `${command}; echo EXITED $?; sleep 30`);
    if (this.#panes.length === 0) {
      // First session: the server exists from now on. The panes' processes
      // go first, by PID, while the shells still know their children.
      this.#t.after(() => {
        for (const pane of this.#panes) for (const p of [...childrenOf(pane), pane]) killed(p);
        try {
          this.run('kill-server');
        } catch {
          /* already gone */
        }
      });
    }
    const pane = Number(this.run('display-message', '-p', '-t', name, '#{pane_pid}').trim());
    this.#panes.push(pane);
    return pane;
  }

  /** The process the shell of `pane` runs (the command of `session`), once it exists. */
  async commandPid(pane: number, what: string): Promise<number> {
    let pid: number | undefined;
    await waitFor(() => (pid = childrenOf(pane)[0]), { what });
    return pid!;
  }
}
