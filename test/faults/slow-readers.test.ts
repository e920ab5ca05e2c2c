/**
 * Fault 3: slow readers. 200 clients read at ~10 KB/s (one read of at most
 * 8 KiB, then a pause as long as that many bytes take) for ~28 s while the
 * backend offers each 20 MB: the proxy (a real child process) must hold back
 * the backend instead of buffering, so its RSS stays under 200 MB, and every
 * byte a client got is the backend's stream in order. Five fast clients
 * downloading 20 MB each keep their throughput (within 10%) with the slow
 * crowd present.
 *
 * How "keep their throughput" is judged. A round is 5 x 20 MB (~0.1 s). On
 * this shared 2-core host single rounds vary by +-25%, and the host's level
 * moves by 20-35% within a minute (other tenants): raw medians, alone versus
 * with the crowd, gave 78-137% over twelve runs of one commit, and a CI run
 * failed at 88% with nothing wrong. So every round through the proxy is
 * paired with the same round straight to the backend, back to back (order
 * alternating), and the figure is the proxied/direct ratio: the share of the
 * host's current speed the proxy delivers. Whatever the host does to both
 * paths cancels; what the slow readers cost in the proxy stays. The test
 * fails when the pairs show at 95% confidence (bootstrap of the ratio of
 * median shares) that the fast clients kept less than 90% of their share; a
 * proxy that really costs them 20% or more fails every run. The direct path
 * is not a perfect reference either: in one CI run it got 37% faster while
 * the crowd ran (a busy host keeps its CPUs out of deep idle, which helps the
 * direct path, bound by wake-ups, more than the proxied one, bound by the
 * proxy's CPU) while the proxied rounds held 99% of their speed alone, and the
 * share fell to 66%. So the test also bootstraps the fast clients' own
 * proxied speed, crowded over alone, and fails only when both figures show
 * the loss: a proxy that starves the fast clients lowers both. The crowd's own
 * cost is kept small and printed: the python reader reads 8 KiB at a time
 * (~1 wake-up a second per connection; 2 KiB reads cost it 5.5% of a core).
 *
 * Why the slow readers set a small receive window (and an Ethernet MSS):
 * everything here shares one host's TCP memory (net.ipv4.tcp_mem). With
 * loopback defaults a connection that is not read costs ~7 MB of kernel
 * buffers: the kernel sizes a socket's send buffer from MSS x cwnd
 * (tcp_sndbuf_expand), and loopback's 64 KB MSS gives every socket a 2.6-4 MB
 * send buffer at once, which fills: the proxy's socket towards the client,
 * and the backend's towards the proxy (plus an autotuned receive buffer on
 * the client). 200 such readers park ~1.5 GB there, the host enters TCP memory
 * pressure (tcp_mem[1], ~1.5 GB on a 24 GB host) and every socket on it, the
 * fast clients' included, slows down: the test then measured its own load on
 * the host, not the proxy (whose RSS stays low), and failed about 1 run in 3.
 * A real 10 KB/s client is across a network: it advertises a small window
 * and an MSS of ~1460. So the slow readers are one python3 child
 * (slow-readers.py, next to this file; Node cannot set socket options) whose
 * sockets set SO_RCVBUF 16 KiB and TCP_MAXSEG 1460 before connect. That
 * keeps the proxy-side cost of a slow client to ~0.5 MB of kernel memory;
 * what stays is the backend's own send buffer (~3 MB each, its loopback MSS
 * is the proxy's to choose), so the crowd holds ~0.8 GB, well under the
 * pressure mark. The script checks every byte against the same pattern
 * stream as patternBlock/matchesPattern (the test compares the block's
 * SHA-256) and reports per-connection results as JSON. The test prints the
 * host's TCP memory peak next to the pressure mark.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';
import { reservePort } from '../helpers/net.js';
import { waitUntil } from '../helpers/wait.js';
import { cpuSeconds, onJsonLines, rng, tcpMemMB, tcpMemLimitsMB, backendReport, lo, matchesPattern, mb, patternBlock, PATTERN_SIZE, RssSampler, sleep, startBackend, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(52);
const OFFER = 20 * 1024 * 1024;
const SLOW_CLIENTS = 200;
const SLOW_RATE = 10 * 1024; // bytes per second
const SLOW_FOR_MS = 28_000;
const SLOW_RCVBUF = 16 * 1024; // SO_RCVBUF of a slow reader (the kernel doubles it): a ~16 KB window
const SLOW_MSS = 1460; // TCP_MAXSEG of a slow reader: an Ethernet path, not loopback's 64 KB
const SLOW_SCRIPT = path.join(ROOT, 'test/faults/slow-readers.py');
const PATTERN_SEED = 0x5eed;
const FAST_CLIENTS = 5;
// A round (5 x 20 MB) takes ~0.2 s; single rounds vary by +-20% on a shared
// 2-core host, so each figure is the median of many.
const ROUNDS = 25;
const CROWDED_ROUNDS = 100;
/** The crowd's start (200 backend streams filling their buffers) is not steady state. */
const SETTLE_MS = 3000;
const block = patternBlock(PATTERN_SEED, PATTERN_SIZE);

