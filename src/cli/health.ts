/**
 * `tcplb-console health`: readiness for keepalived's vrrp_script and
 * ExaBGP's healthcheck. One line on stdout (`ready: imap 2/2 usable`,
 * `not ready: standby since …`), exit 0 when ready, 1 when not — and 1 when
 * the instance cannot be asked at all (not running, socket gone, no answer
 * within HEALTH_TIMEOUT_MS): an instance nobody can ask is not one to send
 * clients to.
 */
import net from 'node:net';
import { asTarget, ctlOnce, type Outcome } from '../control/client.js';

/** A wedged tcplb must not hold the address: after this long without an answer, not ready. */
export const HEALTH_TIMEOUT_MS = 2000;

/** Ask once: ready or not, and the line saying why. Never throws. */
export async function askHealth(socket: string): Promise<{ ready: boolean; why: string }> {
  let o: Outcome;
  try {
    o = await ctlOnce({ cmd: 'health' }, asTarget(socket), HEALTH_TIMEOUT_MS);
  } catch (e) {
    o = { code: 1, out: [], error: (e as Error).message };
  }
  return { ready: o.code === 0, why: o.out[0] ?? `not ready: ${o.error ?? 'no answer'}` };
}

export async function healthCheck(socket: string, out: { write(s: string): unknown } = process.stdout): Promise<number> {
  const r = await askHealth(socket);
  out.write(`${r.why}\n`);
  return r.ready ? 0 : 1;
}

/** A route ExaBGP can announce: an IP prefix (`10.96.100.1/32`, `2001:db8::1/128`). */
export function routePrefix(text: string): string | undefined {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const fam = net.isIP(m[1]!);
  const len = Number(m[2]);
  return fam !== 0 && len <= (fam === 4 ? 32 : 128) ? text : undefined;
}

/**
 * `tcplb-console health --socket S --exabgp PREFIX`: a process for ExaBGP's
 * API (`process … { run …; encoder text; }`). It asks the running tcplb every
 * `intervalMs` over its control socket — a connect and one line, no process
 * start per check — and prints `announce route PREFIX next-hop self` when
 * the instance becomes ready and `withdraw route …` when it stops being
 * ready (once at start too), with the reason on stderr, which ExaBGP logs.
 * A tcplb that cannot be asked is not ready. Ends when ExaBGP closes our
 * stdin (it stopped) or on SIGTERM/SIGINT; resolves with the exit code.
 */
export function exabgpAnnouncer(
  socket: string,
  prefix: string,
  intervalMs: number,
  io: { out: { write(s: string): unknown }; err: { write(s: string): unknown }; stdin: NodeJS.ReadableStream; stop?: AbortSignal } = { out: process.stdout, err: process.stderr, stdin: process.stdin },
): Promise<number> {
  return new Promise<number>((resolve) => {
    let last: boolean | undefined;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(0);
    };
    const tick = async (): Promise<void> => {
      const t0 = Date.now();
      const r = await askHealth(socket);
      if (done) return;
      if (r.ready !== last) {
        io.out.write(`${r.ready ? 'announce' : 'withdraw'} route ${prefix} next-hop self\n`);
        io.err.write(`tcplb health: ${r.why}\n`);
        last = r.ready;
      }
      timer = setTimeout(() => void tick(), Math.max(0, intervalMs - (Date.now() - t0)));
    };
    // ExaBGP writes to our stdin and closes it when it stops: then we stop too, never an orphan.
    io.stdin.on('end', finish);
    io.stdin.on('close', finish);
    io.stdin.resume();
    io.stop?.addEventListener('abort', finish);
    void tick();
  });
}
