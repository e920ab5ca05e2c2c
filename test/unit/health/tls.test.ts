/**
 * Implicit TLS (as on 993/995/465/443): the protocol probes run inside TLS and
 * record the certificate; `verify` decides whether a bad one fails the probe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckType } from '../../../src/core/types.js';
import { probeFor } from '../../../src/health/registry.js';
import { httpServer } from '../../fixtures/servers/http.js';
import { imapServer, pop3Server, smtpServer } from '../../fixtures/servers/text.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';
import { testCert } from '../../fixtures/tls.js';
import type { FakeServer } from '../../fixtures/servers/base.js';

const imap = probeFor('imap');

async function tlsImap(days = 30): Promise<FakeServer & { sni: string[] }> {
  const { key, cert } = testCert(days);
  const sni: string[] = [];
  const server = await imapServer({ tls: { key, cert, SNICallback: (name, cb) => (sni.push(name), cb(null, undefined)) } });
  return Object.assign(server, { sni });
}

test('tls: verify off, servername covered -> pass; cert recorded; SNI sent; LOGOUT inside TLS', async (t) => {
  const server = await tlsImap();
  t.after(() => server.close());
  const r = await run(imap, server, { tls: true, servername: 'mail.test' });
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.cert?.subject, 'mail.test');
  assert.equal(r.cert?.coversName, true);
  assert.equal(r.cert?.trusted, false);
  assert.ok(r.cert!.daysLeft > 0 && r.cert!.daysLeft <= 30, `daysLeft ${r.cert!.daysLeft}`);
  assert.ok(Math.abs(r.cert!.validTo - (Date.now() + 30 * 86_400_000)) < 120_000, 'validTo ~ 30 days ahead');
  assert.deepEqual(server.sni, ['mail.test']);
  assert.equal((await serverSawClose(server)).clean, true);
  assert.deepEqual((await server.conn()).lines(), ['a1 LOGOUT']);
});

const coverage: Array<[string, boolean | undefined]> = [
  ['other.example', false],
  ['pop.mail.test', true], // *.mail.test
  ['a.b.mail.test', false], // a wildcard covers one label only
  ['', undefined],
];
for (const [servername, covers] of coverage) {
  test(`tls: verify off, servername '${servername}' -> pass, coversName ${covers}`, async (t) => {
    const server = await tlsImap();
    t.after(() => server.close());
    const r = await run(imap, server, { tls: true, servername });
    assert.equal(r.status, 'L7_OK', r.detail);
    assert.equal(r.cert?.coversName, covers);
    assert.equal(r.cert?.trusted, false);
  });
}

test('tls: verify on, untrusted self-signed cert -> L6_BAD with the reason, cert still recorded', async (t) => {
  const server = await tlsImap();
  t.after(() => server.close());
  const r = await run(imap, server, { tls: true, servername: 'mail.test', verify: true });
  assert.equal(r.ok, false);
  assert.equal(r.status, 'L6_BAD');
  assert.equal(r.detail, 'certificate not trusted: self-signed certificate');
  assert.equal(r.cert?.coversName, true);
  // The server may not even see the handshake finish: the probe drops the connection at once.
  assert.ok(server.conns.every((c) => c.lines().length === 0), 'no IMAP spoken over a rejected TLS session');
});

test('tls: verify on, wrong name -> both problems in the detail', async (t) => {
  const server = await tlsImap();
  t.after(() => server.close());
  const r = await run(imap, server, { tls: true, servername: 'mail.example.net', verify: true });
  assert.equal(r.detail, 'certificate not trusted: self-signed certificate; certificate does not cover mail.example.net');
});

test('tls: a certificate expiring within 3 days is noted but passes', async (t) => {
  const server = await tlsImap(2);
  t.after(() => server.close());
  const r = await run(imap, server, { tls: true, servername: 'mail.test' });
  assert.equal(r.status, 'L7_OK');
  assert.equal(r.cert?.daysLeft, 1);
  assert.equal(r.detail, '"* OK [CAPABILITY IMAP4rev1] ready"; certificate expires in 1 day');
});

test('tls: the other text protocols and http run inside TLS too', async (t) => {
  const { key, cert } = testCert();
  const servers: Array<[CheckType, FakeServer]> = [
    ['pop3', await pop3Server({ tls: { key, cert } })],
    ['smtp', await smtpServer({}, { tls: { key, cert } })],
    ['http', await httpServer({ tls: { key, cert } })],
  ];
  for (const [type, server] of servers) {
    t.after(() => server.close());
    const r = await run(probeFor(type), server, { tls: true, servername: 'mail.test' });
    assert.equal(r.status, 'L7_OK', `${type}: ${r.detail}`);
    assert.equal(r.cert?.coversName, true, type);
  }
});
