import { test } from 'node:test';
import assert from 'node:assert/strict';
import type tls from 'node:tls';
import { clientHello, probe } from '../../../src/health/probes/ssl-hello.js';
import { serve, writeSplit } from '../../fixtures/servers/base.js';
import { blobServer } from '../../fixtures/servers/misbehaving.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';
import { testCert } from '../../fixtures/tls.js';

/** A Node tls.Server (OpenSSL) with the test certificate, recording the SNI it was sent. */
async function tlsServer(extra: tls.TlsOptions = {}) {
  const { key, cert } = testCert();
  const sni: string[] = [];
  const server = await serve(() => undefined, {
    tls: { key, cert, ...extra, SNICallback: (name, cb) => (sni.push(name), cb(null, undefined)) },
  });
  return Object.assign(server, { sni });
}

for (const [name, extra] of [
  ['default (TLS 1.3)', {}],
  ['TLS 1.2 only', { maxVersion: 'TLSv1.2' }],
  ['TLS 1.3 only', { minVersion: 'TLSv1.3' }],
] as Array<[string, tls.TlsOptions]>) {
  test(`ssl_hello: a Node TLS server, ${name}, answers ServerHello`, async (t) => {
    const server = await tlsServer(extra);
    t.after(() => server.close());
    const r = await run(probe, server, { servername: 'mail.test' });
    assert.equal(r.status, 'L6_OK', r.detail);
    assert.equal(r.ok, true);
    assert.equal(r.cert, undefined, 'ssl_hello records no certificate');
    assert.deepEqual(server.sni, ['mail.test']);
  });
}

test('ssl_hello: no SNI without servername (nor for an IP); `tls` is ignored', async (t) => {
  const server = await tlsServer();
  t.after(() => server.close());
  assert.equal((await run(probe, server, { tls: true })).status, 'L6_OK');
  assert.equal((await run(probe, server, { servername: '127.0.0.1' })).status, 'L6_OK');
  assert.deepEqual(server.sni, []);
});

test('ssl_hello: no shared cipher -> alert handshake_failure', async (t) => {
  const server = await tlsServer({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L6_BAD');
  assert.equal(r.detail, 'expected ServerHello, got alert handshake_failure');
});

test('ssl_hello: plain text on the port fails and says so', async (t) => {
  const server = await blobServer('220 mx.test ESMTP ready\r\n');
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L6_BAD');
  assert.equal(r.detail, 'expected ServerHello, got plain text "220 mx.test ESMTP ready\\r\\n"');
});

test('ssl_hello: closes with FIN, draining the rest of the flight (no RST)', async (t) => {
  const serverHello = Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]);
  const server = await blobServer(Buffer.concat([serverHello, Buffer.alloc(10_000, 0x17)]));
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L6_OK');
  assert.deepEqual(await serverSawClose(server), { clean: true });
});

test('ssl_hello: a ServerHello split byte by byte still passes', async (t) => {
  const server = await serve((conn) => writeSplit(conn.socket, Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0])));
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L6_OK');
});

test('clientHello: a well-formed TLS 1.2 record with SNI and TLS 1.3 offered', () => {
  const hello = clientHello('mail.test');
  assert.deepEqual([...hello.subarray(0, 3)], [22, 3, 3]);
  assert.equal(hello.readUInt16BE(3), hello.length - 5, 'record length');
  assert.equal(hello[5], 1, 'ClientHello');
  assert.equal(hello.readUIntBE(6, 3), hello.length - 9, 'handshake length');
  assert.ok(hello.includes(Buffer.from('\x00\x09mail.test')), 'SNI host name');
  assert.ok(hello.includes(Buffer.from([0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03])), 'supported_versions');
  assert.equal(clientHello('').includes(Buffer.from('mail.test')), false);
  assert.equal(clientHello('').length, hello.length - 18, 'the SNI extension is 18 bytes here');
});
