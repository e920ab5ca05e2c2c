/** /metrics scraped with a real HTTP client and parsed as Prometheus text. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { METRICS_BOUNDS, descriptorLimit, metricsConnectionCap } from '../../src/metrics/server.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readAll } from '../helpers/net.js';
import { waitFor, waitUntil } from '../helpers/wait.js';

/** Parse the text exposition format into `name{labels}` -> value, checking every line's shape. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a valid exposition line: ${line}`);
    out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return out;
}

test('metrics: listener and backend figures, states, refusals, probe histogram, reloads', async (t) => {
  const a = await listen(namedEcho('A'));
  t.after(() => a.close());
  const dead = await reservePort();
  const port = await reservePort();
  const mport = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u", deny: ["127.0.0.9"] }],
    upstreams: { u: { check: { type: "tcp", interval: "10s" }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${dead}"] } },
    metrics: { listen: "127.0.0.1:${mport}" },
  }`);
  t.after(() => app.stopNow());
  await waitFor(() => app.runtime.backends().every((b) => b.op !== 'unknown'), { timeoutMs: 2000, what: 'first probes' });
  for (let i = 0; i < 3; i++) assert.equal(await greetingVia(port), 'A');
  const denied = await connect(port, '127.0.0.1', '127.0.0.9');
  await readAll(denied);
  await waitFor(() => app.records.length, { until: (n) => n === 4, timeoutMs: 2000, what: 'records' });
  await app.actions.reload('ctl'); // unchanged file: counts nothing
  app.refuse('test refusal', 'ctl');

  const idA = `u/127.0.0.1:${a.port}`;
  const idD = `u/127.0.0.1:${dead}`;
  // The dead backend's failed probes, as the event log saw them: the first one, and any
  // second one its random phase (within the 10 s interval) brought into the test's time.
  const failedProbes = (): number => app.events.list().filter((e) => e.kind === 'probe' && e.backend === idD && e.ok === false).length;
  const before = failedProbes();
  const res = await fetch(`http://127.0.0.1:${mport}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const m = parse(await res.text());
  const after = failedProbes();
  assert.equal(m.get('tcplb_listener_connections_total{listener="front"}'), 4);
  assert.equal(m.get('tcplb_listener_refused_total{listener="front",reason="denied"}'), 1);
  assert.equal(m.get('tcplb_listener_bytes_total{listener="front",direction="out"}'), 6);
  assert.equal(m.get('tcplb_listener_active_connections{listener="front"}'), 0);
  assert.equal(m.get(`tcplb_instance_info{name="${app.runtime.config.instance}"}`), 1);
  assert.equal(m.get('tcplb_ready'), 1, 'a backend of the one upstream answered');
  app.actions.standby(true, 'ctl');
  const m2 = parse(await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text());
  assert.equal(m2.get('tcplb_ready'), 0, 'standby: not ready');
  app.actions.standby(false, 'ctl');
  assert.equal(m.get(`tcplb_backend_state{backend="${idA}",state="UP"}`), 1);
  assert.equal(m.get(`tcplb_backend_state{backend="${idD}",state="DOWN"}`), 1);
  assert.equal(m.get(`tcplb_backend_state{backend="${idD}",state="UP"}`), 0);
  assert.equal(m.get(`tcplb_backend_connections_total{backend="${idA}"}`), 3);
  const failCount = m.get(`tcplb_probe_duration_seconds_count{backend="${idD}",result="fail"}`)!;
  assert.ok(before >= 1 && failCount >= before && failCount <= after, `histogram counts ${failCount} failed probes, the event log ${before}..${after}`);
  assert.equal(m.get('tcplb_reloads_total{result="failed"}'), 1);
  const notFound = await fetch(`http://127.0.0.1:${mport}/`);
  assert.equal(notFound.status, 404);
});

/** An app with only a metrics endpoint worth talking to; returns it and its metrics port. */
async function metricsApp(t: { after(fn: () => unknown): void }): Promise<{ app: TestApp; mport: number }> {
  const port = await reservePort();
  const mport = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:9"] } },
    metrics: { listen: "127.0.0.1:${mport}" },
  }`);
  t.after(() => app.stopNow());
  return { app, mport };
}

/** Send raw bytes on a fresh connection; resolves with everything answered and when the server closed (ms after connect). */
async function raw(port: number, text: string): Promise<{ text: string; ms: number }> {
  const s = await connect(port);
  const t0 = Date.now();
  s.write(text);
  const { data } = await readAll(s);
  return { text: data.toString('latin1'), ms: Date.now() - t0 };
}

/** A connection may outlive the header timeout by up to one check interval (Node checks it periodically). */
const CUT_BOUND_MS = METRICS_BOUNDS.headersTimeoutMs + METRICS_BOUNDS.checkIntervalMs + 500;

test('metrics: GET and HEAD only (405 with Allow), any query string on /metrics, 404 elsewhere, bounded request head', async (t) => {
  const { mport } = await metricsApp(t);
  const base = `http://127.0.0.1:${mport}`;
  for (const url of ['/metrics?name[]=tcplb_reloads_total', '/metrics/?x=1&y', '/metrics?']) {
    const res = await fetch(base + url);
    assert.equal(res.status, 200, url);
    assert.match(await res.text(), /^tcplb_reloads_total\{result="ok"\} 0$/m, url);
  }
  const head = await fetch(`${base}/metrics?q`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /text\/plain/);
  assert.equal(await head.text(), '');
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const res = await fetch(`${base}/metrics`, { method, body: method === 'POST' || method === 'PUT' ? 'x' : undefined });
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get('allow'), 'GET, HEAD', method);
    await res.text();
  }
  for (const url of ['/', '/metricsx', '/metrics/x?y', '/x?/metrics']) {
    const res = await fetch(base + url);
    assert.equal(res.status, 404, url);
    await res.text();
  }
  // A request head beyond maxHeaderSize is refused (431), not buffered.
  const big = await raw(mport, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(METRICS_BOUNDS.maxHeaderSize)}\r\n\r\n`);
  assert.match(big.text, /^HTTP\/1\.1 431 /);
});

test('metrics: an idle, a trickling and a kept-alive connection are cut within the header / keep-alive timeout', async (t) => {
  const { mport } = await metricsApp(t);
  // Never sends a byte.
  const idle = raw(mport, '');
  // Sends its request head one byte every 250 ms: always "active", never complete.
  const trickle = (async () => {
    const s = await connect(mport);
    const t0 = Date.now();
    const text = `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`;
    let i = 0;
    const drip = setInterval(() => (s.destroyed || i >= text.length ? clearInterval(drip) : s.write(text[i++]!)), 250);
    const { data } = await readAll(s);
    clearInterval(drip);
    return { text: data.toString('latin1'), ms: Date.now() - t0 };
  })();
  // One scrape, then silence on the kept-alive connection.
  const kept = raw(mport, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  const [a, b, c] = await Promise.all([idle, trickle, kept]);
  assert.ok(a.ms <= CUT_BOUND_MS, `idle connection cut after ${a.ms} ms (bound ${CUT_BOUND_MS} ms)`);
  assert.ok(b.ms <= CUT_BOUND_MS, `trickling connection cut after ${b.ms} ms (bound ${CUT_BOUND_MS} ms)`);
  assert.match(b.text, /^HTTP\/1\.1 408 /);
  assert.match(c.text, /^HTTP\/1\.1 200 /);
  assert.ok(c.ms <= METRICS_BOUNDS.keepAliveTimeoutMs + METRICS_BOUNDS.checkIntervalMs + 500, `kept-alive connection closed after ${c.ms} ms`);
});

test('metrics: connections beyond the cap are closed at once; the held ones free their slots when they leave', async (t) => {
  const { app, mport } = await metricsApp(t);
  const cap = metricsConnectionCap(descriptorLimit());
  const socks: net.Socket[] = [];
  t.after(() => socks.forEach((s) => s.destroy()));
  let closed = 0;
  for (let i = 0; i < cap + 4; i++) {
    const s = await connect(mport);
    s.on('close', () => closed++);
    s.on('end', () => s.end());
    socks.push(s);
  }
  await waitFor(() => closed >= 4, { timeoutMs: 1000, what: 'the 4 connections beyond the cap closed' });
  await new Promise((r) => setTimeout(r, 200)); // proving a negative: no further connection is closed
  assert.equal(closed, 4, `${closed} closed, expected the 4 beyond the cap of ${cap}`);
  const blocked = await fetch(`http://127.0.0.1:${mport}/metrics`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => 'refused');
  assert.equal(blocked, 'refused', 'a scrape got a slot while the cap was full');
  socks.forEach((s) => s.destroy());
  await waitFor(() => closed === cap + 4, { timeoutMs: 1000, what: 'test sockets closed' });
  // One warning with the count (after a second), not a line per connection.
  await waitFor(() => app.lines.some((l) => l.includes('metrics: closed')), { timeoutMs: 2000, what: 'the drop warning' });
  const warnLines = (): string[] => app.lines.filter((l) => l.includes('metrics: closed'));
  const countsOf = (lines: string[]): number[] => lines.map((l) => Number(new RegExp(`warn  metrics: closed (\\d+) connections? beyond the cap of ${cap}`).exec(l)?.[1]));
  // The refused scrape may be counted in the next second's line: wait until all 5 are reported (the checks below say if not).
  await waitUntil(() => countsOf(warnLines()).reduce((a, b) => a + b, 0), { what: 'all 5 drops reported', timeoutMs: 2500, until: (n) => n >= 5 });
  const warned = warnLines();
  const counts = countsOf(warned);
  // The 4 beyond the cap and the refused scrape, in one line (two if the scrape fell in the next second).
  assert.ok(warned.length >= 1 && warned.length <= 2, warned.join(''));
  assert.equal(counts.reduce((a, b) => a + b, 0), 5, warned.join(''));
  const res = await fetch(`http://127.0.0.1:${mport}/metrics`);
  assert.equal(res.status, 200);
  await res.text();
});
