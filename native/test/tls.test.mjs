// TLS termination in the relay threads (API.md "TLS listeners"): setTls
// argument checks, a handshake reported by TLS_READY with its facts, SNI
// picking the certificate, JS dialling after TLS_READY and plaintext relayed
// both ways, the routing fast path (the relay thread dials after the
// handshake; no usable backend hands the client to JS), failures reported by TLS_FAILED + CLOSED how=7 (garbage, a
// stalled handshake), a context swap reaching new handshakes only, and every
// fd closed afterwards.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { HOW, Harness, startEchoServer, sleep } from './helpers.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-ntls-'));
process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** A self-signed P-256 certificate for `name`: { cert, key } PEM text. */
function selfSigned(name) {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-keyout', `${dir}/${name}.key`, '-out', `${dir}/${name}.pem`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { cert: fs.readFileSync(`${dir}/${name}.pem`, 'utf8'), key: fs.readFileSync(`${dir}/${name}.key`, 'utf8'), names: [name] };
}

const A = selfSigned('a.test');
const B = selfSigned('b.test');
const settings = (certs, more = {}) => ({ certificates: certs, minVersion: 'TLSv1.2', alpn: [], strictSni: false, handshakeTimeoutMs: 5000, ...more });

/** A TLS client: resolves with the socket once secure, and the peer certificate's CN. */
function tlsClient(port, servername, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.70', port, servername, rejectUnauthorized: false, ...opts });
    s.once('secureConnect', () => resolve({ s, cn: s.getPeerCertificate().subject.CN }));
    s.once('error', reject);
  });
}

test('setTls refuses bad arguments with a clear error, before anything is posted', () => {
  const h = new Harness();
  try {
    assert.throws(() => h.engine.setTls(1, 42), TypeError);
    assert.throws(() => h.engine.setTls(1, settings([A], { minVersion: 'SSLv3' })), /minVersion/);
    assert.throws(() => h.engine.setTls(1, settings([{ cert: 'nope', key: A.key, names: [] }])), /certificate/);
    assert.throws(() => h.engine.setTls(1, settings([{ cert: A.cert, key: B.key, names: [] }])), /does not match/);
    assert.throws(() => h.engine.setTls(1, settings([])), /no certificate/);
    h.engine.setTls(1, null); // unknown listener, plain: a no-op
  } finally {
    h.stop();
  }
});

test('handshake in the relay thread: TLS_READY with the facts, SNI picks the certificate, JS dials after it, plaintext both ways', { timeout: 15000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ onEvent: (ev, hh) => ev.type === 'TLS_READY' && hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, undefined) });
  try {
    const r = h.engine.listen(1, '127.0.0.70', 0, 128);
    h.engine.setTls(1, settings([A, B], { alpn: ['imap', 'h2'] }));
    h.engine.activate(1);
    const { s, cn } = await tlsClient(r.port, 'b.test', { ALPNProtocols: ['h2'] });
    assert.equal(cn, 'b.test');
    const ready = await h.waitFor((e) => e.type === 'TLS_READY');
    assert.equal(ready.version, s.getProtocol());
    assert.equal(ready.cipher, s.getCipher().name);
    assert.equal(ready.servername, 'b.test');
    assert.equal(ready.alpn, 'h2');
    assert.equal(ready.resumed, false);
    assert.equal(ready.backendKey, -1, 'no route table: JS dials');
    const payload = Buffer.alloc(200_000, 9);
    const got = [];
    let n = 0;
    await new Promise((resolve) => {
      s.on('data', (d) => {
        got.push(d);
        n += d.length;
        if (n >= payload.length) resolve();
      });
      s.write(payload);
    });
    assert.ok(Buffer.concat(got).equals(payload));
    const none = await tlsClient(r.port, undefined);
    assert.equal(none.cn, 'a.test', 'no SNI: the first certificate');
    none.s.destroy();
    s.end();
    const closed = await h.closedFor(ready.connId);
    assert.equal(closed.how, HOW.NORMAL);
    assert.equal(closed.bytesIn, payload.length);
    await h.waitFor(() => h.engine.counts().connections === 0 ? {} : undefined, 5000, 'all closed');
    assert.equal(h.engine.counts().fds, h.threads, 'only the listening sockets are left');
  } finally {
    h.stop();
    echo.close();
  }
});

