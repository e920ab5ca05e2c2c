/**
 * Fault: a flood of idle connections to the metrics port (hardening issue
 * #1). The proxy child runs under `ulimit -n 256` with a backend and a 200 ms
 * health check; a client trickles a request head at one byte a second, then
 * 1,000 connections are opened to the metrics port and left idle (four times
 * the descriptor limit). The endpoint must hold at most its small cap of
 * them: proxy clients keep being served, the backend stays UP, the
 * trickling client is cut at the header timeout (not at Node's 60-90 s), and
 * a scrape works again once the held connections have timed out.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { METRICS_BOUNDS } from '../../src/metrics/server.js';
import { reservePort } from '../helpers/net.js';
import { waitFor, waitUntil } from '../helpers/wait.js';
import { deadline, dial, fdCount, greeted, lo, startBackend, startProxy, tmpDir, watchEnd, writeConfig } from './helpers.js';

const HOST = lo(54);
const FLOOD_FROM = lo(55);
const NOFILE = 256;
const FLOOD = 1000;
/** Proxy clients served one after another while the flood is held. */
const CLIENTS = 40;
/** Node checks the header timeout every checkIntervalMs: a connection lives at most that much longer. */
const CUT_BOUND_MS = METRICS_BOUNDS.headersTimeoutMs + METRICS_BOUNDS.checkIntervalMs + 1000;


/** One GET /metrics on a fresh connection: the status, or the error code. */
function scrape(port: number, ms = 2000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path: '/metrics', agent: false, timeout: ms }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

