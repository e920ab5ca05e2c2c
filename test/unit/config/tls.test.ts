/**
 * `listeners[].tls` and `upstreams.X.tls` in the config: defaults, paths
 * relative to the config file, and every certificate problem reported at
 * file:line:col of the key it is about (unreadable file, key not matching,
 * expired = errors; expiring within 14 days = a warning).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { nameCovers } from '../../../src/config/certificates.js';
import { loadConfigText } from '../../../src/config/load.js';
import { formatIssue, type LoadResult } from '../../../src/core/config.js';
import { makePki } from '../../fixtures/pki.js';
import { onlyIssue } from '../../helpers/config.js';

const pki = makePki();
const good = pki.leaf('good', ['mail.a.test', '*.a.test']);
const other = pki.leaf('other', ['mail.b.test']);
const expired = pki.leaf('expired', ['old.a.test'], -1);
const soon = pki.leaf('soon', ['soon.a.test'], 3);
// The config lives in the PKI folder: paths in it are relative to it.
const FILE = path.join(pki.dir, 'config.json5');

function load(tlsLine: string, upstreamTls = ''): LoadResult {
  return loadConfigText([
    '{', // 1
    '  listeners: [{ listen: "127.0.0.1:993", upstream: "mail",', // 2
    `    tls: ${tlsLine} }],`, // 3
    `  upstreams: { mail: { servers: ["127.0.0.1:143"]${upstreamTls} } },`, // 4
    '}',
  ].join('\n'), FILE);
}

const only = onlyIssue;

test('a tls listener loads with its defaults; relative paths resolve against the config folder; names come from the SANs', () => {
  const r = load('{ certificates: [{ cert: "good.pem", key: "good.key" }, { cert: "other.pem", key: "other.key" }] }');
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const t = r.config.listeners[0]!.tls!;
  assert.equal(t.minVersion, 'TLSv1.2');
  assert.deepEqual(t.alpn, []);
  assert.equal(t.strictSni, false);
  assert.equal(t.handshakeTimeoutMs, 10_000);
  assert.equal(t.certificates[0]!.certFile, good.cert);
  assert.deepEqual(t.certificates[0]!.names, ['mail.a.test', '*.a.test']);
  assert.deepEqual(t.certificates[1]!.names, ['mail.b.test']);
  assert.equal(r.warnings, undefined);
});

test('an unreadable certificate file is an error at its "cert" value', () => {
  only(load('{ certificates: [{ cert: "missing.pem", key: "good.key" }] }'), 3, 35, /cannot read certificate ".*missing\.pem": ENOENT/);
});

test('a key that does not match its certificate is an error at its "key" value', () => {
  only(load('{ certificates: [{ cert: "good.pem", key: "other.key" }] }'), 3, 52, /the key in ".*other\.key" does not match the certificate/);
});

test('an expired certificate is an error; one expiring within 14 days loads with a warning at its "cert"', () => {
  only(load('{ certificates: [{ cert: "expired.pem", key: "expired.key" }] }'), 3, 35, /expired on \d{4}-\d\d-\d\d/);
  const r = load('{ certificates: [{ cert: "soon.pem", key: "soon.key" }] }');
  assert.ok(r.ok);
  assert.equal(r.warnings?.length, 1);
  const w = r.warnings![0]!;
  assert.equal(`${w.line}:${w.column}`, '3:35');
  assert.match(w.message, /certificate ".*soon\.pem" \(soon\.a\.test\) expires in [23] days/);
});

test('a file that is not PEM, a directory, an empty list, a bad minVersion or ALPN id: errors at their place', () => {
  fs.writeFileSync(path.join(pki.dir, 'junk.pem'), 'not a certificate\n');
  only(load('{ certificates: [{ cert: "junk.pem", key: "good.key" }] }'), 3, 35, /holds no PEM certificate/);
  only(load('{ certificates: [{ cert: ".", key: "good.key" }] }'), 3, 35, /it is a directory/);
  only(load('{ certificates: [] }'), 3, 26, /at least one \{ cert, key \} pair/);
  only(load('{ certificates: [{ cert: "good.pem", key: "good.key" }], minVersion: "TLSv1.1" }'), 3, 79, /must be "TLSv1\.2" or "TLSv1\.3"/);
  only(load('{ certificates: [{ cert: "good.pem", key: "good.key" }], alpn: ["a b"] }'), 3, 74, /invalid ALPN protocol/);
  only(load('{ certificates: [{ cert: "good.pem", key: "good.key" }], strictSNI: true }'), 3, 67, /unknown key "strictSNI" \(did you mean "strictSni"\?\)/);
});

test('upstream tls: defaults verify on; a client cert needs its key; a CA file must hold a certificate', () => {
  const tlsOn = '{ certificates: [{ cert: "good.pem", key: "good.key" }] }';
  const ok = load(tlsOn, ', tls: { ca: "ca.pem", servername: "imap.internal" }');
  assert.ok(ok.ok, ok.ok ? '' : ok.issues.map(formatIssue).join('\n'));
  const u = ok.config.upstreams['mail']!.tls!;
  assert.equal(u.verify, true);
  assert.equal(u.caFile, pki.caFile);
  assert.match(u.ca ?? '', /BEGIN CERTIFICATE/);
  assert.equal(u.servername, 'imap.internal');
  only(load(tlsOn, ', tls: { cert: "good.pem" }'), 4, 59, /needs both "cert" and "key" \("key" is missing\)/);
  only(load(tlsOn, ', tls: { ca: "good.key" }'), 4, 63, /holds no PEM certificate/);
});

test('nameCovers: exact names and one-label wildcards only', () => {
  assert.ok(nameCovers('mail.a.test', 'MAIL.a.test'));
  assert.ok(nameCovers('*.a.test', 'imap.a.test'));
  assert.ok(!nameCovers('*.a.test', 'a.test'));
  assert.ok(!nameCovers('*.a.test', 'x.imap.a.test'));
  assert.ok(!nameCovers('mail.a.test', 'mail.b.test'));
});

test('proxyProtocol on a listener whose upstream has tls is refused at the proxyProtocol value (not supported yet)', () => {
  const r = loadConfigText([
    '{',
    '  listeners: [{ listen: "127.0.0.1:465", upstream: "smtps", proxyProtocol: "v2" }],',
    `  upstreams: { smtps: { servers: ["127.0.0.1:10465"], tls: { ca: "ca.pem" } } },`,
    '}',
  ].join('\n'), FILE);
  only(r, 2, 76, /proxyProtocol: not supported with upstream "smtps", which has "tls"/);
});
