// The routing fast path: setRoute() tables, picks on the engine thread
// (round_robin, least_conn, ip_hash), maxConns / maxConnections / backup /
// usable, the per-backend counters, and the hand-over to JS on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  E, HOW, Harness, addon, collect, connectClient, sleep, startServer, withTimeout,
} from './helpers.mjs';

/** A server that greets every client with its name, then echoes. */
function namedServer(host, name) {
  return startServer(host, (s) => {
    s.write(`${name}:`);
    s.pipe(s);
  });
}

async function deadPort(host) {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, host, r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function backend(key, ip, port, extra = {}) {
  return { key, ip, port, weight: 1, maxConns: 0, backup: false, usable: true, idHash: key * 2654435761 >>> 0, ...extra };
}

function table(backends, extra = {}) {
  return { algo: 'round_robin', connectTimeoutMs: 2000, idleMs: 0, maxConnections: 0, backends, ...extra };
}

/** Reads the first `n` bytes the client receives. */
function readN(sock, n) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) {
        sock.off('data', onData);
        resolve(buf.subarray(0, n).toString());
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/**
 * Connects one client, waits for its accept event (ACCEPT or ACCEPT_ROUTED)
 * and returns { sock, ev }. Sequential on purpose: picks happen in order.
 */
async function open(h, port) {
  const before = h.events.length;
  const sock = await connectClient(port);
  sock.on('error', () => {});
  const ev = await h.waitFor((e, i) => (e.type === 'ACCEPT' || e.type === 'ACCEPT_ROUTED') &&
    e.clientPort === sock.localPort && h.events.indexOf(e) >= before, 5000, 'accept event');
  return { sock, ev };
}

async function closeAndWait(h, conn) {
  conn.sock.destroy();
  return h.closedFor(conn.ev.connId);
}

test('setRoute validates its table', () => {
  const h = new Harness();
  try {
    h.listen(1, '127.0.0.70');
    assert.throws(() => h.engine.setRoute(1, { ...table([]), algo: 'random' }), TypeError);
    assert.throws(() => h.engine.setRoute(1, table([backend(0, 'localhost', 80)])), TypeError);
    assert.throws(() => h.engine.setRoute(1, table([backend(0, '127.0.0.1', 0)])), TypeError);
    assert.throws(() => h.engine.setRoute(1, table([backend(-1, '127.0.0.1', 80)])), TypeError);
    assert.throws(() => h.engine.setRoute(1, 'x'), TypeError);
    assert.throws(() => h.engine.setRoute(1, { ...table([]), proxyProtocol: 3 }), /proxyProtocol/);
    h.engine.setRoute(1, null);
    h.engine.setRoute(42, table([]));  // unknown listener: ignored
  } finally {
    h.stop();
  }
});

test('a table that asks for a PROXY header leaves a plain listener\'s clients to JS (only a TLS listener\'s fast path builds one)', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const h = new Harness();
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port)], { proxyProtocol: 2 }));
    const c = await open(h, port);
    assert.equal(c.ev.type, 'ACCEPT');
    await closeAndWait(h, c);
  } finally {
    h.stop();
    a.close();
  }
});

test('round_robin 2:1: ACCEPT_ROUTED in smooth weighted order, and the relay works', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const b = await namedServer('127.0.0.72', 'B');
  const h = new Harness();
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([
      backend(10, '127.0.0.71', a.port, { weight: 2 }),
      backend(11, '127.0.0.72', b.port, { weight: 1 }),
    ]));
    const keys = [];
    for (let i = 0; i < 6; i++) {
      const c = await open(h, port);
      assert.equal(c.ev.type, 'ACCEPT_ROUTED');
      assert.equal(c.ev.listenerId, 1);
      assert.equal(c.ev.clientIp, '127.0.0.1');
      assert.equal(c.ev.localIp, '127.0.0.70');
      assert.equal(c.ev.localPort, port);
      keys.push(c.ev.backendKey);
      const got = collect(c.sock);
      c.sock.end('hi');
      const { data } = await got;
      assert.equal(data.toString(), `${c.ev.backendKey === 10 ? 'A' : 'B'}:hi`);
      const closed = await h.closedFor(c.ev.connId);
      assert.equal(closed.how, HOW.NORMAL);
      assert.equal(closed.bytesIn, 2);
      assert.equal(closed.bytesOut, 4);
      const evs = h.events.filter((e) => e.connId === c.ev.connId).map((e) => e.type);
      assert.deepEqual(evs, ['ACCEPT_ROUTED', 'CONNECTED', 'CLOSED']);
    }
    // nginx smooth WRR {2,1}: a b a, a b a
    assert.deepEqual(keys, [10, 11, 10, 10, 11, 10]);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
  } finally {
    h.stop();
    await a.close();
    await b.close();
  }
});

