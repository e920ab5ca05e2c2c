/**
 * The workloads: wrk (connection rate, keep-alive rate), iperf3 (bulk), idle
 * memory (9,000 held connections, RSS before/after) and tcplb's check cost
 * (bench/check-cost.ts). Each one is bounded in time and throws a short
 * reason on failure; the caller turns that into `n/a (reason)`.
 */
import path from 'node:path';
import type { Endpoint, Peer } from './peers.js';
import { rssKiB, run, sleep, start, stop } from './proc.js';

export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  socketErrors: number;
  non2xx: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  switch (unit) {
    case 'us':
      return n / 1000;
    case 'ms':
      return n;
    case 's':
      return n * 1000;
    case 'm':
      return n * 60_000;
    default:
      return NaN;
  }
}

/** Parse `wrk --latency` output: requests/s, p50, p99 (in ms), errors. */
export function parseWrk(out: string): WrkResult {
  const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
  const p50 = out.match(/^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m);
  const p99 = out.match(/^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m);
  const req = out.match(/(\d+) requests in/);
  if (!rps || !p50 || !p99 || !req) throw new Error(`unreadable wrk output: ${out.trim().split('\n').pop() ?? ''}`);
  const se = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const non = out.match(/Non-2xx or 3xx responses: (\d+)/);
  return {
    rps: Number(rps[1]),
    p50ms: toMs(p50[1]!, p50[2]!),
    p99ms: toMs(p99[1]!, p99[2]!),
    requests: Number(req[1]),
    socketErrors: se ? se.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non ? Number(non[1]) : 0,
  };
}

export const WRK_THREADS = 2;
export const WRK_CONNECTIONS = 50;

/** wrk -t2 -c50 -dNs --latency [-H 'Connection: close'] http://EP/100b */
export async function wrk(ep: Endpoint, seconds: number, close: boolean): Promise<WrkResult> {
  const args = [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://${ep.host}:${ep.port}/100b`);
  const r = await run('wrk', args, (seconds + 20) * 1000);
  if (r.timedOut) throw new Error(`wrk did not finish in ${seconds + 20} s`);
  if (r.code !== 0) throw new Error(`wrk exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`);
  const res = parseWrk(r.stdout);
  if (res.requests === 0) throw new Error('no request completed');
  const bad = res.socketErrors + res.non2xx;
  if (bad > res.requests * 0.01) throw new Error(`${bad} errors in ${res.requests} requests`);
  return res;
}

/** iperf3 -c HOST -p PORT -t N [-P n] -J; Gbit/s from end.sum_received. */
export async function iperf(ep: Endpoint, seconds: number, streams: number): Promise<number> {
  const args = ['-c', ep.host, '-p', String(ep.port), '-t', String(seconds), '-J', '--connect-timeout', '3000'];
  if (streams > 1) args.push('-P', String(streams));
  const r = await run('iperf3', args, (seconds + 20) * 1000);
  if (r.timedOut) throw new Error(`iperf3 did not finish in ${seconds + 20} s`);
  let j: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3 exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? 'no output'}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number' || !(bps > 0)) throw new Error('iperf3: no sum_received in its JSON');
  return bps / 1e9;
}

export const IDLE_CONNECTIONS = 9000;

/**
 * Idle memory: RSS of the (freshly restarted) proxy before and after
 * IDLE_CONNECTIONS idle connections through it to the idle server; KiB per
 * connection. Every connection must reach the idle server, else it throws.
 */
export async function idleMemory(
  root: string,
  peer: Peer,
  idleCount: (peer: Peer['name']) => Promise<number>,
  n = IDLE_CONNECTIONS,
): Promise<{ kibPerConn: number; beforeKiB: number; afterKiB: number }> {
  if (!peer.idle) throw new Error('no proxy');
  // the lowest of a few counts: a health-check probe (tcplb+features) may be open for a moment
  await sleep(1000);
  let base = Infinity;
  for (let i = 0; i < 5; i++) {
    base = Math.min(base, await idleCount(peer.name));
    await sleep(100);
  }
  const beforeKiB = rssKiB(peer.pids());
  if (beforeKiB === 0) throw new Error('proxy not running');
  const script = path.join(root, 'dist/bench/lib/idle-clients.js');
  const clients = start('idle clients', process.execPath, [script, peer.idle.host, String(peer.idle.port), String(n), '200'], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  try {
    type Status = { done?: boolean; connected: number; failed: number; closed: number; error?: string };
    const status = await new Promise<Status>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${n} connects did not finish in 60 s`)), 60_000);
      clients.child.on('message', (m: Status) => {
        if (m.done) {
          clearTimeout(t);
          resolve(m);
        }
      });
      void clients.exited.then(() => reject(new Error('idle clients exited')));
    });
    if (status.failed > 0) throw new Error(`${status.failed} of ${n} connects failed (${status.error ?? '?'})`);
    // every connection must be relayed to the idle server (and still be open)
    const deadline = Date.now() + 30_000;
    let held = 0;
    while (Date.now() < deadline) {
      held = (await idleCount(peer.name)) - base;
      if (held >= n) break;
      await sleep(250);
    }
    if (held < n) throw new Error(`only ${held} of ${n} connections reached the backend`);
    await sleep(2000);
    const afterKiB = rssKiB(peer.pids());
    const now = await new Promise<Status>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('idle clients: no status')), 5000);
      clients.child.once('message', (m: Status) => {
        clearTimeout(t);
        resolve(m);
      });
      clients.child.send('status');
    });
    if (now.closed > 0) throw new Error(`${now.closed} connections were closed by the proxy`);
    return { kibPerConn: (afterKiB - beforeKiB) / n, beforeKiB, afterKiB };
  } finally {
    await stop(clients, 3000);
    // let the proxy close its backend side before the next measurement
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (await idleCount(peer.name).catch(() => 0)) > base) await sleep(250);
  }
}

/** The line of a failed child's output that says why (an Error or a `tcplb:` line), else its last line. */
function why(out: string): string {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^tcplb:|^\w*Error\b|Error:/.test(l)) ?? lines[lines.length - 1] ?? 'no output';
}

/**
 * tcplb only: bench/check-cost.ts (N backends under tcp checks every 1 s, tcplb
 * with the given engine); % of one core (the whole process tree).
 * check-cost.ts picks its listener port at random in 20000-39999, which
 * overlaps the kernel's ephemeral range: a port still in TIME_WAIT from earlier
 * client connections makes tcplb's start fail ("already in use"). Such a
 * start failure is retried (up to 3 attempts), the reason kept for the notes.
 */
export async function checkCost(
  root: string,
  backends: number,
  seconds: number,
  engine: 'js' | 'native',
  workers: number | 'auto',
  onRetry: (reason: string) => void = () => {},
): Promise<number> {
  let last = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const args = [path.join(root, 'dist/bench/check-cost.js'), String(backends), String(seconds), 'tcp', engine, String(workers)];
    const r = await run(process.execPath, args, (seconds + 30) * 1000);
    if (r.timedOut) throw new Error(`check-cost did not finish in ${seconds + 30} s`);
    const m = r.stdout.match(/([\d.]+)% of one core/);
    if (r.code === 0 && m) return Number(m[1]);
    last = `check-cost exit ${r.code}: ${why(r.stderr + '\n' + r.stdout)}`;
    if (!/already in use/.test(last)) break;
    onRetry(last);
  }
  throw new Error(last);
}
