/**
 * Backend choice over real sockets: retries on refused and blackholed
 * backends, ip_hash stickiness by client address, limits, backup and down
 * servers, passive failure accounting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { blackhole, connect, reservePort, greetingVia, listen, namedEcho, readAll, readLine, waitFor } from '../helpers/net.js';

test('a refused backend is retried on the next one; the client never notices', async (t) => {
  const dead = await reservePort();
  const be = await listen(namedEcho('alive'));
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: [
      { address: "127.0.0.1:${dead}", maxFails: 0 },
      "127.0.0.1:${be.port}",
    ] } },
  }`);
  t.after(() => app.stopNow());
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), 'alive');
  const dead_ = app.runtime.backend(`u/127.0.0.1:${dead}`)!;
  assert.ok(dead_.connectFailures >= 2, `round robin should have tried the dead one, failures=${dead_.connectFailures}`);
  assert.ok(app.lines.some((l) => /connect to u\/127\.0\.0\.1:\d+ failed: connection refused/.test(l)));
});

test('a blackholed backend costs connectTimeout, then the next one serves', async (t) => {
  const hole = await blackhole();
  t.after(() => hole.close());
  const be = await listen(namedEcho('alive'));
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u", connectTimeout: "400ms" }],
    upstreams: { u: { balance: "round_robin", servers: [
      { address: "127.0.0.1:${hole.port}", weight: 100 },
      "127.0.0.1:${be.port}",
    ] } },
  }`);
  t.after(() => app.stopNow());
  const t0 = Date.now();
  assert.equal(await greetingVia(port), 'alive');
  const took = Date.now() - t0;
  assert.ok(took >= 380 && took < 1500, `took ${took} ms, expected about connectTimeout (400 ms)`);
  assert.ok(app.lines.some((l) => /connect timeout after 400 ms/.test(l)), app.lines.join(''));
  // maxFails 1 (default) took it out: the next client goes straight to the live one.
  const t1 = Date.now();
  assert.equal(await greetingVia(port), 'alive');
  assert.ok(Date.now() - t1 < 300, 'passive failure should have taken the blackhole out');
});

test('every backend failing closes the client: connect_failed, and no_backend when none is usable', async (t) => {
  const a = await reservePort();
  const b = await reservePort();
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a}", "127.0.0.1:${b}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  const r = await readAll(c);
  assert.equal(r.data.length, 0);
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'record' });
  assert.equal(app.records[0]!.reason, 'connect_failed');
  // Both are now out for failTimeout (maxFails 1): nothing usable.
  const c2 = await connect(port);
  await readAll(c2);
  await waitFor(() => app.records.length, { until: (n) => n === 2, timeoutMs: 2000, what: 'record' });
  assert.equal(app.records[1]!.reason, 'no_backend');
});

test('ip_hash: each client address keeps its backend; addresses spread over backends', async (t) => {
  const names = ['A', 'B', 'C'];
  const bes = await Promise.all(names.map((n) => listen(namedEcho(n))));
  t.after(() => Promise.all(bes.map((b) => b.close())));
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { balance: "ip_hash", servers: [${bes.map((b) => `"127.0.0.1:${b.port}"`).join(',')}] } },
  }`);
  t.after(() => app.stopNow());
  const seen = new Map<string, string>();
  for (let i = 5; i < 25; i++) {
    const ip = `127.0.0.${i}`;
    const first = await greetingVia(port, '127.0.0.1', ip);
    for (let k = 0; k < 3; k++) assert.equal(await greetingVia(port, '127.0.0.1', ip), first, `${ip} moved`);
    seen.set(ip, first);
  }
  const used = new Set(seen.values());
  assert.ok(used.size >= 2, `20 addresses all went to ${[...used]}`);
  // Take one backend away: only its clients move.
  const victim = [...used][0]!;
  const vbe = bes[names.indexOf(victim)]!;
  await vbe.close();
  for (const [ip, name] of seen) {
    const now = await greetingVia(port, '127.0.0.1', ip);
    if (name !== victim) assert.equal(now, name, `${ip} moved although its backend ${name} is fine`);
    else assert.notEqual(now, victim);
  }
});

test('maxConnections per listener: the extra client is closed with reason limit', async (t) => {
  const be = await listen(namedEcho('x'));
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u", maxConnections: 2 }],
    upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c1 = await connect(port);
  const c2 = await connect(port);
  assert.equal(await readLine(c1), 'x');
  assert.equal(await readLine(c2), 'x');
  const c3 = await connect(port);
  assert.equal((await readAll(c3)).data.length, 0);
  await waitFor(() => app.records.some((r) => r.reason === 'limit'), { timeoutMs: 2000, what: 'limit record' });
  c1.destroy();
  await waitFor(() => app.records.length, { until: (n) => n === 2, timeoutMs: 2000, what: 'c1 record' });
  const c4 = await connect(port);
  assert.equal(await readLine(c4), 'x', 'a slot freed up, the next client must get in');
  c2.destroy();
  c4.destroy();
});

test('maxConns per server spills over to the next server', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { balance: "least_conn", servers: [
      { address: "127.0.0.1:${a.port}", maxConns: 1, weight: 10 },
      { address: "127.0.0.1:${b.port}", weight: 1 },
    ] } },
  }`);
  t.after(() => app.stopNow());
  const socks = [];
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await connect(port);
    socks.push(c);
    got.push(await readLine(c));
  }
  assert.equal(got.filter((g) => g === 'A').length, 1, `A has maxConns 1: ${got}`);
  for (const s of socks) s.destroy();
});

test('backup servers serve only while no primary is usable; down servers never', async (t) => {
  const p = await listen(namedEcho('primary'));
  const bk = await listen(namedEcho('backup'));
  const dn = await listen(namedEcho('down'));
  t.after(() => Promise.all([bk.close(), dn.close(), p.close()]));
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: [
      { address: "127.0.0.1:${p.port}", failTimeout: "30s" },
      { address: "127.0.0.1:${bk.port}", backup: true },
      { address: "127.0.0.1:${dn.port}", down: true },
    ] } },
  }`);
  t.after(() => app.stopNow());
  for (let i = 0; i < 5; i++) assert.equal(await greetingVia(port), 'primary');
  await p.close();
  for (let i = 0; i < 5; i++) assert.equal(await greetingVia(port), 'backup');
  assert.equal(app.runtime.tally.backend(`u/127.0.0.1:${dn.port}`).total, 0, 'a down: true server got traffic');
});

test('passive health: maxFails failures within failTimeout take a server out for failTimeout', async (t) => {
  const deadPort = await reservePort();
  const alive = await listen(namedEcho('alive'));
  t.after(() => alive.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: [
      { address: "127.0.0.1:${deadPort}", maxFails: 2, failTimeout: "600ms" },
      "127.0.0.1:${alive.port}",
    ] } },
  }`);
  t.after(() => app.stopNow());
  const id = `u/127.0.0.1:${deadPort}`;
  const transitions: string[] = [];
  app.runtime.bus.on('transition', (e) => e.backend === id && transitions.push(`${e.from}->${e.to}`));
  for (let i = 0; i < 8; i++) assert.equal(await greetingVia(port), 'alive');
  assert.equal(app.runtime.backend(id)!.connectFailures, 2, 'after 2 failures it must not be tried again');
  assert.deepEqual(transitions, ['UP->DOWN']);
  // A dead backend that comes back gets traffic again once failTimeout passed.
  const back = await listen(namedEcho('back'), '127.0.0.1', deadPort);
  t.after(() => back.close());
  await waitFor(() => transitions.length, { until: (n) => n === 2, timeoutMs: 2000, what: 'fail_timeout to pass' });
  assert.deepEqual(transitions, ['UP->DOWN', 'DOWN->UP']);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await greetingVia(port));
  assert.ok(seen.has('back'), `recovered backend got no traffic: ${[...seen]}`);
});
