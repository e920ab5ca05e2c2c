// Several relay threads (new Engine(onEvents, { threads })): one listening
// socket shared by the threads (a descriptor each), clients split between
// them, connIds that name their thread, commands routed by connId, shared
// limits, aggregated counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  E, HOW, Harness, addon, collect, connectClient, sleep, startEchoServer, startServer,
} from './helpers.mjs';

const T = 2;

/** Opens `n` clients in parallel; resolves with the sockets once all are accepted. */
async function openMany(h, port, n) {
  const before = h.events.length;  // client ports of closed connections get reused
  const socks = await Promise.all(Array.from({ length: n }, () => connectClient(port)));
  for (const s of socks) s.on('error', () => {});
  const ports = new Set(socks.map((s) => s.localPort));
  const accepts = () => h.events.slice(before).filter((e) =>
    (e.type === 'ACCEPT' || e.type === 'ACCEPT_ROUTED') && ports.has(e.clientPort));
  await h.waitFor(() => accepts().length >= n, 5000, `${n} accepts`);
  const evs = accepts();
  return socks.map((s) => ({ sock: s, ev: evs.find((e) => e.clientPort === s.localPort) }));
}

/** Polls `pred` (counts() changes raise no event) every 5 ms for up to `ms`. */
async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function backend(key, ip, port, extra = {}) {
  return { key, ip, port, weight: 1, maxConns: 0, backup: false, usable: true, idHash: key, ...extra };
}

test('threads option: validated; default 1', () => {
  assert.throws(() => new addon.Engine(() => {}, { threads: 0 }), TypeError);
  assert.throws(() => new addon.Engine(() => {}, { threads: 1.5 }), TypeError);
  assert.throws(() => new addon.Engine(() => {}, { threads: '2' }), TypeError);
  assert.throws(() => new addon.Engine(() => {}, 2), TypeError);
  const e = new addon.Engine(() => {}, {});
  const r = e.listen(1, '127.0.0.70', 0, 16);
  assert.ok(r.ok);
  assert.deepEqual(e.counts(), { connections: 0, listeners: 1, fds: 1 });
  e.stop();
});

test('two threads: a burst of clients is split between them, relay works, counts and fds back to baseline', { timeout: 20000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({
    threads: T,
    onAccept: (ev, hh) => hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: T });
    const conns = await openMany(h, port, 40);
    // 40 clients connecting at once are long-lived here: they must not all
    // stay on the thread that happened to be idle when the burst arrived.
    const perThread = [0, 1].map((t) => conns.filter((c) => c.ev.connId % T === t).length);
    assert.ok(Math.min(...perThread) >= 10, `connections per thread ${perThread.join('/')}, want at least 10 of 40 each`);
    assert.equal(new Set(conns.map((c) => c.ev.connId)).size, 40, 'connIds unique');
    await Promise.all(conns.map(async (c, i) => {
      const got = collect(c.sock);
      c.sock.end(`msg${i}`);
      const { data } = await got;
      assert.equal(data.toString(), `msg${i}`);
      const closed = await h.closedFor(c.ev.connId);
      assert.equal(closed.how, HOW.NORMAL);
      assert.equal(closed.bytesIn, `msg${i}`.length);
    }));
    await until(() => h.engine.counts().connections === 0, 2000, 'all closed');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: T });
    assert.equal(h.engine.stats().length, 0);
  } finally {
    h.stop();
    await echo.close();
  }
});

