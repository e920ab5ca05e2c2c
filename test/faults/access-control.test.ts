/**
 * Fault 11: access control. allow/deny CIDR lists (IPv4 and IPv6, deny
 * wins) refuse a client before any backend connect (the backend sees no
 * connection; access-log reason `denied`); maxConnectionsPerClient refuses
 * the one over (reason `limit`); and a flood of 500 connections from one
 * address does not keep another address from being served promptly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor, waitForSteady } from '../helpers/wait.js';
import { listenOn, lo, sleep, startFlood, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(56);

/** Connect from `local` and report whether a greeting came, and how fast the outcome was. */
function attempt(port: number, host: string, local?: string, holdMs = 0): Promise<{ greeted: boolean; ms: number; sock?: net.Socket }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ port, host, ...(local === undefined ? {} : { localAddress: local }) });
    s.on('error', () => {});
    const t = setTimeout(() => done(false), 3000);
    function done(greeted: boolean): void {
      clearTimeout(t);
      if (!(greeted && holdMs > 0)) s.destroy();
      resolve({ greeted, ms: performance.now() - t0, ...(greeted && holdMs > 0 ? { sock: s } : {}) });
    }
    s.once('data', () => done(true));
    s.once('close', () => done(false));
  });
}

test('allow/deny (v4 and v6, deny wins) refuse before any backend connect; reason denied', { timeout: 30_000 }, async (t) => {
  const be = await listenOn(HOST, (s) => s.write('hi\n'));
  t.after(() => be.close());
  const p4 = await reservePort(HOST);
  const p6 = await reservePort('::1');
  const p6d = await reservePort('::1');
  const app = await startTestApp(`{
    listeners: [
      { name: "v4", listen: "${HOST}:${p4}", upstream: "u", allow: ["127.0.0.56/29", "127.0.0.50"], deny: ["127.0.0.57", "127.0.0.60/31"] },
      { name: "v6", listen: "[::1]:${p6}", upstream: "u", allow: ["::1/128"] },
      { name: "v6deny", listen: "[::1]:${p6d}", upstream: "u", allow: ["::/0"], deny: ["::1"] },
    ],
    upstreams: { u: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const cases: { name: string; port: number; host: string; local?: string; want: boolean }[] = [
    { name: 'v4 .58 allowed', port: p4, host: HOST, local: lo(58), want: true },
    { name: 'v4 .50 allowed (single address)', port: p4, host: HOST, local: lo(50), want: true },
    { name: 'v4 .57 allowed and denied: deny wins', port: p4, host: HOST, local: lo(57), want: false },
    { name: 'v4 .61 denied by /31', port: p4, host: HOST, local: lo(61), want: false },
    { name: 'v4 .64 not in allow', port: p4, host: HOST, local: lo(64), want: false },
    { name: 'v6 ::1 allowed', port: p6, host: '::1', want: true },
    { name: 'v6 ::1 denied: deny wins over ::/0', port: p6d, host: '::1', want: false },
  ];
  const out: string[] = [];
  for (const c of cases) {
    const before = be.accepted();
    const nRec = app.records.length;
    const r = await attempt(c.port, c.host, c.local);
    await waitFor(() => app.records.length, { until: (n) => n === nRec + 1, timeoutMs: 2000, what: `record for ${c.name}` });
    await sleep(50); // proving a negative: a backend connect, if any were made, would have arrived by now
    const rec = app.records[nRec]!;
    assert.equal(r.greeted, c.want, c.name);
    if (c.want) {
      assert.equal(be.accepted(), before + 1, `${c.name}: backend connection`);
    } else {
      assert.equal(be.accepted(), before, `${c.name}: the backend saw a connection from a denied client`);
      assert.equal(rec.reason, 'denied', `${c.name}: reason`);
      assert.equal(rec.backend, '', `${c.name}: a backend was chosen`);
    }
    out.push(`${c.name}: ${r.greeted ? 'served' : `refused in ${r.ms.toFixed(1)} ms (${rec.reason})`}`);
  }
  console.log(`access control: ${out.join('; ')}`);
});

test('maxConnectionsPerClient: the one over the limit is closed (reason limit); other addresses unaffected', { timeout: 30_000 }, async (t) => {
  const be = await listenOn(HOST, (s) => s.write('hi\n'));
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u", maxConnectionsPerClient: 3 }],
    upstreams: { u: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const held: net.Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const r = await attempt(port, HOST, lo(59), 1);
    assert.ok(r.greeted, `connection ${i + 1} of 3 refused`);
    held.push(r.sock!);
  }
  const before = be.accepted();
  const over = await attempt(port, HOST, lo(59));
  assert.equal(over.greeted, false, 'the 4th connection from one address was served');
  await waitFor(() => app.records.some((r) => r.reason === 'limit'), { timeoutMs: 2000, what: 'limit record' });
  assert.equal(be.accepted(), before, 'the backend saw the connection over the limit');
  const other = await attempt(port, HOST, lo(58));
  assert.ok(other.greeted, 'another address was refused');
  held[0]!.destroy();
  await waitFor(() => app.engine.sessions(100).list.filter((s) => s.client === lo(59)).length === 2, { timeoutMs: 2000, what: 'the closed one to be counted out' });
  const again = await attempt(port, HOST, lo(59));
  assert.ok(again.greeted, 'after one closed, the address is served again');
  console.log(`maxConnectionsPerClient 3: 4th refused in ${over.ms.toFixed(1)} ms (reason limit), other address served, a slot freed is reusable`);
});

test('a flood of 500 connections from 127.0.0.60 (maxConnectionsPerClient 50) does not keep 127.0.0.61 from being served', { timeout: 60_000 }, async (t) => {
  // Proxy and flood each in their own process: the latency measured here is the proxy's, not this event loop's.
  const be = await listenOn(HOST, (s) => s.write('hi\n'));
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const dir = tmpDir('flood');
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u", maxConnectionsPerClient: 50 }],
    upstreams: { u: { servers: ["${HOST}:${be.port}"] } },
    log: { access: "access.log", format: "json" },
  }`,
  );
  const px = await startProxy(file);
  t.after(() => px.kill());

  const pct = (xs: number[], p: number): number => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  const quiet: number[] = [];
  for (let i = 0; i < 20; i++) quiet.push((await attempt(port, HOST, lo(61))).ms);

  const FLOOD_MS = 3500;
  const flood = await startFlood(HOST, port, 500, lo(60), FLOOD_MS);
  t.after(() => flood.kill());
  await sleep(300); // the scenario: measure once the flood is in full swing
  const during: number[] = [];
  let failures = 0;
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    const r = await attempt(port, HOST, lo(61));
    if (!r.greeted) failures++;
    during.push(r.ms);
    await sleep(50); // pacing of the measured client
  }
  const f = await flood.next<{ opened: number; refused: number; maxLive: number }>((m) => m.done === true, 10_000);
  // The flood's access lines are written as its connections end: wait until the log stops growing.
  const accessLog = path.join(dir, 'access.log');
  await waitForSteady(() => (fs.existsSync(accessLog) ? fs.statSync(accessLog).size : 0), { what: 'the access log after the flood', quietMs: 200, timeoutMs: 5000 });
  const log = fs.existsSync(path.join(dir, 'access.log')) ? fs.readFileSync(path.join(dir, 'access.log'), 'utf8') : '';
  const recs = log.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { client: string; reason: string; backend: string | null });
  const limited = recs.filter((r) => r.client === lo(60) && r.reason === 'limit');
  const limitedWithBackend = limited.filter((r) => r.backend !== null).length;
  console.log(
    `flood from .60 (500 at once, reopened for ${FLOOD_MS / 1000} s: ${f.opened} opened, ${f.refused} refused, at most ${f.maxLive} served at once; ${limited.length} "limit" lines in the access log): ` +
      `.61 served ${during.length - failures}/${during.length}, latency p50 ${pct(during, 0.5).toFixed(1)} ms, p99 ${pct(during, 0.99).toFixed(1)} ms, max ${Math.max(...during).toFixed(1)} ms ` +
      `(without the flood p50 ${pct(quiet, 0.5).toFixed(1)} ms, max ${Math.max(...quiet).toFixed(1)} ms)`,
  );
  assert.equal(failures, 0, `.61 was refused ${failures} times during the flood`);
  assert.ok(f.maxLive <= 50, `.60 had ${f.maxLive} connections served at once (limit 50)`);
  assert.ok(f.refused > 0 && limited.length > 0, 'the flood was never limited');
  assert.equal(limitedWithBackend, 0, 'connections over the limit reached a backend');
  assert.ok(Math.max(...during) < 500, `.61 waited up to ${Math.max(...during).toFixed(0)} ms during the flood`);
  // "Promptly": every attempt served, none slower than half a second (the flood shares the accept queue and 2 cores).
});