test(`metrics flood: ${FLOOD} idle connections and a 1-byte-a-second client under ulimit -n ${NOFILE}: data plane and probes unaffected, slow client cut at the header timeout`, { timeout: 90_000 }, async (t) => {
  const be = await startBackend('greet', HOST);
  t.after(() => be.kill());
  const dir = tmpDir('metrics-flood');
  const port = await reservePort(HOST);
  const mport = await reservePort(HOST);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", connectTimeout: "2s" }],
    upstreams: { b: { check: { type: "tcp", interval: "200ms", timeout: "500ms", rise: 1, fall: 2 }, servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
    metrics: { listen: "${HOST}:${mport}" },
    log: { access: null },
  }`,
  );
  const px = await startProxy(file, { nofile: NOFILE });
  t.after(() => px.kill());
  const limits = (await import('node:fs')).readFileSync(`/proc/${px.pid}/limits`, 'utf8');
  assert.match(limits, new RegExp(`Max open files\\s+${NOFILE}\\s+${NOFILE}`), `the proxy does not run under ulimit -n ${NOFILE}`);
  await waitFor(() => /-> UP/.test(px.stderr()), { timeoutMs: 5000, what: 'backend UP' });
  assert.equal(await scrape(mport), 200, 'no scrape before the flood');
  assert.equal(await greeted(port, HOST, 2000), true, 'not served before the flood');
  const fdsBefore = fdCount(px.pid);

  // The slow client: a request head at one byte a second, started before the flood so it holds a slot.
  const slow = await dial(mport, HOST, FLOOD_FROM);
  const slowEnd = watchEnd(slow);
  const head = `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(200)}\r\n\r\n`;
  let sent = 0;
  const slowStart = Date.now();
  slow.write(head[sent++]!);
  const drip = setInterval(() => (slow.destroyed || sent >= head.length ? clearInterval(drip) : slow.write(head[sent++]!)), 1000);
  t.after(() => clearInterval(drip));

  // The flood: FLOOD connections, nothing sent; every one is closed by the test at the end.
  const floodStart = Date.now();
  const flood: net.Socket[] = [];
  const cut: number[] = []; // ms after the flood started at which the proxy closed each
  let leaving = false;
  t.after(() => {
    leaving = true;
    for (const s of flood) s.destroy();
  });
  for (let i = 0; i < FLOOD; i++) {
    const s = net.connect({ port: mport, host: HOST, localAddress: FLOOD_FROM });
    s.on('error', () => {});
    s.resume(); // read the 408 a timed-out one gets, so its end (and close) is seen
    s.on('close', () => {
      if (!leaving) cut.push(Date.now() - floodStart);
    });
    flood.push(s);
  }
  let peakFds = fdCount(px.pid);
  const sampler = setInterval(() => (peakFds = Math.max(peakFds, fdCount(px.pid))), 50);
  t.after(() => clearInterval(sampler));
  // All but the cap are closed at once (allow 3 s for 1,000 connects and closes on a busy host).
  await waitUntil(() => cut.length, { what: 'the connections beyond the cap closed', timeoutMs: 3000, intervalMs: 50, until: (n) => n >= FLOOD - METRICS_BOUNDS.maxConnections });
  const held = FLOOD - cut.length;
  const heldMs = Date.now() - floodStart;

  // While the held ones are still open: proxy clients are served, probes keep passing.
  let served = 0;
  for (let i = 0; i < CLIENTS; i++) {
    if (!(await greeted(port, HOST, 2000))) break; // one refusal is enough to fail; waiting out 40 would take 80 s
    served++;
  }
  const servedMs = Date.now() - floodStart;

  // The slow client is cut at the header timeout.
  const slowCut = await Promise.race([slowEnd, deadline(CUT_BOUND_MS + 5000)]);
  const slowMs = slowCut === undefined ? Infinity : slowCut.at - slowStart;

  // A scrape works again once the held connections have timed out.
  let scrapeOkMs = -1;
  if (await waitUntil(() => scrape(mport, 1000), { what: 'a scrape answered 200', timeoutMs: CUT_BOUND_MS + 3000, intervalMs: 200, until: (status) => status === 200 })) {
    scrapeOkMs = Date.now() - floodStart;
  }
  // Every idle flood connection is cut by then too (their close may arrive just after the scrape).
  await waitUntil(() => cut.length, { what: 'every flood connection cut', timeoutMs: Math.max(0, floodStart + CUT_BOUND_MS + 1000 - Date.now()), intervalMs: 50, until: (n) => n >= FLOOD });
  clearInterval(sampler);
  const lastCut = cut.length > 0 ? Math.max(...cut) : -1;
  const downs = px.stderr().match(/.*-> DOWN.*/g) ?? [];
  const dropLines = px.stderr().match(/.*metrics: closed \d+ connections? beyond the cap.*/g) ?? [];
  const dropped = dropLines.reduce((n, l) => n + Number(/closed (\d+)/.exec(l)![1]), 0);
  const alive = px.child.exitCode === null && px.child.signalCode === null;

  console.log(
    `metrics flood (ulimit -n ${NOFILE}): fds ${fdsBefore} before, peak ${peakFds} during (${NOFILE - peakFds} left to the data plane); ` +
      `${held} of ${FLOOD} idle connections held after ${heldMs} ms, all ${cut.length === FLOOD ? '' : 'but ' + (FLOOD - cut.length) + ' '}cut by ${lastCut} ms; ` +
      `${served}/${CLIENTS} proxy clients served by ${servedMs} ms; slow client cut after ${slowMs} ms (${sent} bytes sent, ${slowCut?.bytes ?? 0} bytes answered); ` +
      `scrape OK ${scrapeOkMs} ms after the flood began; backend DOWN transitions: ${downs.length}; ` +
      `${dropLines.length} log lines for ${dropped} connections closed beyond the cap`,
  );
  assert.ok(alive, 'the proxy died under the flood');
  assert.equal(served, CLIENTS, `only ${served}/${CLIENTS} proxy clients served during the metrics flood`);
  assert.deepEqual(downs, [], 'health probes failed during the metrics flood');
  assert.ok(held <= METRICS_BOUNDS.maxConnections, `${held} metrics connections held (cap ${METRICS_BOUNDS.maxConnections})`);
  // The metrics endpoint's share: its cap, plus a few for proxy clients and probes in flight while sampled.
  assert.ok(peakFds <= fdsBefore + METRICS_BOUNDS.maxConnections + 8, `proxy descriptors ${fdsBefore} before, ${peakFds} at the peak of the flood`);
  assert.ok(slowMs <= CUT_BOUND_MS, `1-byte-a-second client cut after ${slowMs} ms (bound ${CUT_BOUND_MS} ms)`);
  assert.equal(cut.length, FLOOD, `${FLOOD - cut.length} idle metrics connections still open`);
  assert.ok(lastCut <= CUT_BOUND_MS + 1000, `last idle connection cut after ${lastCut} ms (bound ${CUT_BOUND_MS + 1000} ms)`);
  assert.ok(scrapeOkMs >= 0, 'no successful scrape after the flood');
  // The excess is logged with a count, at most a line a second (the flood is over in well under 3 s).
  assert.ok(dropLines.length >= 1 && dropLines.length <= 3, `${dropLines.length} log lines for the connections beyond the cap`);
});
