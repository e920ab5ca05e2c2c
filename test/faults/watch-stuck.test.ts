/**
 * Stuck `watch` subscribers on the real binary. The same flood of operator
 * events (drain/enable pairs over the control socket) runs twice: once with
 * no watcher, once with 5 watchers that send `watch` and never read. The
 * stuck ones must be dropped at their backlog bound, and cost the proxy no
 * more CPU, memory or client latency than the bound allows. Then 100
 * attach/detach cycles must leave no descriptor behind.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { greetingVia } from '../helpers/net.js';
import { waitFor, waitForSteady, waitUntil } from '../helpers/wait.js';
import { cpuSeconds, fdCount, lo, memOf, proxyWithSocket } from './helpers.js';

const HOST = lo(65);
const PAIRS = 3000; // drain+enable pairs per flood: ~4 events each, ~2.5 MB of event lines

/**
 * Send `PAIRS` drain/enable pairs on one connection, 10 pairs pipelined at a
 * time (a whole flood pipelined at once would hold the event loop for its
 * length, and the latency measured would be the flood's); resolves with its
 * duration when all are answered.
 */
function flood(sock: string, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = net.connect(sock);
    let replies = 0;
    let sent = 0;
    const batch = (): void => {
      for (let i = 0; i < 10; i++, sent++) c.write(`{"cmd":"drain","backend":"${id}"}\n{"cmd":"enable","backend":"${id}"}\n`);
    };
    c.on('data', (d: Buffer) => {
      for (const b of d) if (b === 0x0a) replies++;
      if (replies === PAIRS * 2) {
        c.destroy();
        resolve(performance.now() - t0);
      } else if (replies === sent * 2) batch();
    });
    c.on('error', reject);
    c.on('connect', batch);
  });
}

/** Client round trips through the proxy while `during` runs; their median and worst, ms. */
async function latencyDuring(port: number, during: Promise<unknown>): Promise<{ p50: number; max: number; n: number }> {
  const rtts: number[] = [];
  let done = false;
  void during.finally(() => (done = true));
  while (!done || rtts.length < 20) {
    const t0 = performance.now();
    assert.equal(await greetingVia(port, HOST), 'A');
    rtts.push(performance.now() - t0);
    if (rtts.length >= 2000) break;
  }
  rtts.sort((a, b) => a - b);
  return { p50: rtts[Math.floor(rtts.length / 2)]!, max: rtts[rtts.length - 1]!, n: rtts.length };
}

function stuckWatcher(sock: string): net.Socket {
  const s = net.connect(sock);
  s.on('error', () => {});
  s.pause(); // never reads: the kernel's buffers fill, then tcplb's backlog
  s.write('{"cmd":"watch","interval":100}\n');
  return s;
}

test('5 stuck watchers are dropped at the bound and cost the proxy nothing measurable; 100 attach/detach cycles leak no descriptor', { timeout: 120_000 }, async (t) => {
  const { proxy, port, sock, id } = await proxyWithSocket(t, HOST, 'watch');
  const fds0 = await waitForSteady(() => fdCount(proxy.pid), { what: 'descriptors at rest', quietMs: 300 });

  // Without watchers.
  let cpu = cpuSeconds(proxy.pid);
  const quiet = flood(sock, id);
  const lat0 = await latencyDuring(port, quiet);
  const ms0 = await quiet;
  const cpu0 = cpuSeconds(proxy.pid) - cpu;
  const rss0 = memOf(proxy.pid).rss;

  // The same flood with 5 stuck watchers (snapshots every 100 ms, events).
  const stuck = Array.from({ length: 5 }, () => stuckWatcher(sock));
  t.after(() => stuck.forEach((s) => s.destroy()));
  await waitFor(() => fdCount(proxy.pid), { what: '5 watchers connected', until: (n) => n >= fds0 + 5 });
  cpu = cpuSeconds(proxy.pid);
  const loaded = flood(sock, id);
  const lat1 = await latencyDuring(port, loaded);
  const ms1 = await loaded;
  const cpu1 = cpuSeconds(proxy.pid) - cpu;
  const rss1 = memOf(proxy.pid).hwm;
  await waitFor(() => (proxy.stderr().match(/dropped a watcher/g) ?? []).length, { what: '5 drops logged', timeoutMs: 40_000, until: (n) => n >= 5 });
  const drops = proxy.stderr().match(/dropped a watcher: [^\n]*/g) ?? [];
  // The stuck sockets are closed by tcplb (2 s after the drop): back to the descriptors at rest.
  const fds1 = await waitUntil(() => fdCount(proxy.pid) === fds0, { what: 'descriptors back to rest after the drops', timeoutMs: 10_000 }).then(() => fdCount(proxy.pid));

  const figures =
    `no watcher: flood ${ms0.toFixed(0)} ms, CPU ${cpu0.toFixed(2)} s, client RTT p50 ${lat0.p50.toFixed(2)} ms max ${lat0.max.toFixed(1)} ms (${lat0.n}), RSS ${rss0.toFixed(0)} MB; ` +
    `5 stuck: flood ${ms1.toFixed(0)} ms, CPU ${cpu1.toFixed(2)} s, client RTT p50 ${lat1.p50.toFixed(2)} ms max ${lat1.max.toFixed(1)} ms (${lat1.n}), peak RSS ${rss1.toFixed(0)} MB; ` +
    `drops: ${drops.map((d) => d.replace('dropped a watcher: ', '')).join(' | ')}; fds ${fds0} -> ${fds1}`;
  console.log(`watch-stuck: ${figures}`);
  assert.equal(drops.length, 5, figures);
  assert.ok(drops.every((d) => /over the 1048576-byte bound|nothing read for/.test(d)), figures);
  assert.equal(fds1, fds0, `descriptors back to rest: ${figures}`);
  // "Nothing measurable": within noise of the run without watchers (CPU with a floor for tick granularity).
  assert.ok(cpu1 <= cpu0 * 1.5 + 0.3, `CPU with stuck watchers: ${figures}`);
  assert.ok(lat1.p50 <= lat0.p50 * 2 + 2, `client latency with stuck watchers: ${figures}`);
  assert.ok(rss1 <= rss0 + 5 * 2 + 64, `memory: at most the 5 bounded backlogs plus slack: ${figures}`);

  // 100 attach/detach cycles: watch, the reply, close.
  for (let i = 0; i < 100; i++) {
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(sock);
      c.on('error', reject);
      c.on('connect', () => c.write('{"cmd":"watch","interval":100}\n'));
      c.once('data', () => (i % 2 === 0 ? c.destroy() : c.end()));
      c.on('close', () => resolve());
    });
  }
  const fds2 = await waitForSteady(() => fdCount(proxy.pid), { what: 'descriptors after 100 cycles', quietMs: 500, timeoutMs: 10_000 });
  console.log(`watch-stuck: 100 watch/close cycles: fds ${fds0} -> ${fds2}`);
  assert.equal(fds2, fds0, 'no descriptor left by 100 attach/detach cycles');
  assert.equal(await greetingVia(port, HOST), 'A');
});
