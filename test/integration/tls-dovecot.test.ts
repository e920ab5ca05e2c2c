/**
 * TLS at the balancer in front of a real Dovecot that has no certificate of
 * the client's name: tcplb holds it, and tells Dovecot about the session in
 * the PROXY v2 TLS fields (`haproxy = yes`, `ssl = required`). An IMAPS
 * login with curl then lists INBOX; the same login through a listener that
 * sends a header without the TLS fields (v1) is refused, which proves Dovecot
 * relies on them.
 *
 * Addresses of THIS file: 127.0.0.110 tcplb listeners, 127.0.0.112 dovecot
 * (PROXY IMAP port 11143). Needs root, dovecot and curl: without them the
 * test skips loudly, or fails when CI=true.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import tls from 'node:tls';
import { test } from 'node:test';
import { requireRealServers } from '../fixtures/real/available.js';
import { startDovecot } from '../fixtures/real/dovecot.js';
import { makePki } from '../fixtures/pki.js';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const LB = '127.0.0.110';
const DOVECOT = '127.0.0.112';
const DOVECOT_PROXY_PORT = 11143;

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

/** The IMAP greeting (with its CAPABILITY) through a TLS listener. */
function greeting(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: LB, port, servername: 'mail.a.test', ca: fs.readFileSync(ca), ALPNProtocols: ['imap'] });
    let buf = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        s.destroy();
        resolve(buf.split('\r\n')[0]!);
      }
    });
  });
}

test('IMAPS through tcplb to Dovecot (ssl = required): login works with the PROXY v2 TLS fields, is refused without them', { timeout: 60_000 }, async (t) => {
  if (!requireRealServers(t, 'dovecot', 'curl')) return;
  const pki = makePki();
  const leaf = pki.leaf('mail-a', ['mail.a.test']);
  const dovecot = await startDovecot({
    host: DOVECOT, imapPort: 0, imapsPort: 0, pop3Port: 0, proxyPort: DOVECOT_PROXY_PORT,
    user: 'alice', password: 'secret',
    // ssl = required: no login on a connection Dovecot does not consider TLS-secured.
    extraConfig: 'ssl = required\ndisable_plaintext_auth = yes\nauth_verbose = yes\n',
  });
  t.after(() => dovecot.stop());
  const withTls = await reservePort(LB);
  const withoutTls = await reservePort(LB);
  const app = await startTestApp(`{
    listeners: [
      { name: "imaps", listen: "${LB}:${withTls}", upstream: "imap", proxyProtocol: "v2",
        tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }], alpn: ["imap"] } },
      { name: "imaps-v1", listen: "${LB}:${withoutTls}", upstream: "imap", proxyProtocol: "v1",
        tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }] } },
    ],
    upstreams: { imap: { servers: ["${DOVECOT}:${DOVECOT_PROXY_PORT}"] } },
  }`);
  t.after(() => app.stopNow());

  const ok = await curl(['--cacert', pki.caFile, '--resolve', `mail.a.test:${withTls}:${LB}`, `imaps://mail.a.test:${withTls}/`, '-u', 'alice:secret']);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /\* LIST \(.*\) "[./]" INBOX/, ok.out);
  // Dovecot logged the client (not tcplb) and the session as secured (its word for TLS it did not do itself).
  await waitFor(() => fs.readFileSync(dovecot.logPath, 'utf8'), {
    what: 'the login in the dovecot log',
    until: (l) => /imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.110,.*secured/.test(l),
  });
  // Secured: logins are offered (Dovecot 2.3 still lists STARTTLS, as it did not do the TLS itself;
  // 2.4 drops it). Without the TLS fields: LOGINDISABLED.
  const hello = await greeting(withTls, pki.caFile);
  assert.match(hello, /^\* OK \[CAPABILITY [^\]]*AUTH=PLAIN/, hello);
  assert.doesNotMatch(hello, /LOGINDISABLED/, hello);
  const helloV1 = await greeting(withoutTls, pki.caFile);
  assert.match(helloV1, /LOGINDISABLED/, helloV1);

  const refused = await curl(['--cacert', pki.caFile, '--resolve', `mail.a.test:${withoutTls}:${LB}`, `imaps://mail.a.test:${withoutTls}/`, '-u', 'alice:secret']);
  assert.notEqual(refused.code, 0, `the login without TLS fields must fail:\n${refused.out}`);
  assert.doesNotMatch(refused.out, /INBOX/);
  pki.cleanup();
});
