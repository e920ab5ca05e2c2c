/**
 * The certificate book behind `ctl certs` (#16): serving-since per
 * certificate across reloads, a refused reload recorded against the
 * listener whose files fail (not against the others), the text and the exit
 * decision.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';
import { CertBook, certsTrouble, formatCerts } from '../../../src/runtime/cert-status.js';
import { makePki } from '../../fixtures/pki.js';

const pki = makePki();
process.on('exit', () => pki.cleanup());

function config(a: { cert: string; key: string }, b: { cert: string; key: string }): Config {
  const r = loadConfigText(`{
    listeners: [
      { name: "imaps", listen: "127.0.0.1:9993", upstream: "u", tls: { certificates: [{ cert: "${a.cert}", key: "${a.key}" }] } },
      { name: "pop3s", listen: "127.0.0.1:9995", upstream: "u", tls: { certificates: [{ cert: "${b.cert}", key: "${b.key}" }] } },
      { name: "plain", listen: "127.0.0.1:9143", upstream: "u" },
    ],
    upstreams: { u: { servers: ["127.0.0.1:1"] } },
  }`, '');
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  return r.config;
}

test('serving-since survives a reload for an unchanged certificate and starts anew for a replaced one', () => {
  const a1 = pki.leaf('book-a1', ['mail.a.test']);
  const a2 = pki.leaf('book-a2', ['mail.a.test']);
  const b = pki.leaf('book-b', ['pop.b.test']);
  const book = new CertBook(config(a1, b), 1000);
  const next = config(a2, b);
  book.applied(next, 5000);
  const r = book.report(next, 6000);
  assert.deepEqual(r.listeners.map((l) => l.listener), ['imaps', 'pop3s'], 'plain listeners are not listed');
  assert.equal(r.listeners[0]!.certificates[0]!.loadedAt, 5000);
  assert.equal(r.listeners[0]!.certificates[0]!.serial, next.listeners[0]!.tls!.certificates[0]!.serial);
  assert.equal(r.listeners[1]!.certificates[0]!.loadedAt, 1000);
  assert.deepEqual(r.listeners[0]!.lastReload, { at: 5000, ok: true });
  assert.equal(certsTrouble(r), false);
});

test('a refused reload is recorded against the listener whose files fail now, and clears at the next good load', () => {
  const live = fs.mkdtempSync(`${pki.dir}/book-live-`);
  const a = pki.leaf('book-r1', ['mail.a.test']);
  const other = pki.leaf('book-r2', ['mail.c.test']);
  const b = pki.leaf('book-rb', ['pop.b.test']);
  fs.copyFileSync(a.cert, `${live}/cert.pem`);
  fs.copyFileSync(a.key, `${live}/key.pem`);
  const cfg = config({ cert: `${live}/cert.pem`, key: `${live}/key.pem` }, b);
  const book = new CertBook(cfg, 1000);
  fs.copyFileSync(other.key, `${live}/key.pem`);
  book.refused(cfg, 2000);
  const r = book.report(cfg, 3000);
  assert.equal(r.listeners[0]!.lastReload.ok, false);
  assert.match(r.listeners[0]!.lastReload.error ?? '', /does not match the certificate/);
  assert.deepEqual(r.listeners[1]!.lastReload, { at: 1000, ok: true }, 'the other listener\'s record is untouched');
  assert.equal(certsTrouble(r), true);
  const text = formatCerts(r).join('\n');
  assert.match(text, /^imaps 127\.0\.0\.1:9993 · last reload .* REFUSED: .*does not match.* \(the certificates below keep serving\)$/m);
  assert.match(text, /^ {2}mail\.a\.test \(default\)$/m);
  fs.copyFileSync(a.key, `${live}/key.pem`);
  book.applied(cfg, 4000);
  assert.equal(book.report(cfg, 4000).listeners[0]!.lastReload.ok, true);
});

test('an expired certificate needs a person: certsTrouble, and the text says EXPIRED', () => {
  const a = pki.leaf('book-exp', ['mail.a.test']);
  const b = pki.leaf('book-expb', ['pop.b.test']);
  const cfg = config(a, b);
  const book = new CertBook(cfg, 1000);
  const later = cfg.listeners[0]!.tls!.certificates[0]!.notAfter + 2 * 86_400_000;
  const r = book.report(cfg, later);
  assert.equal(certsTrouble(r), true);
  assert.match(formatCerts(r).join('\n'), /\(EXPIRED 2 days ago\)/);
  assert.deepEqual(formatCerts(new CertBook(config(a, b)).report({ ...cfg, listeners: [] })), ['no listener has tls']);
});