test('two threads: connect/reject/kill reach the owning thread by connId', { timeout: 20000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ threads: T });
  try {
    const port = h.listen(1, '127.0.0.70');
    const conns = await openMany(h, port, 24);
    assert.deepEqual([...new Set(conns.map((c) => c.ev.connId % T))].sort(), [0, 1]);
    // Every command kind on connections of both threads.
    const plan = [];
    for (let t = 0; t < T; t++) {
      const mine = conns.filter((c) => c.ev.connId % T === t);
      assert.ok(mine.length >= 3, `thread ${t} has ${mine.length} connections`);
      mine.forEach((c, i) => plan.push({ ...c, what: ['reject', 'relay', 'kill'][i % 3] }));
    }
    for (const what of ['reject', 'relay', 'kill']) {
      const owners = new Set(plan.filter((p) => p.what === what).map((p) => p.ev.connId % T));
      assert.equal(owners.size, T, `${what} on both threads`);
    }
    for (const p of plan) {
      if (p.what === 'reject') h.engine.reject(p.ev.connId);
      else h.engine.connect(p.ev.connId, '127.0.0.71', echo.port, 2000, 0);
    }
    const live = plan.filter((p) => p.what !== 'reject');
    await Promise.all(live.map((p) => h.waitFor((e) => e.type === 'CONNECTED' && e.connId === p.ev.connId)));
    assert.equal(h.engine.stats().length, 3 * live.length);
    for (const p of plan.filter((q) => q.what === 'kill')) h.engine.kill(p.ev.connId);
    for (const p of plan) {
      if (p.what === 'relay') {
        const got = collect(p.sock);
        p.sock.end('x');
        assert.equal((await got).data.toString(), 'x');
      }
    }
    for (const p of plan) {
      const closed = await h.closedFor(p.ev.connId);
      assert.equal(closed.how, { reject: HOW.REJECTED, relay: HOW.NORMAL, kill: HOW.KILLED }[p.what], p.what);
    }
    // An unknown id on either thread is a no-op.
    h.engine.kill(999999998);
    h.engine.kill(999999999);
    h.engine.reject(-5);
    await until(() => h.engine.counts().connections === 0, 2000, 'all closed');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: T });
  } finally {
    h.stop();
    await echo.close();
  }
});

test('two threads: maxConns and maxConnections stay global (shared counters)', { timeout: 20000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ threads: T });
  try {
    const port = h.listen(1, '127.0.0.70');
    // One backend limited to 5: of 30 parallel clients exactly 5 are routed,
    // the rest come to JS as ACCEPT (whichever thread accepted them).
    h.engine.setRoute(1, { algo: 'least_conn', connectTimeoutMs: 2000, idleMs: 0, maxConnections: 0,
      backends: [backend(3, '127.0.0.71', echo.port, { maxConns: 5 })] });
    let conns = await openMany(h, port, 30);
    assert.deepEqual([...new Set(conns.map((c) => c.ev.connId % T))].sort(), [0, 1]);
    assert.equal(conns.filter((c) => c.ev.type === 'ACCEPT_ROUTED').length, 5);
    for (const c of conns) c.sock.destroy();
    await Promise.all(conns.map((c) => h.closedFor(c.ev.connId)));

    // The listener's maxConnections (10): the 11th and later go to JS.
    h.engine.setRoute(1, { algo: 'round_robin', connectTimeoutMs: 2000, idleMs: 0, maxConnections: 10,
      backends: [backend(3, '127.0.0.71', echo.port)] });
    await sleep(20);
    conns = await openMany(h, port, 30);
    assert.equal(conns.filter((c) => c.ev.type === 'ACCEPT_ROUTED').length, 10);
    for (const c of conns) c.sock.destroy();
    await Promise.all(conns.map((c) => h.closedFor(c.ev.connId)));

    // Counts went back to 0: the limited backend takes 5 again.
    h.engine.setRoute(1, { algo: 'least_conn', connectTimeoutMs: 2000, idleMs: 0, maxConnections: 0,
      backends: [backend(3, '127.0.0.71', echo.port, { maxConns: 5 })] });
    await sleep(20);
    conns = await openMany(h, port, 12);
    assert.equal(conns.filter((c) => c.ev.type === 'ACCEPT_ROUTED').length, 5);
    for (const c of conns) c.sock.destroy();
    await Promise.all(conns.map((c) => h.closedFor(c.ev.connId)));
    await until(() => h.engine.counts().connections === 0, 2000, 'all closed');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: T });
  } finally {
    h.stop();
    await echo.close();
  }
});