test('least_conn: fewest open connections first, ties rotate; counts follow closes', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const b = await namedServer('127.0.0.72', 'B');
  const h = new Harness();
  const held = [];
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port), backend(2, '127.0.0.72', b.port)], { algo: 'least_conn' }));
    for (let i = 0; i < 4; i++) held.push(await open(h, port));
    // tie -> A (wrr), B has fewer, tie -> B (wrr), A has fewer
    assert.deepEqual(held.map((c) => c.ev.backendKey), [1, 2, 2, 1]);
    // close both B connections: B now has 0 of A's 2
    await closeAndWait(h, held[1]);
    await closeAndWait(h, held[2]);
    const c5 = await open(h, port);
    const c6 = await open(h, port);
    assert.equal(c5.ev.backendKey, 2);
    assert.equal(c6.ev.backendKey, 2);
    held.push(c5, c6);
    // weights: B weight 3 with 2 open (2/3) beats A with 2 of 1
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port), backend(2, '127.0.0.72', b.port, { weight: 3 })], { algo: 'least_conn' }));
    const c7 = await open(h, port);
    assert.equal(c7.ev.backendKey, 2);
    held.push(c7);
  } finally {
    for (const c of held) c.sock.destroy();
    await sleep(50);
    h.stop();
    await a.close();
    await b.close();
  }
});

test('maxConns, backup and unusable backends; nothing usable falls back to ACCEPT', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const b = await namedServer('127.0.0.72', 'B');
  const c = await namedServer('127.0.0.73', 'C');
  const h = new Harness({ onAccept: (ev) => h.engine.reject(ev.connId) });
  const held = [];
  try {
    const port = h.listen(1, '127.0.0.70');
    const routes = (over = {}) => table([
      backend(1, '127.0.0.71', a.port, { maxConns: 1, ...over.a }),
      backend(2, '127.0.0.72', b.port, { usable: false, ...over.b }),
      backend(3, '127.0.0.73', c.port, { backup: true, maxConns: 1, ...over.c }),
    ]);
    h.engine.setRoute(1, routes());
    held.push(await open(h, port));  // A (only usable primary)
    held.push(await open(h, port));  // A full: the backup C
    const third = await open(h, port);  // A and C full, B unusable: JS decides
    assert.deepEqual(held.map((x) => x.ev.backendKey), [1, 3]);
    assert.equal(third.ev.type, 'ACCEPT');
    assert.equal((await h.closedFor(third.ev.connId)).how, HOW.REJECTED);
    // B usable again: primaries come before the backup, and A is full -> B
    h.engine.setRoute(1, routes({ b: { usable: true } }));
    const fourth = await open(h, port);
    assert.equal(fourth.ev.backendKey, 2);
    held.push(fourth);
    // counts survived both setRoute calls: freeing A's slot makes A pickable again
    await closeAndWait(h, held[0]);
    h.engine.setRoute(1, routes({ b: { usable: false } }));
    const fifth = await open(h, port);
    assert.equal(fifth.ev.backendKey, 1);
    held.push(fifth);
    // null = the slow path again
    h.engine.setRoute(1, null);
    const sixth = await open(h, port);
    assert.equal(sixth.ev.type, 'ACCEPT');
  } finally {
    for (const x of held) x.sock.destroy();
    await sleep(50);
    h.stop();
    await a.close();
    await b.close();
    await c.close();
  }
});

test('slow-path connect(..., backendKey) counts against maxConns of the fast path', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const b = await namedServer('127.0.0.72', 'B');
  const h = new Harness({ onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', a.port, 2000, 0, undefined, 1) });
  const held = [];
  try {
    const port = h.listen(1, '127.0.0.70');
    held.push(await open(h, port));  // slow path, to A, counted as key 1
    await h.waitFor((e) => e.type === 'CONNECTED' && e.connId === held[0].ev.connId);
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port, { maxConns: 1 }), backend(2, '127.0.0.72', b.port)]));
    const c2 = await open(h, port);
    held.push(c2);
    assert.equal(c2.ev.backendKey, 2);
    assert.equal(await readN(c2.sock, 2), 'B:');
  } finally {
    for (const x of held) x.sock.destroy();
    await sleep(50);
    h.stop();
    await a.close();
    await b.close();
  }
});

test('listener maxConnections: over the limit the client goes to JS as ACCEPT', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const h = new Harness({ onAccept: (ev) => h.engine.reject(ev.connId) });
  const held = [];
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port)], { maxConnections: 2 }));
    held.push(await open(h, port), await open(h, port));
    const third = await open(h, port);
    assert.deepEqual(held.map((x) => x.ev.type), ['ACCEPT_ROUTED', 'ACCEPT_ROUTED']);
    assert.equal(third.ev.type, 'ACCEPT');
    await h.closedFor(third.ev.connId);
    await closeAndWait(h, held.shift());
    const again = await open(h, port);
    held.push(again);
    assert.equal(again.ev.type, 'ACCEPT_ROUTED');
  } finally {
    for (const x of held) x.sock.destroy();
    await sleep(50);
    h.stop();
    await a.close();
  }
});

