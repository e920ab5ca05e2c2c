/**
 * Attaching the console to a running tcplb: whether plain `tcplb-console`
 * should attach rather than start a second proxy, and the attached console's
 * life (mount on the terminal, `q` detaches, the proxy runs on).
 */
import { request } from '../control/client.js';
import { attachFleet } from '../control/fleet.js';
import { yieldCpu } from '../control/observer.js';
import { attachRemote } from '../control/remote.js';
import type { Target } from '../control/target.js';
import type { ConsoleHandle, RunConsoleOptions } from '../console/run.js';
import type { ConsoleSource } from '../runtime/console-source.js';

/** How long a plain start waits for a control socket's `status` before starting a proxy instead. */
export const LIVE_PROBE_MS = 1500;

/**
 * Does a tcplb answer on `socket`? Live means the connect succeeds and
 * `status` is answered: a leftover socket file of a crashed tcplb is not.
 */
export async function instanceAnswers(socket: string, timeoutMs = LIVE_PROBE_MS): Promise<boolean> {
  try {
    return (await request(socket, { cmd: 'status' }, timeoutMs)).ok;
  } catch {
    return false;
  }
}

/**
 * Plain `tcplb-console` (run): attach when the console would run (a terminal,
 * not --headless) and the control socket answers; otherwise start the proxy.
 * `--headless` never attaches: a supervisor starting a second copy must get
 * the "socket in use" failure, not a console.
 */
export async function chooseRun(o: { console: boolean; socket: string | null | undefined; answers: (socket: string) => Promise<boolean> }): Promise<'attach' | 'run'> {
  if (!o.console || o.socket === null || o.socket === undefined) return 'run';
  return (await o.answers(o.socket)) ? 'attach' : 'run';
}

/**
 * An attached console draws (and is streamed) a frame a second: its process
 * shares the balancer's cores, and three consoles at two frames a second
 * took 0.89x the headless connection rate on a busy 2-core host
 * (bench/attach-overhead.sh), all of it the consoles' own rendering. An
 * action's answer still shows at once in the status line.
 */
export const ATTACHED_FRAME_MS = 1000;

type Mount = (source: ConsoleSource, opts: RunConsoleOptions) => ConsoleHandle;

/**
 * Attach the console to the tcplb at `targets` (one instance, or a fleet
 * when several) until the operator detaches (`q`, Ctrl-C),
 * SIGTERM/SIGINT/SIGHUP arrive, or the terminal goes away. Resolves with the
 * exit code: 0 after a detach, 1 when the instance cannot be attached to
 * (unreachable, another protocol version; a fleet: when none can), said on
 * `err`.
 */
export async function runAttached(targets: readonly Target[], mount: Mount, opts: { version: string; out?: NodeJS.WritableStream; err?: NodeJS.WritableStream }): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  let source;
  try {
    source = targets.length === 1 ? await attachRemote(targets[0]!, { intervalMs: ATTACHED_FRAME_MS }) : await attachFleet(targets, { intervalMs: ATTACHED_FRAME_MS });
  } catch (e) {
    err.write(`tcplb: ${(e as Error).message}\n`);
    return 1;
  }
  yieldCpu();
  // Read at detach, not at attach: after a restart the link is to another pid.
  const who = (): string => (targets.length === 1 ? `tcplb (pid ${source.attachment.link().pid}) goes` : `the ${targets.length} tcplb instances go`);
  return new Promise<number>((resolve) => {
    let ui: ConsoleHandle | undefined;
    let detached = false;
    const detach = (): void => {
      if (detached) return;
      detached = true;
      source.attachment.close();
      ui?.unmount();
      ui = undefined;
      for (const [sig, fn] of handlers) process.off(sig, fn);
      out.write(`detached; ${who()} on serving\n`);
      resolve(0);
    };
    // A signal to the console is for the console: the proxy is another process.
    const handlers: [NodeJS.Signals, () => void][] = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map((s) => [s, detach]);
    for (const [sig, fn] of handlers) process.on(sig, fn);
    process.stdout.once('error', detach);
    ui = mount(source, { version: opts.version, intervalMs: ATTACHED_FRAME_MS, onQuit: detach });
  });
}