test('two threads: closeListener stops every socket; EADDRINUSE still detected', { timeout: 20000 }, async () => {
  const h = new Harness({ threads: T });
  const other = new Harness({ threads: T });
  const plain = await startServer('127.0.0.70', () => {});
  try {
    const port = h.listen(1, '127.0.0.70');
    // Another 2-thread engine of this user must not share the port.
    const r = other.engine.listen(1, '127.0.0.70', port, 16);
    assert.equal(r.ok, false);
    assert.equal(r.errno, E.EADDRINUSE);
    // Nor a plain socket's port.
    const r2 = other.engine.listen(2, '127.0.0.70', plain.port, 16);
    assert.equal(r2.errno, E.EADDRINUSE);
    assert.deepEqual(other.engine.counts(), { connections: 0, listeners: 0, fds: 0 });

    // A connection accepted before the close keeps going.
    const [first] = await openMany(h, port, 1);
    h.engine.closeListener(1);
    await until(() => h.engine.counts().listeners === 0, 2000, 'listener closed');
    for (let i = 0; i < 20; i++) {
      const err = await new Promise((resolve) => {
        const s = net.connect({ port, host: '127.0.0.70' });
        s.once('connect', () => { s.destroy(); resolve(null); });
        s.once('error', (e) => resolve(e.code));
      });
      assert.equal(err, 'ECONNREFUSED', `connect ${i} after closeListener`);
    }
    assert.deepEqual(h.engine.counts(), { connections: 1, listeners: 0, fds: 1 });
    h.engine.reject(first.ev.connId);
    await h.closedFor(first.ev.connId);
    await until(() => h.engine.counts().fds === 0, 2000, 'fds 0');
    // The port is free again, for a plain socket too.
    const again = other.engine.listen(3, '127.0.0.70', port, 16);
    assert.ok(again.ok);
    assert.equal(again.port, port);
    assert.deepEqual(other.engine.counts(), { connections: 0, listeners: 1, fds: T });
  } finally {
    h.stop();
    other.stop();
    await plain.close();
  }
});

test('two threads: closeAll and stop end connections on every thread', { timeout: 20000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({
    threads: T,
    onAccept: (ev, hh) => hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0),
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    const conns = await openMany(h, port, 20);
    assert.deepEqual([...new Set(conns.map((c) => c.ev.connId % T))].sort(), [0, 1]);
    await Promise.all(conns.map((c) => h.waitFor((e) => e.type === 'CONNECTED' && e.connId === c.ev.connId)));
    h.engine.closeAll();
    for (const c of conns) assert.equal((await h.closedFor(c.ev.connId)).how, HOW.KILLED);
    await until(() => h.engine.counts().fds === 0, 2000, 'fds 0');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 0, fds: 0 });
    const port2 = h.listen(2, '127.0.0.70');
    const more = await openMany(h, port2, 10);
    h.engine.stop();
    for (const c of more) assert.equal((await h.closedFor(c.ev.connId)).how, HOW.KILLED);
  } finally {
    h.stop();
    await echo.close();
  }
});

for (const threads of [1, T]) {
  test(`threads=${threads}: closeListener takes effect before it returns (port reusable, clients refused)`, { timeout: 20000 }, async () => {
    const h = new Harness({ threads });
    const other = new Harness({ threads });
    try {
      for (let round = 0; round < 20; round++) {
        const port = h.listen(1, '127.0.0.70');
        h.engine.closeListener(1);
        // No wait: the engine threads have not run the command yet.
        const err = await new Promise((resolve) => {
          const s = net.connect({ port, host: '127.0.0.70' });
          s.once('connect', () => { s.destroy(); resolve(null); });
          s.once('error', (e) => resolve(e.code));
        });
        assert.equal(err, 'ECONNREFUSED', `round ${round}`);
        const r = other.engine.listen(round + 1, '127.0.0.70', port, 16);
        assert.ok(r.ok, `round ${round}: ${r.code}`);
        other.engine.closeListener(round + 1);
      }
      await until(() => h.engine.counts().fds === 0 && other.engine.counts().fds === 0, 2000, 'fds 0');
      assert.equal(h.events.filter((e) => e.type === 'ACCEPT_ERROR').length, 0);
      assert.equal(other.events.filter((e) => e.type === 'ACCEPT_ERROR').length, 0);
    } finally {
      h.stop();
      other.stop();
    }
  });
}
