/**
 * Fault 3: slow readers. 200 clients read at ~10 KB/s (pause/resume with a
 * 2 KiB read buffer) for ~20 s while the backend offers each 20 MB: the
 * proxy (a real child process) must hold back the backend instead of
 * buffering, so its RSS stays under 200 MB, and every byte a client got is
 * the backend's stream in order. Five fast clients downloading 20 MB each
 * keep their throughput (within 10%) with the slow crowd present.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort } from '../helpers/net.js';
import { tcpMemMB, backendReport, lo, matchesPattern, mb, patternBlock, PATTERN_SIZE, RssSampler, sleep, startBackend, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(52);
const OFFER = 20 * 1024 * 1024;
const SLOW_CLIENTS = 200;
const SLOW_RATE = 10 * 1024; // bytes per second
const SLOW_FOR_MS = 20_000;
const FAST_CLIENTS = 5;
const ROUNDS = 5;
const block = patternBlock(0x5eed, PATTERN_SIZE);

interface SlowResult {
  bytes: number;
  ok: boolean;
  error?: string;
}

/** Reads ~`rate` bytes/s: one read of at most 2 KiB, then paused for as long as that many bytes take. */
function slowReader(port: number, local: string, rate: number, forMs: number): Promise<SlowResult> {
  return new Promise((resolve) => {
    const buffer = Buffer.alloc(2048);
    let off = 0;
    let ok = true;
    let error: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    const s: net.Socket = net.connect({
      host: HOST,
      port,
      localAddress: local,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array) => {
          if (ok && !matchesPattern(block, off, Buffer.from(buf.buffer, buf.byteOffset, n))) ok = false;
          off += n;
          timer = setTimeout(() => s.resume(), (n / rate) * 1000);
          return false; // paused until the timer
        },
      },
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    s.write('S'); // names this connection a slow reader in the backend's report
    const stop = setTimeout(() => {
      clearTimeout(timer);
      s.destroy();
    }, forMs);
    s.on('close', () => {
      clearTimeout(stop);
      clearTimeout(timer);
      resolve({ bytes: off, ok, ...(error === undefined ? {} : { error }) });
    });
  });
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

test(`slow readers: ${SLOW_CLIENTS} clients at ~10 KB/s for ${SLOW_FOR_MS / 1000} s, backend offering 20 MB each; proxy RSS < 200 MB; fast clients keep their throughput`, { timeout: 150_000 }, async (t) => {
  const be = await startBackend('stream', HOST, String(OFFER));
  t.after(() => be.kill());
  const dir = tmpDir('slow');
  const port = await freePort(HOST);
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

  // Throughput of the fast clients alone (one warm-up round, then ROUNDS measured).
  await fastRound(port);
  const alone: number[] = [];
  for (let i = 0; i < ROUNDS; i++) alone.push(await fastRound(port));
  const idlePeak = rss.peak;

  // The slow crowd, started over one second.
  const slow: Promise<SlowResult>[] = [];
  const crowdStart = Date.now();
  for (let i = 0; i < SLOW_CLIENTS; i++) {
    slow.push(slowReader(port, lo(54 + (i % 4)), SLOW_RATE, SLOW_FOR_MS));
    if (i % 20 === 19) await sleep(100);
  }
  await sleep(3000);
  const crowded: number[] = [];
  let tcpMemPeak = tcpMemMB();
  // Only rounds that finish while the crowd is still reading count.
  const crowdEnds = crowdStart + SLOW_FOR_MS - 500;
  for (let i = 0; i < ROUNDS && Date.now() < crowdEnds - 2000; i++) {
    const r = await fastRound(port);
    if (Date.now() < crowdEnds) crowded.push(r);
    tcpMemPeak = Math.max(tcpMemPeak, tcpMemMB());
  }
  const results = await Promise.all(slow);
  const peak = rss.stop();
  const rep = await backendReport(be);
  // Alone again, now that the crowd is gone: the baseline is both sets (the host is shared and noisy).
  await sleep(500);
  for (let i = 0; i < ROUNDS; i++) alone.push(await fastRound(port));

  const slowWritten = rep.written.filter((_, i) => rep.kinds[i] === 'S');
  const received = results.reduce((n, r) => n + r.bytes, 0);
  const written = slowWritten.reduce((n, w) => n + w, 0);
  const minGot = Math.min(...results.map((r) => r.bytes));
  const bad = results.filter((r) => !r.ok).length;
  const errs = results.filter((r) => r.error !== undefined).map((r) => r.error);
  const a = median(alone);
  const c = median(crowded);
  console.log(`slow readers: proxy RSS ${mb(rss.first)} at start, ${mb(idlePeak)} after the fast rounds, peak ${mb(peak)} with ${SLOW_CLIENTS} slow readers (limit 200 MB)`);
  console.log(
    `slow readers: clients received ${mb(received / 1048576)} in total (min ${(minGot / 1024).toFixed(0)} KB, avg ${(received / SLOW_CLIENTS / 1024).toFixed(0)} KB per client, ` +
      `${((received / SLOW_CLIENTS / (SLOW_FOR_MS / 1000)) / 1024).toFixed(1)} KB/s); the backend wrote ${mb(written / 1048576)} to them: ` +
      `${((written - received) / slowWritten.length / 1048576).toFixed(2)} MB per connection in flight, all of it in kernel socket buffers (TCP memory of the host ${mb(tcpMemPeak)} at the peak)`,
  );
  console.log(`slow readers: fast clients ${FAST_CLIENTS}x20 MB: ${a.toFixed(0)} MB/s alone [${alone.map((x) => x.toFixed(0)).join(', ')}], ${c.toFixed(0)} MB/s with the slow readers [${crowded.map((x) => x.toFixed(0)).join(', ')}] (${((c / a) * 100).toFixed(0)}%; medians of ${ROUNDS} rounds, the alone rounds before and after the crowd)`);

  assert.equal(results.length, SLOW_CLIENTS);
  assert.deepEqual(errs, [], 'slow clients saw errors');
  assert.equal(bad, 0, `${bad} slow clients received bytes that differ from the backend's stream`);
  assert.equal(slowWritten.length, SLOW_CLIENTS, 'every slow connection reached the backend');
  assert.ok(written >= received, 'clients got more than the backend wrote');
  assert.ok(minGot >= 0.25 * SLOW_RATE * (SLOW_FOR_MS / 1000), `a slow client got only ${minGot} bytes in ${SLOW_FOR_MS} ms (starved)`);
  assert.ok(peak < 200, `proxy RSS peaked at ${mb(peak)} (limit 200 MB)`);
  assert.ok(crowded.length > 0, 'no fast round finished while the slow readers were reading');
  assert.ok(c >= 0.9 * a, `fast clients: ${c.toFixed(0)} MB/s with slow readers vs ${a.toFixed(0)} MB/s alone (< 90%)`);
});
