/**
 * Fault 12: hostile probe input. Backends (child processes) that greet
 * endlessly without a newline, with endless `220-` continuation lines, one
 * byte per second, or with binary noise: every protocol probe ends (by its
 * read cap or its timeout), fails, and memory does not grow: 200 probes
 * against a flood server move this process's RSS by less than 20 MB.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CheckType } from '../../src/core/types.js';
import { probeFor } from '../../src/health/registry.js';
import type { ProbeOptions } from '../../src/health/types.js';
import { waitFor } from '../helpers/wait.js';
import { backendReport, lo, mb, startBackend, type NodeChild } from './helpers.js';

const HOST = lo(55);
const TIMEOUT = 500;
const TYPES: CheckType[] = ['imap', 'pop3', 'smtp', 'http', 'mysql', 'ssl_hello'];
const KINDS = ['endless', 'lines', 'slow', 'noise'] as const;

const options: ProbeOptions = { timeoutMs: TIMEOUT, tls: false, servername: '', verify: false, send: 'GET / HTTP/1.0\r\n\r\n', expect: ['2xx', '3xx'] };

async function timed(type: CheckType, port: number): Promise<{ ok: boolean; status: string; detail: string; ms: number }> {
  const t0 = performance.now();
  const r = await probeFor(type)({ host: HOST, port }, options, new AbortController().signal);
  return { ok: r.ok, status: r.status, detail: r.detail, ms: performance.now() - t0 };
}

test('probes against endless, endless-lines, 1-byte-per-second and binary-noise greetings end by cap or timeout and fail', { timeout: 60_000 }, async (t) => {
  const servers = new Map<string, NodeChild & { port: number }>();
  for (const k of KINDS) servers.set(k, await startBackend('flood', HOST, k));
  t.after(() => Promise.all([...servers.values()].map((s) => s.kill())));
  const rows: string[] = [];
  let worst = 0;
  for (const k of KINDS) {
    const port = servers.get(k)!.port;
    const rs = await Promise.all(TYPES.map((ty) => timed(ty, port)));
    rs.forEach((r, i) => {
      worst = Math.max(worst, r.ms);
      rows.push(`${k}/${TYPES[i]}: ${r.status} ${r.ms.toFixed(0)} ms`);
      assert.equal(r.ok, false, `${TYPES[i]} probe passed against the ${k} server: ${r.detail}`);
      assert.ok(r.ms <= TIMEOUT + 250, `${TYPES[i]} probe against the ${k} server took ${r.ms.toFixed(0)} ms (timeout ${TIMEOUT} ms): ${r.detail}`);
    });
  }
  console.log(`probe input (timeout ${TIMEOUT} ms): slowest ${worst.toFixed(0)} ms; ${rows.join(', ')}`);
});

test('200 probes against a flood server: RSS grows by less than 20 MB', { timeout: 60_000 }, async (t) => {
  const flood = await startBackend('flood', HOST, 'endless');
  const noise = await startBackend('flood', HOST, 'noise');
  t.after(() => Promise.all([flood.kill(), noise.kill()]));
  const openAtBackends = async (): Promise<number> => (await backendReport(flood)).open + (await backendReport(noise)).open;
  // Warm up (module code, TLS context for ssl_hello, buffers) before the baseline.
  await Promise.all(TYPES.map((ty) => timed(ty, flood.port)));
  await waitFor(openAtBackends, { what: 'the warm-up probes\' connections closed at both flood servers', timeoutMs: 3000, until: (n) => n === 0 });
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  t.after(() => clearInterval(sampler));
  const statuses = new Map<string, number>();
  const t0 = performance.now();
  for (let batch = 0; batch < 10; batch++) {
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const ty = TYPES[(batch * 20 + i) % TYPES.length]!;
        return timed(ty, i % 2 === 0 ? flood.port : noise.port).then((r) => ({ ...r, ty }));
      }),
    );
    for (const r of rs) {
      assert.equal(r.ok, false, `${r.ty} passed against a flood`);
      statuses.set(`${r.ty} ${r.status}`, (statuses.get(`${r.ty} ${r.status}`) ?? 0) + 1);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  // Polite closes drain for at most 1 s: wait until the servers saw every probe connection go.
  await waitFor(openAtBackends, { what: 'every probe connection closed at both flood servers', timeoutMs: 3000, until: (n) => n === 0 });
  clearInterval(sampler);
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const rep = await backendReport(flood);
  const perConn = rep.written.reduce((a, b) => a + b, 0) / Math.max(1, rep.written.length);
  const delta = (rss1 - rss0) / 1048576;
  const peakDelta = (peak - rss0) / 1048576;
  console.log(
    `200 probes vs flood servers in ${secs.toFixed(1)} s: RSS ${mb(rss0 / 1048576)} -> ${mb(rss1 / 1048576)} (delta ${mb(delta)}, peak delta ${mb(peakDelta)}), heap delta ${mb((heap1 - heap0) / 1048576)}; ` +
      `the flood server wrote ${(perConn / 1024).toFixed(0)} KB per probe connection (back-pressure); open after: ${rep.open}; results ${[...statuses].map(([k, n]) => `${k} x${n}`).join(', ')}`,
  );
  assert.ok(peakDelta < 20, `RSS grew by up to ${mb(peakDelta)} over 200 probes`);
  assert.ok(delta < 20, `RSS grew by ${mb(delta)} over 200 probes`);
  assert.equal(rep.open, 0, 'probe connections left open on the flood server');
});