test('failures: garbage is TLS_FAILED(error, ERR_SSL_...), a stalled handshake TLS_FAILED(timeout); each then CLOSED how=7', { timeout: 15000 }, async () => {
  const h = new Harness();
  try {
    const r = h.engine.listen(1, '127.0.0.70', 0, 128);
    h.engine.setTls(1, settings([A], { handshakeTimeoutMs: 300 }));
    h.engine.activate(1);
    const g = net.connect(r.port, '127.0.0.70');
    g.on('error', () => {});
    g.write('GET / HTTP/1.1\r\n\r\n');
    const bad = await h.waitFor((e) => e.type === 'TLS_FAILED');
    assert.equal(bad.what, 3);
    assert.match(bad.code, /^ERR_SSL_[A-Z_]+$/);
    assert.equal((await h.closedFor(bad.connId)).how, HOW.TLS_FAILED);
    const stall = net.connect(r.port, '127.0.0.70');
    stall.on('error', () => {});
    const t0 = Date.now();
    const slow = await h.waitFor((e) => e.type === 'TLS_FAILED' && e.connId !== bad.connId, 5000);
    assert.equal(slow.what, 1, 'timeout');
    assert.ok(Date.now() - t0 >= 250 && Date.now() - t0 < 2000, `closed after ${Date.now() - t0} ms`);
    g.destroy();
    stall.destroy();
    await sleep(50);
    assert.equal(h.engine.counts().connections, 0);
  } finally {
    h.stop();
  }
});

test('a new context reaches new handshakes; a session made under the old one carries on', { timeout: 15000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({ onEvent: (ev, hh) => ev.type === 'TLS_READY' && hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, undefined) });
  try {
    const r = h.engine.listen(1, '127.0.0.70', 0, 128);
    h.engine.setTls(1, settings([A]));
    h.engine.activate(1);
    const old = await tlsClient(r.port, 'x.test');
    assert.equal(old.cn, 'a.test');
    h.engine.setTls(1, settings([B]));
    await sleep(50);
    const fresh = await tlsClient(r.port, 'x.test');
    assert.equal(fresh.cn, 'b.test');
    const back = new Promise((resolve) => old.s.once('data', (d) => resolve(d.toString())));
    old.s.write('still\n');
    assert.equal(await back, 'still\n');
    old.s.destroy();
    fresh.s.destroy();
  } finally {
    h.stop();
    echo.close();
  }
});

test('routing fast path: with a table the relay thread dials after the handshake (TLS_READY names the backend); no usable backend leaves it to JS', { timeout: 15000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness();
  const route = (usable) => ({ algo: 'round_robin', connectTimeoutMs: 2000, idleMs: 0, maxConnections: 0,
    backends: [{ key: 7, ip: '127.0.0.71', port: echo.port, weight: 1, maxConns: 0, backup: false, usable, idHash: 1 }] });
  try {
    const r = h.engine.listen(1, '127.0.0.70', 0, 128);
    h.engine.setTls(1, settings([A]));
    h.engine.setRoute(1, route(true));
    h.engine.activate(1);
    const { s } = await tlsClient(r.port, 'a.test');
    const ready = await h.waitFor((e) => e.type === 'TLS_READY');
    assert.equal(ready.backendKey, 7);
    const back = new Promise((resolve) => s.once('data', (d) => resolve(d.toString())));
    s.write('through the fast path\n');
    assert.equal(await back, 'through the fast path\n', 'relayed with no connect() from JS');
    s.end();
    const closed = await h.closedFor(ready.connId);
    assert.equal(closed.how, HOW.NORMAL);
    assert.deepEqual(h.events.filter((e) => e.connId === ready.connId).map((e) => e.type), ['ACCEPT', 'TLS_READY', 'CONNECTED', 'CLOSED']);

    h.engine.setRoute(1, route(false));
    await sleep(50);
    const two = await tlsClient(r.port, 'a.test');
    const ready2 = await h.waitFor((e) => e.type === 'TLS_READY' && e.connId !== ready.connId);
    assert.equal(ready2.backendKey, -1, 'no usable backend: JS decides');
    await sleep(100);
    assert.equal(h.events.some((e) => e.connId === ready2.connId && e.type === 'CONNECTED'), false, 'nothing dialled');
    h.engine.connect(ready2.connId, '127.0.0.71', echo.port, 2000, 0, undefined);
    const back2 = new Promise((resolve) => two.s.once('data', (d) => resolve(d.toString())));
    two.s.write('by JS\n');
    assert.equal(await back2, 'by JS\n');
    two.s.destroy();
    await h.waitFor(() => h.engine.counts().connections === 0 ? {} : undefined, 5000, 'all closed');
  } finally {
    h.stop();
    echo.close();
  }
});
