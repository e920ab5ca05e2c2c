/**
 * `tcplb-console health`: readiness for keepalived's vrrp_script and
 * ExaBGP's healthcheck. One line on stdout (`ready: imap 2/2 usable`,
 * `not ready: standby since …`), exit 0 when ready, 1 when not — and 1 when
 * the instance cannot be asked at all (not running, socket gone, no answer
 * within HEALTH_TIMEOUT_MS): an instance nobody can ask is not one to send
 * clients to.
 */
import fs from 'node:fs';
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

/** Where a long-running `health` reports readiness changes. */
export interface ReadinessSink {
  /** Called once at start and then on every change. */
  changed(ready: boolean, why: string): void;
}

/**
 * `--exabgp PREFIX`: a process for ExaBGP's API (`process … { run …;
 * encoder text; }`): `announce route PREFIX next-hop self` when the
 * instance becomes ready, `withdraw route …` when it stops being ready.
 */
export function exabgpSink(prefix: string, out: { write(s: string): unknown }): ReadinessSink {
  return { changed: (ready) => void out.write(`${ready ? 'announce' : 'withdraw'} route ${prefix} next-hop self\n`) };
}

/**
 * `--file PATH`: keepalived's `track_file` (with `weight 0`: 0 is OK,
 * anything else a fault): `0` while ready, `1` while not. Written in place
 * (keepalived reads the file when it is modified); a write that fails is
 * said on stderr and retried at the next change.
 */
export function fileSink(file: string, err: { write(s: string): unknown }): ReadinessSink {
  return {
    changed(ready) {
      try {
        fs.writeFileSync(file, ready ? '0\n' : '1\n');
      } catch (e) {
        err.write(`tcplb health: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      }
    },
  };
}

/**
 * A long-running `tcplb-console health` (`--exabgp PREFIX`, `--file PATH`):
 * asks the running tcplb every `intervalMs` over its control socket — a
 * connect and one line, no process start per check — and tells `sink` when
 * readiness changes (and once at start), with the reason on stderr. A tcplb
 * that cannot be asked is not ready. Ends when stdin closes (ExaBGP stopped;
 * give it /dev/null elsewhere: then only a signal ends it) or `stop` fires;
 * resolves with the exit code.
 */
export function followReadiness(
  socket: string,
  intervalMs: number,
  sink: ReadinessSink,
  io: { err: { write(s: string): unknown }; stdin?: NodeJS.ReadableStream; stop?: AbortSignal } = { err: process.stderr },
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
        sink.changed(r.ready, r.why);
        io.err.write(`tcplb health: ${r.why}\n`);
        last = r.ready;
      }
      timer = setTimeout(() => void tick(), Math.max(0, intervalMs - (Date.now() - t0)));
    };
    if (io.stdin !== undefined) {
      // ExaBGP writes to our stdin and closes it when it stops: then we stop too, never an orphan.
      io.stdin.on('end', finish);
      io.stdin.on('close', finish);
      io.stdin.resume();
    }
    io.stop?.addEventListener('abort', finish);
    void tick();
  });
}
