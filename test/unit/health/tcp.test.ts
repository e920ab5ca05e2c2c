import net from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/tcp.js';
import { serve } from '../../fixtures/servers/base.js';
import { blobServer, silentServer } from '../../fixtures/servers/misbehaving.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';
import { testCert } from '../../fixtures/tls.js';

test('tcp: an accepted connection passes (L4_OK) and is closed with FIN', async (t) => {
  const server = await silentServer();
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.deepEqual([r.ok, r.status, r.detail], [true, 'L4_OK', 'connected']);
  assert.equal(r.cert, undefined);
  assert.deepEqual(await serverSawClose(server), { clean: true });
});

test('tcp: an orderly close right after accept still passes (as nginx)', async (t) => {
  const server = await blobServer('', true);
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L4_OK');
});

test('tcp: a reset right after accept fails', async (t) => {
  const server = await serve((conn) => conn.socket.resetAndDestroy());
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L4_REFUSED');
  assert.equal(r.detail, 'connection reset by peer');
});

test('tcp + tls: the handshake must complete (L6_OK), the certificate is recorded', async (t) => {
  const { key, cert } = testCert();
  const server = await serve(() => undefined, { tls: { key, cert } });
  t.after(() => server.close());
  const r = await run(probe, server, { tls: true, servername: 'mail.test' });
  assert.equal(r.status, 'L6_OK', r.detail);
  assert.equal(r.detail, 'TLSv1.3 handshake ok');
  assert.equal(r.cert?.coversName, true);
});

test('tcp + tls: a plain-text server fails the handshake (L6_BAD)', async (t) => {
  const server = await blobServer('+OK POP3 ready\r\n');
  t.after(() => server.close());
  const r = await run(probe, server, { tls: true });
  assert.equal(r.status, 'L6_BAD');
  assert.match(r.detail, /^TLS handshake failed: /);
});

test('tcp + tls: a server closing during the handshake fails (L6_BAD)', async (t) => {
  const server = await serve((conn) => conn.socket.once('data', () => conn.socket.end()));
  t.after(() => server.close());
  const r = await run(probe, server, { tls: true });
  assert.equal(r.status, 'L6_BAD');
  assert.equal(r.detail, 'TLS handshake failed: connection closed by server');
});

test('tcp: a connect failing with EMFILE (tcplb out of descriptors) is LOCAL_ERROR, not a backend failure', async (t) => {
  // The probe's own process is out of descriptors: stand in for it with a socket that fails as
  // net.connect does then (the error comes asynchronously, code EMFILE, syscall connect).
  const real = net.connect;
  t.after(() => void (net.connect = real));
  for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'EADDRNOTAVAIL']) {
    net.connect = ((): net.Socket => {
      const s = new net.Socket();
      setImmediate(() => s.destroy(Object.assign(new Error(`connect ${code} 127.0.0.1:1 - Local (undefined:undefined)`), { code, syscall: 'connect' })));
      return s;
    }) as typeof net.connect;
    const r = await run(probe, { host: '127.0.0.1', port: 1 });
    assert.deepEqual([r.ok, r.status], [false, 'LOCAL_ERROR'], `${code}: ${r.detail}`);
    assert.match(r.detail, new RegExp(`^${code}: .*tcplb|^${code}: the host`));
  }
});
