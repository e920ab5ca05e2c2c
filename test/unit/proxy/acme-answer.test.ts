/** The peeks of ACME listeners: what a ClientHello and a request head say, and what is left alone. */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { parseChallengeRequest, parseClientHello } from '../../../src/proxy/acme-answer.js';

/** The ClientHello Node sends for these options, captured from a local socket. */
async function helloOf(opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ ...opts, host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, rejectUnauthorized: false });
      c.on('error', () => {});
    });
    server.on('error', reject);
  });
}

test('a ClientHello gives its SNI name and ALPN list; a partial record asks for more; other bytes are not one', async () => {
  const hello = await helloOf({ servername: 'www.acme.test', ALPNProtocols: ['acme-tls/1'] });
  assert.deepEqual(parseClientHello(hello), { servername: 'www.acme.test', alpn: ['acme-tls/1'] });
  assert.equal(parseClientHello(hello.subarray(0, 3)), 'more');
  assert.equal(parseClientHello(hello.subarray(0, hello.length - 1)), 'more');
  const plain = await helloOf({ servername: 'mail.acme.test', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.deepEqual(parseClientHello(plain), { servername: 'mail.acme.test', alpn: ['h2', 'http/1.1'] });
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), undefined);
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0, 0, 0])), undefined, 'a ServerHello is not a ClientHello');
});

test('an http-01 request head gives its token; anything else is relayed at the first byte that differs', () => {
  assert.deepEqual(parseChallengeRequest(Buffer.from('GET /.well-known/acme-challenge/AbC-_9 HTTP/1.1\r\nHost: a.test\r\n\r\n')), { token: 'AbC-_9' });
  assert.equal(parseChallengeRequest(Buffer.from('GET /.well-known/acme-challenge/AbC HTTP/1.1\r\nHost: a')), 'more');
  assert.equal(parseChallengeRequest(Buffer.from('GET /.well')), 'more');
  assert.equal(parseChallengeRequest(Buffer.from('GET /index.html HTTP/1.1\r\n')), undefined);
  assert.equal(parseChallengeRequest(Buffer.from('P')), undefined, 'a POST is relayed at its first byte');
  assert.equal(parseChallengeRequest(Buffer.from('GET /.well-known/acme-challenge/../../etc/passwd HTTP/1.1\r\n\r\n')), undefined);
  assert.equal(parseChallengeRequest(Buffer.from(`GET /.well-known/acme-challenge/${'a'.repeat(9000)}`)), undefined, 'a head too long is not a challenge');
});
