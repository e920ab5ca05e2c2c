// Relay basics: echo through the engine, byte counters, half-close, preamble.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  Harness, HOW, addon, collect, connectClient, startEchoServer, startServer, withTimeout,
} from './helpers.mjs';

test('module shape', () => {
  assert.equal(addon.version, 'tcplb-native 4');
  assert.equal(typeof addon.Engine, 'function');
  assert.throws(() => new addon.Engine(42), TypeError);
});

test('echo relay: bytes arrive, ACCEPT fields and CLOSED counters are right', { timeout: 10000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, undefined),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port, '127.0.0.70', { localAddress: '127.0.0.73' });
    const got = collect(client);
    const payload = crypto.randomBytes(300_000);
    const accept = await h.waitFor((e) => e.type === 'ACCEPT');
    assert.equal(accept.listenerId, 1);
    assert.equal(accept.clientIp, '127.0.0.73');
    assert.equal(accept.clientPort, client.localPort);
    assert.equal(accept.localIp, '127.0.0.70');
    assert.equal(accept.localPort, port);
    await h.waitFor((e) => e.type === 'CONNECTED' && e.connId === accept.connId);

    // Echo back everything before ending, so the byte counts are symmetric.
    let received = 0;
    const all = new Promise((resolve) => client.on('data', (d) => {
      received += d.length;
      if (received === payload.length) resolve();
    }));
    client.write(payload);
    await withTimeout(all, 5000, 'echo');
    const live = h.engine.stats();
    assert.ok(live instanceof Float64Array);
    assert.deepEqual([...live], [accept.connId, payload.length, payload.length]);
    client.end();
    const { data, error } = await got;
    assert.equal(error, null);
    assert.ok(data.equals(payload));

    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.how, HOW.NORMAL);
    assert.equal(closed.bytesIn, payload.length);
    assert.equal(closed.bytesOut, payload.length);
    assert.equal(closed.errno, 0);
    assert.equal(closed.side, -1);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
    assert.equal(h.engine.stats().length, 0);
  } finally {
    h.stop();
    await echo.close();
  }
});

test('half-close: backend answers after the client FIN and the client gets all of it', { timeout: 10000 }, async () => {
  const reply = crypto.randomBytes(2_000_000);
  let backendSaw = null;
  const backend = await startServer('127.0.0.71', (s) => {
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {  // the client's FIN arrived; now answer
      backendSaw = Buffer.concat(chunks);
      s.end(reply);
    });
  }, { allowHalfOpen: true });
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', backend.port, 2000, 0, undefined),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port, '127.0.0.70', { allowHalfOpen: true });
    const got = collect(client);
    client.end('request-then-fin');
    const { data, error } = await got;
    assert.equal(error, null);
    assert.equal(backendSaw.toString(), 'request-then-fin');
    assert.equal(data.length, reply.length);
    assert.ok(data.equals(reply));
    const accept = h.events.find((e) => e.type === 'ACCEPT');
    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.how, HOW.NORMAL);
    assert.equal(closed.bytesIn, 'request-then-fin'.length);
    assert.equal(closed.bytesOut, reply.length);
  } finally {
    h.stop();
    await backend.close();
  }
});

test('half-close the other way: backend FIN first, client keeps sending', { timeout: 10000 }, async () => {
  let backendGot = '';
  const backend = await startServer('127.0.0.71', (s) => {
    s.end('banner\n');  // server speaks first and half-closes
    s.on('data', (d) => { backendGot += d; });
  }, { allowHalfOpen: true });
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', backend.port, 2000, 0, undefined),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port, '127.0.0.70', { allowHalfOpen: true });
    const got = collect(client);
    await new Promise((r) => client.once('end', r));
    client.end('late words');  // still flows to the backend after its FIN
    const { data } = await got;
    assert.equal(data.toString(), 'banner\n');
    const accept = h.events.find((e) => e.type === 'ACCEPT');
    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.how, HOW.NORMAL);
    assert.equal(backendGot, 'late words');
    assert.equal(closed.bytesIn, 'late words'.length);
  } finally {
    h.stop();
    await backend.close();
  }
});

test('preamble reaches the backend before any client byte', { timeout: 10000 }, async () => {
  const preamble = Buffer.from('PROXY TCP4 127.0.0.1 127.0.0.70 1111 2222\r\n');
  let backendData = Buffer.alloc(0);
  let backendEnded;
  const backendDone = new Promise((resolve) => { backendEnded = resolve; });
  const backend = await startServer('127.0.0.72', (s) => {
    s.on('data', (d) => { backendData = Buffer.concat([backendData, d]); });
    s.on('end', () => { s.end(); backendEnded(); });
  });
  // The client writes immediately; JS dials only 100 ms later, so client
  // bytes are already queued in the kernel when the backend connects.
  const h = new Harness({
    onAccept: (ev) => setTimeout(
      () => h.engine.connect(ev.connId, '127.0.0.72', backend.port, 2000, 0, preamble), 100),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port, '127.0.0.70');
    client.end('client-bytes');
    await withTimeout(backendDone, 5000, 'backend end');
    assert.equal(backendData.toString(), preamble.toString() + 'client-bytes');
    const accept = h.events.find((e) => e.type === 'ACCEPT');
    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.bytesIn, 'client-bytes'.length);  // the preamble is not client traffic
  } finally {
    h.stop();
    await backend.close();
  }
});

// A backend that answers and closes at once puts its data and its FIN in one
// epoll edge: the relay takes a short read after EPOLLRDHUP as the end of the
// stream (no recv() spent on the 0). Every size around the 64 KiB read must
// still arrive whole, in order, then the EOF; a reset after data must still
// reach the client as a reset.
test('answer-and-close backends: every size arrives whole then EOF; data then RST still resets the client', { timeout: 20000 }, async () => {
  const sizes = [1, 100, 1448, 65535, 65536, 65537, 200_000];
  let mode = 'end';
  let payload = Buffer.alloc(0);
  const backend = await startServer('127.0.0.71', (s) => {
    s.once('data', () => {
      if (mode === 'end') return s.end(payload);
      s.write(payload, () => setTimeout(() => s.resetAndDestroy(), 20));
    });
  });
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', backend.port, 2000, 0, undefined),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    for (const size of sizes) {
      payload = crypto.randomBytes(size);
      const client = await connectClient(port, '127.0.0.70');
      const got = collect(client);
      client.write('go');
      const { data, error } = await withTimeout(got, 5000, `size ${size}`);
      assert.equal(error, null, `size ${size}`);
      assert.equal(data.length, size);
      assert.ok(data.equals(payload), `size ${size}: bytes differ`);
    }
    for (const n of [0, 1]) await h.waitFor((e) => e.type === 'CLOSED' && e.how === HOW.NORMAL && e.bytesOut === sizes.at(-1 - n));
    mode = 'reset';
    payload = crypto.randomBytes(1000);
    const client = await connectClient(port, '127.0.0.70');
    const got = collect(client);
    client.write('go');
    const { error } = await withTimeout(got, 5000, 'reset');
    assert.equal(error?.code, 'ECONNRESET');
    await h.waitFor((e) => e.type === 'CLOSED' && e.how === HOW.RESET && e.side === 1);
  } finally {
    h.stop();
    await backend.close();
  }
});
