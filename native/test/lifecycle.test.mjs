// Endings: idle timeout, kill, reject, client gone, reset propagation, closeAll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  E, HOW, Harness, collect, connectClient, sleep, startEchoServer, startServer,
} from './helpers.mjs';

function dialTo(port, idleMs = 0) {
  return (ev, h) => h.engine.connect(ev.connId, '127.0.0.71', port, 2000, idleMs, undefined);
}

test('idle timeout closes a silent connection (how=1) but not a chatty one', { timeout: 10000 }, async (t) => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ onAccept: dialTo(echo.port, 300) });
  try {
    const port = h.listen(1, '127.0.0.70');
    const silent = await connectClient(port);
    const silentGot = collect(silent);
    const chatty = await connectClient(port);
    chatty.on('data', () => {});
    chatty.on('error', () => {});
    const [a1, a2] = await Promise.all([
      h.waitFor((e) => e.type === 'CONNECTED'),
      h.waitFor((e) => e.type === 'CONNECTED' && h.events.filter((x) => x.type === 'CONNECTED').length === 2),
    ]);
    const t0 = Date.now();
    const ticker = setInterval(() => chatty.write('x'), 80);
    try {
      const { error } = await silentGot;
      const took = Date.now() - t0;
      assert.equal(error, null);
      t.diagnostic(`idleMs=300: closed after ${took} ms`);
      assert.ok(took >= 250 && took < 1200, `idle close after ${took} ms`);
      await h.waitFor((e) => e.type === 'CLOSED');  // the client may see the FIN first
      const closed = [...h.closed.values()];
      assert.equal(closed.length, 1);
      assert.equal(closed[0].how, HOW.IDLE);
      assert.ok([a1.connId, a2.connId].includes(closed[0].connId));
      await sleep(400);  // the chatty one survives well past idleMs
      assert.equal(h.closed.size, 1);
      assert.equal(h.engine.counts().connections, 1);
    } finally {
      clearInterval(ticker);
    }
    chatty.destroy();
    await h.waitFor(() => h.closed.size === 2);
  } finally {
    h.stop();
    await echo.close();
  }
});

test('kill() closes both sides now (how=2)', { timeout: 10000 }, async () => {
  let backendClosed;
  const backendGone = new Promise((r) => { backendClosed = r; });
  const backend = await startServer('127.0.0.71', (s) => s.on('close', backendClosed));
  const h = new Harness({ onAccept: dialTo(backend.port) });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const got = collect(client);
    const conn = await h.waitFor((e) => e.type === 'CONNECTED');
    h.engine.kill(conn.connId);
    h.engine.kill(conn.connId);  // second kill: no-op
    await got;
    await backendGone;
    const closed = await h.closedFor(conn.connId);
    assert.equal(closed.how, HOW.KILLED);
    await sleep(50);
    assert.equal(h.events.filter((e) => e.type === 'CLOSED').length, 1);
  } finally {
    h.stop();
    await backend.close();
  }
});

test('reject() before any connect (how=4)', { timeout: 10000 }, async () => {
  const h = new Harness({ onAccept: (ev, hh) => hh.engine.reject(ev.connId) });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const { error } = await collect(client);
    assert.equal(error, null);
    const closed = await h.waitFor((e) => e.type === 'CLOSED');
    assert.equal(closed.how, HOW.REJECTED);
    assert.equal(closed.errno, 0);
    assert.equal(closed.side, -1);
    assert.equal(h.engine.counts().fds, 1);
  } finally {
    h.stop();
  }
});

test('client gone before JS decided (how=5): FIN and RST', { timeout: 10000 }, async () => {
  const h = new Harness();  // onAccept does nothing: the connection waits
  try {
    const port = h.listen(1, '127.0.0.70');
    const c1 = await connectClient(port);
    const a1 = await h.waitFor((e) => e.type === 'ACCEPT');
    c1.destroy();  // FIN with nothing sent
    assert.equal((await h.closedFor(a1.connId)).how, HOW.CLIENT_GONE);

    const c2 = await connectClient(port);
    const a2 = await h.waitFor((e) => e.type === 'ACCEPT' && e.connId !== a1.connId);
    c2.resetAndDestroy();  // RST
    assert.equal((await h.closedFor(a2.connId)).how, HOW.CLIENT_GONE);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
  } finally {
    h.stop();
  }
});

test('backend reset is propagated to the client as a reset (how=3, side=1)', { timeout: 10000 }, async () => {
  const backend = await startServer('127.0.0.71', (s) => {
    s.once('data', () => s.resetAndDestroy());
  });
  const h = new Harness({ onAccept: dialTo(backend.port) });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    const got = collect(client);
    client.write('trigger');
    const { error } = await got;
    assert.equal(error?.code, 'ECONNRESET');
    const closed = await h.waitFor((e) => e.type === 'CLOSED');
    assert.equal(closed.how, HOW.RESET);
    assert.equal(closed.side, 1);
    assert.equal(closed.errno, E.ECONNRESET);
  } finally {
    h.stop();
    await backend.close();
  }
});

test('client reset is propagated to the backend (how=3, side=0)', { timeout: 10000 }, async () => {
  let backendErr;
  const backendResult = new Promise((r) => { backendErr = r; });
  const backend = await startServer('127.0.0.71', (s) => {
    s.on('error', (e) => backendErr(e.code));
    s.on('close', () => backendErr('closed without error'));
  });
  const h = new Harness({ onAccept: dialTo(backend.port) });
  try {
    const port = h.listen(1, '127.0.0.70');
    const client = await connectClient(port);
    await h.waitFor((e) => e.type === 'CONNECTED');
    client.resetAndDestroy();
    assert.equal(await backendResult, 'ECONNRESET');
    const closed = await h.waitFor((e) => e.type === 'CLOSED');
    assert.equal(closed.how, HOW.RESET);
    assert.equal(closed.side, 0);
    assert.equal(closed.errno, E.ECONNRESET);
  } finally {
    h.stop();
    await backend.close();
  }
});

test('closeAll() kills every connection and closes every listener', { timeout: 10000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ onAccept: dialTo(echo.port) });
  try {
    const port = h.listen(1, '127.0.0.70');
    h.listen(2, '127.0.0.70');
    const clients = await Promise.all([1, 2, 3].map(() => connectClient(port)));
    const done = clients.map(collect);
    await h.waitFor(() => h.events.filter((e) => e.type === 'CONNECTED').length === 3);
    h.engine.closeAll();
    await Promise.all(done);
    await h.waitFor(() => h.closed.size === 3);
    assert.ok([...h.closed.values()].every((c) => c.how === HOW.KILLED));
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 0, fds: 0 });
    // the listener is gone: the same id can be bound again
    const again = h.engine.listen(1, '127.0.0.70', 0, 16);
    assert.equal(again.ok, true);
  } finally {
    h.stop();
    await echo.close();
  }
});

test('onEvents throwing does not break delivery', { timeout: 10000 }, async () => {
  let calls = 0;
  const seen = [];
  const h = new Harness({
    onEvent: (ev) => {
      seen.push(ev.type);
      calls++;
      if (calls === 1) throw new Error('deliberate test throw (expected on stderr)');
    },
  });
  h.onAccept = (ev, hh) => hh.engine.reject(ev.connId);
  try {
    const port = h.listen(1, '127.0.0.70');
    const c = await connectClient(port);
    await collect(c);
    await h.waitFor((e) => e.type === 'CLOSED');
    assert.deepEqual(seen, ['ACCEPT', 'CLOSED']);
  } finally {
    h.stop();
  }
});