interface SlowResult {
  bytes: number;
  ok: boolean;
  error?: string;
}

/**
 * The slow crowd: SLOW_CLIENTS connections from 127.0.0.54-57, opened 20 every
 * 100 ms, each reading ~SLOW_RATE for SLOW_FOR_MS (see slow-readers.py).
 * `ready` resolves just before the first connect (with the SHA-256 of the
 * script's pattern block), `started` once all are opened, `done` with every
 * connection's result.
 */
function slowCrowd(port: number): {
  ready: Promise<{ block: string }>;
  started: Promise<{ rcvbuf?: number; maxseg?: number }>;
  done: Promise<SlowResult[]>;
  pid: number | undefined;
  kill(): void;
} {
  const args = [SLOW_SCRIPT, HOST, String(port), [54, 55, 56, 57].map(lo).join(','), String(SLOW_CLIENTS), String(SLOW_RATE), String(SLOW_FOR_MS), String(SLOW_RCVBUF), String(PATTERN_SEED), String(PATTERN_SIZE), String(SLOW_MSS)];
  const child = spawn('python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    if (err.length < 65536) err += d.toString();
  });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  const seen = new Map<string, Record<string, unknown>>();
  onJsonLines(child.stdout, (m) => {
    for (const k of ['ready', 'started', 'done']) {
      if (m[k] !== true) continue;
      seen.set(k, m);
      waiting.get(k)?.(m);
    }
  });
  const exited = new Promise<string>((r) => {
    child.on('error', (e) => r(`python3 did not start: ${e.message}`));
    child.on('close', (code, sig) => r(`slow-readers.py exited (${code ?? sig}); stderr:\n${err}`));
  });
  const wait = <T>(k: string, ms: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`slow-readers.py: no "${k}" within ${ms} ms; stderr:\n${err}`)), ms);
      const ok = (m: Record<string, unknown>): void => {
        clearTimeout(t);
        resolve(m as T);
      };
      const got = seen.get(k);
      if (got) return ok(got);
      waiting.set(k, ok);
      void exited.then((why) => {
        clearTimeout(t);
        if (!seen.has(k)) reject(new Error(why));
      });
    });
  const ready = wait<{ block: string }>('ready', 10_000);
  const started = wait<{ rcvbuf?: number; maxseg?: number }>('started', 15_000);
  const done = wait<{ results: SlowResult[] }>('done', SLOW_FOR_MS + 30_000).then((m) => m.results);
  // The test waits for these in turn; keep an early failure from being an unhandled rejection meanwhile.
  for (const p of [ready, started, done]) p.catch(() => {});
  return {
    ready,
    started,
    done,
    pid: child.pid,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** One full-speed download of the whole offer; resolves with bytes and whether they matched. */
function fastReader(port: number, local: string): Promise<{ bytes: number; ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port, localAddress: local });
    let off = 0;
    let ok = true;
    let error: string | undefined;
    s.on('data', (d: Buffer) => {
      if (ok && !matchesPattern(block, off, d)) ok = false;
      off += d.length;
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.on('close', () => resolve({ bytes: off, ok, ...(error === undefined ? {} : { error }) }));
  });
}

/** FAST_CLIENTS concurrent downloads; aggregate MB/s over the wall time. */
async function fastRound(port: number): Promise<number> {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: FAST_CLIENTS }, () => fastReader(port, lo(53))));
  const secs = (performance.now() - t0) / 1000;
  for (const r of rs) {
    assert.equal(r.error, undefined, `fast client error ${r.error}`);
    assert.equal(r.bytes, OFFER, 'fast client got a short stream');
    assert.ok(r.ok, 'fast client got bytes that differ from the backend stream');
  }
  return (FAST_CLIENTS * OFFER) / 1048576 / secs;
}

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Pair {
  proxied: number;
  direct: number;
}

/** One round through the proxy and one straight to the backend, back to back; which goes first alternates. */
async function pairedRound(i: number, proxyPort: number, backendPort: number): Promise<Pair> {
  if (i % 2 === 0) {
    const proxied = await fastRound(proxyPort);
    return { proxied, direct: await fastRound(backendPort) };
  }
  const direct = await fastRound(backendPort);
  return { proxied: await fastRound(proxyPort), direct };
}

