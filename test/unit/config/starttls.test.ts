/**
 * `listeners[].starttls` / `requireTls` in the config: what loads, and each
 * incoherent combination reported at file:line:col of the key.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { summarize } from '../../../src/config/summary.js';
import { formatIssue, type LoadResult } from '../../../src/core/config.js';
import { makePki } from '../../fixtures/pki.js';
import { onlyIssue } from '../../helpers/config.js';

const pki = makePki();
pki.leaf('good', ['mail.a.test']);
const FILE = path.join(pki.dir, 'config.json5');
const CERTS = 'tls: { certificates: [{ cert: "good.pem", key: "good.key" }] }';

function load(listener: string, upstream = '', more = ''): LoadResult {
  return loadConfigText([
    '{', // 1
    `  listeners: [{ listen: "127.0.0.1:143", upstream: "mail", ${listener} },`, // 2
    `    ${more}],`, // 3
    `  upstreams: { mail: { servers: ["127.0.0.1:10143"]${upstream} } },`, // 4
    '}',
  ].join('\n'), FILE);
}

const only = onlyIssue;

test('starttls with tls.certificates loads; requireTls defaults to false; the upstream tls is kept for the upgrade', () => {
  const r = load(`starttls: "imap", ${CERTS}`, ', tls: { servername: "imap.internal" }');
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const l = r.config.listeners[0]!;
  assert.equal(l.starttls, 'imap');
  assert.equal(l.requireTls, false);
  assert.equal(l.upstreamTls?.servername, 'imap.internal');
  const strict = load(`starttls: "smtp", requireTls: true, ${CERTS}`);
  assert.ok(strict.ok && strict.config.listeners[0]!.requireTls === true);
});

test('starttls without tls.certificates is an error at the starttls key', () => {
  only(load('starttls: "pop3"'), 2, 60, /needs "tls": \{ certificates/);
});

test('an unknown protocol is an error naming the choices', () => {
  const r = load(`starttls: "xmpp", ${CERTS}`);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.issues.map(formatIssue).join('\n'), /2:70.*"imap".*"pop3".*"smtp"/);
});

test('requireTls without starttls is an error at its key', () => {
  only(load(`requireTls: true, ${CERTS}`), 2, 60, /needs "starttls"/);
});

test('starttls with tls.alpn is an error: a STARTTLS client negotiates no ALPN', () => {
  only(load('starttls: "imap", tls: { certificates: [{ cert: "good.pem", key: "good.key" }], alpn: ["imap"] }'), 2, 60, /cannot go with "tls.alpn"/);
});

test('an upstream with tls cannot serve a STARTTLS listener and a listener without starttls', () => {
  only(load(`starttls: "imap", ${CERTS}`, ', tls: {}', '{ listen: "127.0.0.1:993", upstream: "mail", name: "imaps" }'), 2, 60, /upstream "mail" has "tls" and also serves listener "imaps" without starttls/);
});

test('proxyProtocol is allowed on a STARTTLS listener whose upstream has tls (the header goes first, in clear)', () => {
  const r = load(`starttls: "imap", proxyProtocol: "v2", ${CERTS}`, ', tls: {}');
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
});

test('--check\'s summary names a STARTTLS listener\'s protocol, requireTls and the upgrade to the backends', () => {
  const r = load(`starttls: "smtp", requireTls: true, ${CERTS}`, ', tls: { servername: "smtp.internal" }');
  assert.ok(r.ok);
  if (r.ok) assert.match(summarize(r.config), /starttls smtp required mail\.a\.test \(\d+ days\), starttls to backends/);
});
