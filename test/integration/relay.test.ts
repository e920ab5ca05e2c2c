/**
 * The data plane over real loopback sockets: exact relay with backpressure,
 * half-close both ways, reset propagation, idle timeout, IPv6 clients.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { connect, reservePort, listen, readAll, readLine, sha256 } from '../helpers/net.js';
import { waitFor, waitForSteady } from '../helpers/wait.js';
import { startTestApp } from '../helpers/app.js';

test('20 MB of random bytes each way at once arrive intact', async (t) => {
  const SIZE = 20 * 1024 * 1024;
  const up = crypto.randomBytes(SIZE);
  const down = crypto.randomBytes(SIZE);
  let backendGot: Promise<string> | undefined;
  const be = await listen((s) => {
    backendGot = readAll(s).then((r) => sha256(r.data));
    s.end(down);
  });
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ name: "bulk", listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  const got = readAll(c);
  c.end(up);
  const r = await got;
  assert.equal(r.data.length, SIZE);
  assert.equal(sha256(r.data), sha256(down), 'backend -> client bytes differ');
  assert.equal(await backendGot, sha256(up), 'client -> backend bytes differ');
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 3000, what: 'access record' });
  assert.equal(app.records[0]!.bytesIn, SIZE);
  assert.equal(app.records[0]!.bytesOut, SIZE);
  assert.equal(app.records[0]!.reason, 'closed');
});

test('a slow reader slows the backend: the proxy buffers a bounded amount', async (t) => {
  // The backend writes as fast as it is allowed; the client does not read.
  let written = 0;
  let backendSock: net.Socket | undefined;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const be = await listen((s) => {
    backendSock = s;
    const pump = (): void => {
      while (written < 200 * 1024 * 1024) {
        written += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
  });
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  c.pause();
  await waitFor(() => backendSock !== undefined, { timeoutMs: 2000, what: 'backend accept' });
  // The buffers between the backend and the paused client fill up, then the backend's writes stop.
  const stalledAt = await waitForSteady(() => written, { what: 'the backend\'s writes to stall', quietMs: 300, timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 500)); // proving a negative: it stays stalled
  // Socket buffers on three hops hold a few MB at most; without backpressure it would be 200 MB.
  assert.ok(stalledAt < 32 * 1024 * 1024, `backend wrote ${stalledAt} bytes to a client that reads nothing`);
  assert.equal(written, stalledAt, 'backend kept writing while the client did not read');
  // Reading resumes the flow.
  let read = 0;
  c.on('data', (d: Buffer) => (read += d.length));
  c.resume();
  await waitFor(() => read > stalledAt, { timeoutMs: 5000, what: 'flow to resume' });
  c.destroy();
});

test('half-close: client FIN, backend keeps sending, then closes', async (t) => {
  const be = await listen(
    (s) => {
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => {
        // The client finished sending; answer after its FIN, then close.
        s.write(`got ${Buffer.concat(got).toString()}; `);
        setTimeout(() => s.end('bye'), 50); // the scenario: the backend answers a moment after the FIN
      });
    },
    '127.0.0.1',
    0,
    { allowHalfOpen: true },
  );
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  const got = readAll(c);
  c.end('question');
  assert.equal((await got).data.toString(), 'got question; bye');
});

test('half-close: backend FIN, client keeps sending and gets the answer', async (t) => {
  const be = await listen(
    (s) => {
      const got: Buffer[] = [];
      s.end('server done\n'); // FIN first, keep reading
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => {
        received = Buffer.concat(got).toString();
      });
    },
    '127.0.0.1',
    0,
    { allowHalfOpen: true },
  );
  let received = '';
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  let ended = false;
  c.on('end', () => (ended = true));
  assert.equal(await readLine(c), 'server done');
  await waitFor(() => ended, { timeoutMs: 2000, what: 'client to see the FIN' });
  c.write('still talking');
  c.end();
  await waitFor(() => received === 'still talking', { timeoutMs: 3000, what: 'backend to receive after its FIN' });
});

test('a reset from the backend reaches the client as a reset', async (t) => {
  const be = await listen((s) => {
    s.once('data', () => s.resetAndDestroy());
  });
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port);
  const r = readAll(c);
  c.write('hello');
  const { error } = await r;
  assert.equal(error?.code, 'ECONNRESET');
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'record' });
  assert.match(app.records[0]!.detail, /ECONNRESET from backend/);
});

test('idleTimeout closes both sides of a silent connection', async (t) => {
  let backendClosed = false;
  const be = await listen((s) => s.on('close', () => (backendClosed = true)).resume());
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b", idleTimeout: 300 }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const started = Date.now();
  const c = await connect(port);
  // Traffic keeps it alive: send every 150 ms for 600 ms; the last byte at ~450 ms.
  for (let i = 0; i < 4; i++) {
    c.write('x');
    await new Promise((r) => setTimeout(r, 150)); // the scenario: traffic paced under the idle timeout
  }
  assert.equal(c.destroyed, false, 'closed although traffic flowed');
  await readAll(c);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 700 && elapsed < 2000, `closed after ${elapsed} ms`);
  await waitFor(() => backendClosed, { timeoutMs: 2000, what: 'backend side closed' });
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'record' });
  assert.equal(app.records[0]!.reason, 'idle_timeout');
});

test('IPv6 clients and IPv6 backends work', async (t) => {
  const be = await listen((s) => s.end(`hello ${s.remoteAddress}\n`), '::1');
  t.after(() => be.close());
  const port = await reservePort('::1');
  const app = await startTestApp(`{
    listeners: [{ listen: "[::1]:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["[::1]:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const c = await connect(port, '::1');
  assert.equal(await readLine(c), 'hello ::1');
  c.destroy();
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'record' });
  assert.equal(app.records[0]!.client, '::1');
  assert.equal(app.records[0]!.backend, `b/[::1]:${be.port}`);
});

test('a bare-port listener accepts IPv4 and IPv6 clients', async (t) => {
  const be = await listen((s) => s.end('ok\n'));
  t.after(() => be.close());
  const port = await reservePort('::');
  const app = await startTestApp(`{
    listeners: [{ listen: "${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  for (const host of ['127.0.0.1', '::1']) {
    const c = await connect(port, host);
    assert.equal(await readLine(c), 'ok');
    c.destroy();
  }
});

test('the suite runs on the engine this pass asked for (TCPLB_ENGINE), and says so', async (t) => {
  const be = await listen((s) => s.end('x'));
  t.after(() => be.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "b" }],
    upstreams: { b: { servers: ["127.0.0.1:${be.port}"] } },
  }`);
  t.after(() => app.stopNow());
  const wanted = process.env.TCPLB_ENGINE;
  if (wanted === 'native' || wanted === 'js') assert.equal(app.engine.name, wanted);
  assert.equal(app.actions.snapshot().engine, app.engineChoice.label);
  assert.ok(app.lines.some((l) => l.includes(`engine: ${app.engineChoice.why}`)), 'the startup log names the engine and why');
  const c = await connect(port);
  assert.equal((await readAll(c)).data.toString(), 'x');
});