const shareOf = (ps: Pair[]): number => median(ps.map((p) => p.proxied / p.direct));

/**
 * How much of a figure the fast clients kept with the crowd (its value over
 * the crowded pairs / over the alone pairs), with a 90% interval from a
 * bootstrap (both sets of pairs resampled; a fixed-seed generator, so a run's
 * verdict follows from its printed rounds).
 */
function kept(alone: Pair[], crowded: Pair[], figure: (ps: Pair[]) => number): { kept: number; lower: number; upper: number } {
  const random = rng(0x2545f491);
  const resample = (ps: Pair[]): Pair[] => ps.map(() => ps[Math.floor(random() * ps.length)]!);
  const ratios: number[] = [];
  for (let i = 0; i < 2000; i++) ratios.push(figure(resample(crowded)) / figure(resample(alone)));
  ratios.sort((a, b) => a - b);
  return { kept: figure(crowded) / figure(alone), lower: ratios[Math.floor(ratios.length * 0.05)]!, upper: ratios[Math.floor(ratios.length * 0.95)]! };
}

const proxiedSpeed = (ps: Pair[]): number => median(ps.map((p) => p.proxied));

test(`slow readers: ${SLOW_CLIENTS} clients at ~10 KB/s for ${SLOW_FOR_MS / 1000} s, backend offering 20 MB each; proxy RSS < 200 MB; fast clients keep their throughput`, { timeout: 150_000 }, async (t) => {
  const be = await startBackend('stream', HOST, String(OFFER));
  t.after(() => be.kill());
  const dir = tmpDir('slow');
  const port = await reservePort(HOST);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", idleTimeout: "10m" }],
    upstreams: { b: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`,
  );
  const px = await startProxy(file);
  t.after(() => px.kill());
  const rss = new RssSampler(px.pid, 100);
  t.after(() => rss.stop());

  // Throughput of the fast clients alone (one warm-up round each way, then ROUNDS pairs measured).
  await fastRound(port);
  await fastRound(be.port);
  const alone: Pair[] = [];
  for (let i = 0; i < ROUNDS; i++) alone.push(await pairedRound(i, port, be.port));
  const idlePeak = rss.peak;

  // The slow crowd, started over one second. The host's TCP memory is sampled throughout.
  const tcpMemBefore = tcpMemMB();
  let tcpMemPeak = tcpMemBefore;
  const tcpMemTimer = setInterval(() => (tcpMemPeak = Math.max(tcpMemPeak, tcpMemMB())), 100);
  t.after(() => clearInterval(tcpMemTimer));
  const crowd = slowCrowd(port);
  t.after(() => crowd.kill());
  const { block: crowdBlock } = await crowd.ready;
  const crowdStart = Date.now();
  assert.equal(crowdBlock, crypto.createHash('sha256').update(block).digest('hex'), 'slow-readers.py checks against a different pattern block');
  const crowdSocket = await crowd.started;
  // What the crowd costs each process while no fast round runs (the second half of the settle time).
  await sleep(SETTLE_MS / 2); // the scenario: the crowd settles in before the CPU window
  const cpuOf = [px.pid, crowd.pid ?? 0, be.pid];
  const cpu0 = cpuOf.map(cpuSeconds);
  const settleT0 = performance.now();
  await sleep(SETTLE_MS / 2); // the CPU measurement window
  const settleSecs = (performance.now() - settleT0) / 1000;
  const crowdCpu = cpuOf.map((pid, i) => ((cpuSeconds(pid) - cpu0[i]!) / settleSecs) * 100);
  const crowded: Pair[] = [];
  // Only pairs that finish while the crowd is still reading count.
  const crowdEnds = crowdStart + SLOW_FOR_MS - 500;
  for (let i = 0; i < CROWDED_ROUNDS && Date.now() < crowdEnds - 1000; i++) {
    const r = await pairedRound(i, port, be.port);
    if (Date.now() < crowdEnds) crowded.push(r);
  }
  const results = await crowd.done;
  clearInterval(tcpMemTimer);
  const peak = rss.stop();
  const rep = await backendReport(be);
  // Alone again, now that the crowd is gone: the baseline is both sets (the host is shared and noisy).
  await waitUntil(async () => (await backendReport(be)).open, { what: 'the crowd\'s connections closed at the backend', timeoutMs: 3000, intervalMs: 50, until: (n) => n === 0 });
  for (let i = 0; i < ROUNDS; i++) alone.push(await pairedRound(i, port, be.port));

  const slowWritten = rep.written.filter((_, i) => rep.kinds[i] === 'S');
  const received = results.reduce((n, r) => n + r.bytes, 0);
  const written = slowWritten.reduce((n, w) => n + w, 0);
  const minGot = Math.min(...results.map((r) => r.bytes));
  const bad = results.filter((r) => !r.ok).length;
  const errs = results.filter((r) => r.error !== undefined).map((r) => r.error);
  const share = kept(alone, crowded, shareOf);
  const raw = kept(alone, crowded, proxiedSpeed);
  const med = (ps: Pair[], k: keyof Pair): number => median(ps.map((p) => p[k]));
  const list = (ps: Pair[], k: keyof Pair): string => ps.map((p) => p[k].toFixed(0)).join(', ');
  const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
  console.log(`slow readers: proxy RSS ${mb(rss.first)} at start, ${mb(idlePeak)} after the fast rounds, peak ${mb(peak)} with ${SLOW_CLIENTS} slow readers (limit 200 MB)`);
  console.log(
    `slow readers: clients received ${mb(received / 1048576)} in total (min ${(minGot / 1024).toFixed(0)} KB, avg ${(received / SLOW_CLIENTS / 1024).toFixed(0)} KB per client, ` +
      `${((received / SLOW_CLIENTS / (SLOW_FOR_MS / 1000)) / 1024).toFixed(1)} KB/s); the backend wrote ${mb(written / 1048576)} to them: ` +
      `${((written - received) / slowWritten.length / 1048576).toFixed(2)} MB per connection in flight, all of it in kernel socket buffers ` +
      `(slow sockets: SO_RCVBUF ${crowdSocket.rcvbuf ?? '?'}, MSS ${crowdSocket.maxseg ?? '?'}; TCP memory of the host ${mb(tcpMemBefore)} before the crowd, ${mb(tcpMemPeak)} at the peak, pressure at ${mb(tcpMemLimitsMB().pressure)})`,
  );
  console.log(`slow readers: CPU while only the crowd runs: proxy ${crowdCpu[0]!.toFixed(1)}%, python reader ${crowdCpu[1]!.toFixed(1)}%, backend ${crowdCpu[2]!.toFixed(1)}% of a core`);
  for (const k of ['proxied', 'direct'] as const) {
    const a = med(alone, k);
    const c = med(crowded, k);
    console.log(
      `slow readers: fast clients ${FAST_CLIENTS}x20 MB ${k === 'proxied' ? 'through the proxy' : 'straight to the backend'}: ${a.toFixed(0)} MB/s alone [${list(alone, k)}], ` +
        `${c.toFixed(0)} MB/s with the slow readers [${list(crowded, k)}] (${pct(c / a)})`,
    );
  }
  console.log(
    `slow readers: the proxy delivered ${pct(shareOf(alone))} of the direct speed alone, ${pct(shareOf(crowded))} with the slow readers: ` +
      `fast clients kept ${pct(share.kept)} of their share (90% interval ${pct(share.lower)}-${pct(share.upper)}) and ${pct(raw.kept)} of their speed ` +
      `(${pct(raw.lower)}-${pct(raw.upper)}); ${alone.length} pairs alone, before and after the crowd, ${crowded.length} with it`,
  );

  assert.equal(results.length, SLOW_CLIENTS);
  assert.deepEqual(errs, [], 'slow clients saw errors');
  assert.equal(bad, 0, `${bad} slow clients received bytes that differ from the backend's stream`);
  assert.equal(slowWritten.length, SLOW_CLIENTS, 'every slow connection reached the backend');
  assert.ok(written >= received, 'clients got more than the backend wrote');
  assert.ok(minGot >= 0.25 * SLOW_RATE * (SLOW_FOR_MS / 1000), `a slow client got only ${minGot} bytes in ${SLOW_FOR_MS} ms (starved)`);
  assert.ok(peak < 200, `proxy RSS peaked at ${mb(peak)} (limit 200 MB)`);
  assert.ok(crowded.length > 0, 'no fast round finished while the slow readers were reading');
  // Fails when the rounds show, at 95% confidence, that the fast clients lost
  // more than 10% by both measures: of their share of the direct speed, and of
  // their own speed. Either alone can move without the proxy (see the top).
  assert.ok(
    share.upper >= 0.9 || raw.upper >= 0.9,
    `fast clients kept ${pct(share.kept)} of their share of the direct speed with the slow readers (at most ${pct(share.upper)} at 95% confidence) ` +
      `and ${pct(raw.kept)} of their own speed (at most ${pct(raw.upper)}): both under 90%`,
  );
});
