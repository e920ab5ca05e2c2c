/**
 * Fault 1: a backend dies mid-stream. Killed process (SIGKILL of a child
 * streaming to us), a reset, a silent blackhole under idleTimeout, and an
 * active `tcp` check noticing a killed backend.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort, waitFor } from '../helpers/net.js';
import { deadline, dial, listenOn, lo, startBackend, watchEnd } from './helpers.js';

const HOST = lo(50);

test('backend process SIGKILLed mid-transfer: the client gets a close within 1 s, not a hang', { timeout: 30000 }, async (t) => {
  const be = await startBackend('stream', HOST, String(2 * 1024 * 1024 * 1024));
  t.after(() => be.kill());
  const port = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", idleTimeout: "1m" }],
    upstreams: { b: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const c = await dial(port, HOST);
  const end = watchEnd(c);
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  await waitFor(() => got > 4 * 1024 * 1024, { timeoutMs: 5000, what: 'some MB to flow' });
  const killedAt = Date.now();
  process.kill(be.pid, 'SIGKILL');
  const r = await Promise.race([end, deadline(3000)]);
  assert.ok(r !== undefined, 'client still open 3 s after the backend was killed (hang)');
  const ms = r.at - killedAt;
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'access record' });
  const rec = app.records[0]!;
  console.log(`backend SIGKILL: client closed ${ms} ms after the kill (${r.error?.code ?? (r.sawEnd ? 'FIN' : 'close')}), ${(r.bytes / 1048576).toFixed(1)} MB received, reason ${rec.reason}`);
  assert.ok(ms <= 1000, `client closed ${ms} ms after the backend died (want <= 1000)`);
});

test('backend resets mid-stream: the client sees a reset', { timeout: 20000 }, async (t) => {
  const be = await listenOn(HOST, (s) => {
    s.write(Buffer.alloc(256 * 1024, 1));
    setTimeout(() => s.resetAndDestroy(), 150); // the scenario: reset mid-stream
  });
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const c = await dial(port, HOST);
  const r = await watchEnd(c);
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'access record' });
  const rec = app.records[0]!;
  console.log(`backend RST: client saw ${r.error?.code ?? (r.sawEnd ? 'a FIN' : 'a plain close')} after ${r.bytes} bytes; record reason ${rec.reason} "${rec.detail}"`);
  assert.equal(r.error?.code, 'ECONNRESET', `client saw ${r.error?.code ?? 'no error'} instead of a reset`);
});

test('silent blackhole (backend stops reading and writing), idleTimeout 1s: both sides closed by ~1 s, reason idle_timeout', { timeout: 20000 }, async (t) => {
  let backendEnd: ReturnType<typeof watchEnd> | undefined;
  const be = await listenOn(HOST, (s) => {
    backendEnd = watchEnd(s);
    s.write('hello\n');
    // Then nothing: pause reading, never write again.
    setImmediate(() => s.pause());
  });
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", idleTimeout: "1s" }],
    upstreams: { b: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const c = await dial(port, HOST);
  const end = watchEnd(c);
  await new Promise((r) => c.once('data', r));
  const quietFrom = Date.now();
  c.pause(); // the client goes quiet too
  const r = await end;
  await waitFor(() => backendEnd !== undefined, { timeoutMs: 1000, what: 'backend accept' });
  const b = await Promise.race([backendEnd!, deadline(2000)]);
  assert.ok(b !== undefined, 'backend side still open 2 s after the client side closed');
  const clientMs = r.at - quietFrom;
  const backendMs = b.at - quietFrom;
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'access record' });
  const rec = app.records[0]!;
  console.log(`blackhole idleTimeout 1s: client closed after ${clientMs} ms, backend after ${backendMs} ms, reason ${rec.reason}`);
  assert.equal(rec.reason, 'idle_timeout');
  // The sweep runs every idleTimeout/4, so up to 250 ms late; a little slack for the loop.
  assert.ok(clientMs >= 950 && clientMs <= 1450, `client closed after ${clientMs} ms (want ~1000-1250)`);
  assert.ok(backendMs <= 1450, `backend closed after ${backendMs} ms`);
});

test('tcp check (interval 200ms) against a killed backend: DOWN within fall*interval+timeout', { timeout: 20000 }, async (t) => {
  const be = await startBackend('greet', HOST);
  t.after(() => be.kill());
  const other = await listenOn(HOST, (s) => s.end('other\n'));
  t.after(() => other.close());
  const port = await reservePort(HOST);
  const interval = 200;
  const timeout = 150;
  const fall = 3;
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b" }],
    upstreams: { b: { check: { type: "tcp", interval: ${interval}, timeout: ${timeout}, rise: 2, fall: ${fall} },
      servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }, "${HOST}:${other.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const id = `b/${HOST}:${be.port}`;
  await waitFor(() => app.runtime.backend(id)?.op === 'up', { timeoutMs: 3000, what: 'first probe' });
  // Let the schedule leave the first-probe phase: the bound below assumes the steady
  // schedule, which is a matter of time passed, not of an event.
  await new Promise((r) => setTimeout(r, 2 * interval));
  const killedAt = Date.now();
  process.kill(be.pid, 'SIGKILL');
  await waitFor(() => app.runtime.backend(id)?.op === 'down', { timeoutMs: 5000, what: 'DOWN' });
  const ms = Date.now() - killedAt;
  const bound = fall * interval + timeout;
  console.log(`tcp check, killed backend: DOWN after ${ms} ms (bound fall*interval+timeout = ${bound} ms); ${app.runtime.backend(id)!.opReason}`);
  assert.ok(ms <= bound + 100, `DOWN after ${ms} ms, bound ${bound} ms (+100 ms polling slack)`);
  // And clients now land on the other backend only.
  for (let i = 0; i < 3; i++) {
    const s = net.connect({ port, host: HOST });
    const line = await new Promise<string>((res, rej) => {
      s.once('data', (d: Buffer) => res(d.toString()));
      s.once('error', rej);
    });
    s.destroy();
    assert.equal(line, 'other\n');
  }
});