test('connect failure on the fast path hands over to JS: retry via connect() or reject()', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const dead = await deadPort('127.0.0.75');
  let rejectNext = false;
  const h = new Harness({
    onEvent: (ev) => {
      if (ev.type !== 'CONNECT_FAILED') return;
      if (rejectNext) h.engine.reject(ev.connId);
      else h.engine.connect(ev.connId, '127.0.0.71', a.port, 2000, 0, undefined, 1);
    },
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(7, '127.0.0.75', dead)]));
    const c = await open(h, port);
    assert.equal(c.ev.type, 'ACCEPT_ROUTED');
    assert.equal(c.ev.backendKey, 7);
    const got = collect(c.sock);
    c.sock.end('x');
    assert.equal((await got).data.toString(), 'A:x');
    await h.closedFor(c.ev.connId); // the client can see the end before the engine reports it
    const failed = h.events.find((e) => e.type === 'CONNECT_FAILED' && e.connId === c.ev.connId);
    assert.equal(failed.errno, E.ECONNREFUSED);
    assert.deepEqual(h.events.filter((e) => e.connId === c.ev.connId).map((e) => e.type),
      ['ACCEPT_ROUTED', 'CONNECT_FAILED', 'CONNECTED', 'CLOSED']);

    rejectNext = true;
    const d = await open(h, port);
    const closed = await h.closedFor(d.ev.connId);
    assert.equal(closed.how, HOW.REJECTED_AFTER_FAIL);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
  } finally {
    h.stop();
    await a.close();
  }
});

test('idleMs comes from the table', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const h = new Harness();
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port)], { idleMs: 200 }));
    const c = await open(h, port);
    const t0 = Date.now();
    await readN(c.sock, 2);
    const closed = await h.closedFor(c.ev.connId);
    assert.equal(closed.how, HOW.IDLE);
    assert.ok(Date.now() - t0 >= 150, `idle after ${Date.now() - t0} ms`);
    c.sock.destroy();
  } finally {
    h.stop();
    await a.close();
  }
});

test('closing a listener with routed connections: they finish, fds return', { timeout: 15000 }, async () => {
  const a = await namedServer('127.0.0.71', 'A');
  const h = new Harness();
  try {
    const port = h.listen(1, '127.0.0.70');
    h.engine.setRoute(1, table([backend(1, '127.0.0.71', a.port)]));
    const conns = [];
    for (let i = 0; i < 5; i++) conns.push(await open(h, port));
    for (const c of conns) await readN(c.sock, 2);
    h.engine.closeListener(1);
    await sleep(50);
    assert.equal(h.engine.counts().listeners, 0);
    for (const c of conns) {
      const got = collect(c.sock);
      c.sock.end('bye');
      assert.equal((await got).data.toString(), 'bye');  // 'A:' was read already
      await h.closedFor(c.ev.connId);
    }
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 0, fds: 0 });
  } finally {
    h.stop();
    await a.close();
  }
});

test('ip_hash: routed connections land where _test.ipHashPick says, and stay there', { timeout: 15000 }, async () => {
  const servers = [];
  for (let i = 0; i < 3; i++) servers.push(await namedServer(`127.0.0.7${i + 1}`, `S${i}`));
  const h = new Harness();
  try {
    const port = h.listen(1, '127.0.0.70');
    const bs = servers.map((s, i) => backend(i, `127.0.0.7${i + 1}`, s.port, { weight: i + 1, idHash: addon._test.hashString32(`up/b${i}`, 0x9747b28c) }));
    h.engine.setRoute(1, table(bs, { algo: 'ip_hash' }));
    for (let round = 0; round < 2; round++) {
      for (const src of ['127.0.0.76', '127.0.0.77', '127.0.0.78', '127.0.0.79']) {
        const sock = await connectClient(port, '127.0.0.70', { localAddress: src });
        const ev = await h.waitFor((e) => e.type === 'ACCEPT_ROUTED' && e.clientPort === sock.localPort);
        const want = addon._test.ipHashPick(src, bs.map((b) => b.idHash), bs.map((b) => b.weight));
        assert.equal(ev.backendKey, want, `client ${src}`);
        assert.equal(await withTimeout(readN(sock, 3), 2000, 'greeting'), `S${want}:`);
        sock.destroy();
        await h.closedFor(ev.connId);
      }
    }
  } finally {
    h.stop();
    for (const s of servers) await s.close();
  }
});

test('_test.log is bit-exact with Math.log', () => {
  let x = 12345;
  for (let i = 0; i < 200000; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const u = (x + 0.5) / 4294967296;
    assert.equal(addon._test.log(u), Math.log(u));
  }
  for (const v of [1, 0.5, 2, 1e-300, 5e-324, 0, -1, Infinity, NaN, 1 + 2 ** -30, 1 - 2 ** -30]) {
    assert.ok(Object.is(addon._test.log(v), Math.log(v)), `log(${v})`);
  }
});
