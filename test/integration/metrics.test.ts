/** /metrics scraped with a real HTTP client and parsed as Prometheus text. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { connect, freePort, greetingVia, listen, namedEcho, readAll, waitFor } from '../helpers/net.js';

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
  const dead = await freePort();
  const port = await freePort();
  const mport = await freePort();
  const app = await startTestApp(`{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u", deny: ["127.0.0.9"] }],
    upstreams: { u: { check: { type: "tcp", interval: "10s" }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${dead}"] } },
    metrics: { listen: "127.0.0.1:${mport}" },
  }`);
  t.after(() => app.stopNow());
  await waitFor(() => app.runtime.backends().every((b) => b.op !== 'unknown'), 2000, 'first probes');
  for (let i = 0; i < 3; i++) assert.equal(await greetingVia(port), 'A');
  const denied = await connect(port, '127.0.0.1', '127.0.0.9');
  await readAll(denied);
  await waitFor(() => app.records.length === 4, 2000, 'records');
  await app.actions.reload('ctl'); // unchanged file: counts nothing
  app.refuse('test refusal', 'ctl');

  const res = await fetch(`http://127.0.0.1:${mport}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const m = parse(await res.text());
  const idA = `u/127.0.0.1:${a.port}`;
  const idD = `u/127.0.0.1:${dead}`;
  assert.equal(m.get('tcplb_listener_connections_total{listener="front"}'), 4);
  assert.equal(m.get('tcplb_listener_refused_total{listener="front",reason="denied"}'), 1);
  assert.equal(m.get('tcplb_listener_bytes_total{listener="front",direction="out"}'), 6);
  assert.equal(m.get('tcplb_listener_active_connections{listener="front"}'), 0);
  assert.equal(m.get(`tcplb_backend_state{backend="${idA}",state="UP"}`), 1);
  assert.equal(m.get(`tcplb_backend_state{backend="${idD}",state="DOWN"}`), 1);
  assert.equal(m.get(`tcplb_backend_state{backend="${idD}",state="UP"}`), 0);
  assert.equal(m.get(`tcplb_backend_connections_total{backend="${idA}"}`), 3);
  assert.equal(m.get(`tcplb_probe_duration_seconds_count{backend="${idD}",result="fail"}`), 1);
  assert.equal(m.get('tcplb_reloads_total{result="failed"}'), 1);
  const notFound = await fetch(`http://127.0.0.1:${mport}/`);
  assert.equal(notFound.status, 404);
});
