// Dialling: refused + retry, bad address, connect timeout, client gone mid-dial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  E, HOW, Harness, collect, connectClient, sleep, startEchoServer, withTimeout,
} from './helpers.mjs';

/** A port on which nothing listens (bound once by us, then released). */
async function deadPort(host) {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, host, r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A deterministic "black hole" on loopback: a listener of the engine that is
 * never activated, with backlog 1. Once its accept queue is full (2 queued
 * handshakes), Linux drops further SYNs, so a connect() there can only time out.
 */
async function blackHole(h, host = '127.0.0.74') {
  const r = h.engine.listen(99, host, 0, 1);
  assert.equal(r.ok, true);
  const fillers = [];
  for (let i = 0; i < 4; i++) fillers.push(net.connect(r.port, host).on('error', () => {}));
  await sleep(100);
  return { port: r.port, close: () => fillers.forEach((s) => s.destroy()) };
}

test('ECONNREFUSED, then a retry to a live backend relays', { timeout: 10000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const dead = await deadPort('127.0.0.75');
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.75', dead, 2000, 0, undefined),
    onEvent: (ev) => {
      if (ev.type === 'CONNECT_FAILED') h.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, undefined);
    },
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const got = collect(client);
    client.end('retry works');
    const { data } = await got;
    assert.equal(data.toString(), 'retry works');
    const accept = h.events.find((e) => e.type === 'ACCEPT');
    const failed = h.events.find((e) => e.type === 'CONNECT_FAILED');
    assert.equal(failed.connId, accept.connId);
    assert.equal(failed.errno, E.ECONNREFUSED);
    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.how, HOW.NORMAL);
    // order: ACCEPT, CONNECT_FAILED, CONNECTED, CLOSED
    assert.deepEqual(h.events.filter((e) => e.connId === accept.connId).map((e) => e.type),
      ['ACCEPT', 'CONNECT_FAILED', 'CONNECTED', 'CLOSED']);
    assert.equal(h.engine.counts().fds, 1);
  } finally {
    h.stop();
    await echo.close();
  }
});

test('a bad address literal fails with EINVAL; reject after a failure is how=6', { timeout: 10000 }, async () => {
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, 'not-an-ip', 80, 2000, 0, undefined),
    onEvent: (ev) => { if (ev.type === 'CONNECT_FAILED') h.engine.reject(ev.connId); },
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const { error } = await collect(client);
    assert.equal(error, null);  // a plain close
    const failed = await h.waitFor((e) => e.type === 'CONNECT_FAILED');
    assert.equal(failed.errno, E.EINVAL);
    const closed = await h.closedFor(failed.connId);
    assert.equal(closed.how, HOW.REJECTED_AFTER_FAIL);
  } finally {
    h.stop();
  }
});

test('connect timeout: ETIMEDOUT after timeoutMs (coarse sweep)', { timeout: 10000 }, async (t) => {
  const h = new Harness();
  const hole = await blackHole(h);
  let dialedAt = 0;
  h.onAccept = (ev) => {
    dialedAt = Date.now();
    h.engine.connect(ev.connId, '127.0.0.74', hole.port, 300, 0, undefined);
  };
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const got = collect(client);
    const failed = await h.waitFor((e) => e.type === 'CONNECT_FAILED', 5000);
    const took = Date.now() - dialedAt;
    assert.equal(failed.errno, E.ETIMEDOUT);
    t.diagnostic(`timeoutMs=300: CONNECT_FAILED after ${took} ms`);
    assert.ok(took >= 280 && took < 1500, `timeout fired after ${took} ms`);
    // The client is still there, waiting for JS: a retry would be possible.
    assert.equal(h.engine.counts().connections, 1);
    h.engine.reject(failed.connId);
    const closed = await h.closedFor(failed.connId);
    assert.equal(closed.how, HOW.REJECTED_AFTER_FAIL);
    await got;
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 2, fds: 2 });
  } finally {
    h.stop();
    hole.close();
  }
});

test('client gone while the backend connect is in progress: how=5, dial abandoned', { timeout: 10000 }, async () => {
  const h = new Harness();
  const hole = await blackHole(h);
  h.onAccept = (ev) => h.engine.connect(ev.connId, '127.0.0.74', hole.port, 5000, 0, undefined);
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const accept = await h.waitFor((e) => e.type === 'ACCEPT');
    await sleep(50);
    assert.equal(h.engine.counts().fds, 4);  // 2 listeners + client + dialling backend
    client.destroy();
    const closed = await h.closedFor(accept.connId, 2000);
    assert.equal(closed.how, HOW.CLIENT_GONE);
    assert.equal(closed.bytesIn, 0);
    assert.equal(h.events.some((e) => e.type === 'CONNECT_FAILED'), false);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 2, fds: 2 });
  } finally {
    h.stop();
    hole.close();
  }
});

test('connect/reject/kill for unknown or finished ids are no-ops', { timeout: 5000 }, async () => {
  const h = new Harness();
  try {
    h.engine.connect(12345, '127.0.0.71', 1, 100, 0, undefined);
    h.engine.reject(12345);
    h.engine.kill(12345);
    h.engine.closeListener(777);
    h.engine.activate(777);
    await sleep(50);
    assert.equal(h.events.length, 0);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 0, fds: 0 });
    assert.throws(() => h.engine.connect(1, '127.0.0.71', 1, 100, 0, 'nope'), TypeError);
  } finally {
    h.stop();
  }
});

test('stress the dial path: 200 parallel refused-then-retried connections', { timeout: 20000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const dead = await deadPort('127.0.0.75');
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.75', dead, 2000, 0, undefined),
    onEvent: (ev) => {
      if (ev.type === 'CONNECT_FAILED') h.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, Buffer.from('P:'));
    },
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const results = await withTimeout(Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const c = await connectClient(port);
      const got = collect(c);
      c.end(`n${i}`);
      return (await got).data.toString();
    })), 15000, 'parallel dials');
    results.forEach((r, i) => assert.equal(r, `P:n${i}`));
    await h.waitFor(() => h.closed.size === 200, 5000, '200 CLOSED');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
  } finally {
    h.stop();
    await echo.close();
  }
});
