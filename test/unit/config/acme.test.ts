/** `acme` and the listeners that use it: defaults, domain names, the challenge's listener, errors at their file:line:col. */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { onlyIssue } from '../../helpers/config.js';

const FILE = path.join(os.tmpdir(), 'tcplb-acme-unit', 'x.json5');
/** Line 1: acme; line 2: the listeners; line 3: upstreams. */
const cfg = (acme: string, listeners: string): ReturnType<typeof loadConfigText> =>
  loadConfigText(`{ ${acme}\n  listeners: [${listeners}],\n  upstreams: { u: { servers: ["10.0.0.2:80"] } } }`, FILE);
const ACME = 'acme: { email: "ops@example.net", domains: ["www.example.net", "Example.NET"] },';
const TLS = '{ name: "s", listen: "127.0.0.1:8443", upstream: "u", tls: { acme: true } }';
const HTTP = '{ name: "h", listen: "127.0.0.1:8080", upstream: "u", acme: true }';

test('acme: defaults (Let\'s Encrypt, tls-alpn-01, acme/ beside the config, two thirds of the lifetime), names lower-cased, listeners answer', () => {
  const r = cfg(ACME, `${TLS}, ${HTTP}`);
  assert.ok(r.ok, r.ok ? '' : r.issues.map((i) => i.message).join('\n'));
  assert.deepEqual(r.config.acme, {
    email: 'ops@example.net', directory: 'https://acme-v02.api.letsencrypt.org/directory', domains: ['www.example.net', 'example.net'],
    challenge: 'tls-alpn-01', storage: path.join(path.dirname(FILE), 'acme'), renewBeforeMs: null, retryMinMs: 60_000, retryMaxMs: 12 * 3_600_000, order: true,
  });
  assert.deepEqual(r.config.listeners[0]!.acme, { storage: path.join(path.dirname(FILE), 'acme'), challenge: 'tls-alpn-01' });
  assert.deepEqual(r.config.listeners[0]!.tls?.certificates, [], 'no certificate stored yet: none served until the first order');
  assert.deepEqual(r.config.listeners[1]!.acme, { storage: path.join(path.dirname(FILE), 'acme'), challenge: 'http-01' });
  const staging = cfg('acme: { email: "a@b.cd", domains: ["a.b.cd"], directory: "letsencrypt-staging", renewBefore: "30d", storage: "/var/lib/tcplb/acme" },', TLS);
  assert.ok(staging.ok);
  assert.equal(staging.config.acme?.directory, 'https://acme-staging-v02.api.letsencrypt.org/directory');
  assert.equal(staging.config.acme?.renewBeforeMs, 30 * 86_400_000);
  assert.equal(staging.config.acme?.storage, '/var/lib/tcplb/acme');
});

test('acme: bad names, e-mail and directory are refused at their place, without contacting anything', () => {
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: ["*.example.net"] },', TLS), 1, 47, /wildcard "\*\.example\.net" needs the dns-01 challenge/);
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: ["localhost"] },', TLS), 1, 47, /one label/);
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: ["10.0.0.1"] },', TLS), 1, 47, /IP address/);
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: ["a_b.example.net"] },', TLS), 1, 47, /invalid domain name/);
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: ["a.example.net", "A.example.net"] },', TLS), 1, 64, /listed twice/);
  onlyIssue(cfg('acme: { email: "ops@example.net", domains: [] },', TLS), 1, 46, /at least one domain/);
  onlyIssue(cfg('acme: { email: "ops", domains: ["a.example.net"] },', TLS), 1, 18, /invalid e-mail address "ops"/);
  onlyIssue(cfg('acme: { email: "a@b.cd", domains: ["a.b.cd"], directory: "http://ca.example/dir" },', TLS), 1, 60, /must be https:\/\//);
  onlyIssue(cfg('acme: { email: "a@b.cd", domains: ["a.b.cd"], challenge: "dns-01" },', TLS), 1, 60, /must be "tls-alpn-01" or "http-01"/);
});

test('acme: the challenge needs its listener; tls.acme and acme need the block; a TLS listener needs certificates or acme', () => {
  onlyIssue(cfg(ACME, HTTP), 1, 9, /tls-alpn-01 needs a TLS listener with "tls": \{ "acme": true \}/);
  onlyIssue(cfg(ACME.replace('},', ', challenge: "http-01" },'), TLS), 1, 9, /http-01 needs a plain listener with "acme": true/);
  onlyIssue(cfg('', TLS), 2, 74, /needs the top-level "acme" block/);
  onlyIssue(cfg('', HTTP), 2, 69, /needs the top-level "acme" block/);
  onlyIssue(cfg(ACME, `${TLS}, { name: "t", listen: "127.0.0.1:8444", upstream: "u", tls: { acme: true }, acme: true }`), 2, 167, /on a TLS listener use "tls": \{ "acme": true \}/);
  onlyIssue(cfg('', '{ listen: "127.0.0.1:8443", upstream: "u", tls: {} }'), 2, 63, /needs "certificates": \[\{ cert, key \}\] or "acme": true/);
});
