/**
 * SMTPS through tcplb to a real Postfix that requires TLS for AUTH (#16):
 * Postfix ignores the PROXY TLS fields, so tcplb re-encrypts to Postfix's
 * wrapper-mode port (upstream `tls`, verified against the internal CA and
 * the name `smtp.internal`). curl sends a message with AUTH to tcplb's
 * public name; Postfix authenticates it (SASL through Dovecot's auth socket)
 * and delivers it (the fixture's discard transport: `status=sent`). The
 * same message without AUTH is refused (AUTH is what lets it through); a
 * Postfix whose certificate another CA signed fails the connect and the
 * health check with L6_VERIFY, and the client gets no SMTP greeting.
 *
 * Addresses of THIS file: 127.0.0.120 tcplb listeners, 127.0.0.121 dovecot
 * (auth only), 127.0.0.122 postfix (smtps 465, submission 10587),
 * 127.0.0.123 postfix with a rogue certificate. Needs root, postfix,
 * dovecot and curl: without them the test skips loudly, or fails when CI=true.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { requireRealServers } from '../fixtures/real/available.js';
import { startDovecot } from '../fixtures/real/dovecot.js';
import { startPostfix } from '../fixtures/real/postfix.js';
import { makePki } from '../fixtures/pki.js';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const LB = '127.0.0.120';
const DOVECOT = '127.0.0.121';
const POSTFIX = '127.0.0.122';
const ROGUE = '127.0.0.123';

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-v', '--max-time', '15', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

test('SMTPS with AUTH through tcplb, re-encrypted to Postfix\'s wrapper-mode port, is delivered; a backend certificate from another CA fails with L6_VERIFY', { timeout: 90_000 }, async (t) => {
  if (!requireRealServers(t, 'postfix', 'dovecot', 'curl')) return;
  const pki = makePki();
  t.after(() => pki.cleanup());
  // The public name clients use, held by tcplb; Postfix has only an internal certificate.
  const pub = pki.leaf('smtp-public', ['smtp.a.test']);
  const internal = pki.leaf('smtp-internal', ['smtp.internal']);
  const rogue = pki.leaf('smtp-rogue', ['smtp.internal'], 30, 'other');
  // Postfix's smtpd reads its key before dropping privileges, but the test dir is the PKI's (0700): open it to read.
  fs.chmodSync(pki.dir, 0o755);

  const dovecot = await startDovecot({ host: DOVECOT, imapPort: 11143, imapsPort: 0, pop3Port: 0, user: 'alice', password: 'secret', authSocket: true });
  t.after(() => dovecot.stop());
  const postfix = await startPostfix({ host: POSTFIX, port: 10587, smtps: { port: 465, cert: internal.cert, key: internal.key }, saslPath: dovecot.authSocket });
  t.after(() => postfix.stop());
  const bad = await startPostfix({ host: ROGUE, port: 10587, smtps: { port: 465, cert: rogue.cert, key: rogue.key } });
  t.after(() => bad.stop());

  const port = await reservePort(LB);
  const roguePort = await reservePort(LB);
  const app = await startTestApp(`{
    listeners: [
      { name: "smtps", listen: "${LB}:${port}", upstream: "smtps", tls: { certificates: [{ cert: "${pub.cert}", key: "${pub.key}" }] } },
      { name: "smtps-rogue", listen: "${LB}:${roguePort}", upstream: "rogue", tls: { certificates: [{ cert: "${pub.cert}", key: "${pub.key}" }] } },
    ],
    upstreams: {
      smtps: { servers: ["${POSTFIX}:465"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" }, check: { type: "smtp", interval: "10s" } },
      // No check here, so the client's connect meets the rogue certificate (a check would have marked it DOWN first)...
      rogue: { servers: ["${ROGUE}:465"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" } },
      // ...and the same server under a check, for the probe's verdict.
      "rogue-checked": { servers: ["${ROGUE}:465"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" }, check: { type: "smtp", interval: "10s" } },
    },
  }`);
  t.after(() => app.stopNow());

  const msg = path.join(pki.dir, 'message.eml');
  fs.writeFileSync(msg, 'From: alice@a.test\r\nTo: bob@example.org\r\nSubject: through tcplb\r\n\r\nhello over smtps\r\n');
  const send = (p: number, auth: boolean, rcpt: string) =>
    curl(['--ssl-reqd', '--cacert', pki.caFile, '--resolve', `smtp.a.test:${p}:${LB}`, `smtps://smtp.a.test:${p}`,
      '--mail-from', 'alice@a.test', '--mail-rcpt', rcpt, ...(auth ? ['-u', 'alice:secret'] : []), '-T', msg]);

  const sent = await send(port, true, 'bob@example.org');
  assert.equal(sent.code, 0, sent.out);
  assert.match(sent.out, /subject: CN=smtp\.a\.test/, 'the client verified tcplb\'s public certificate');
  assert.match(sent.out, /AUTH PLAIN|AUTH LOGIN/, 'AUTH was offered inside TLS and used');
  const queueId = /250 2\.0\.0 Ok: queued as (\w+)/.exec(sent.out)?.[1];
  assert.ok(queueId !== undefined, sent.out);
  const log = (): string => fs.readFileSync(postfix.logPath, 'utf8');
  await waitFor(log, { what: 'the message delivered', until: (l) => new RegExp(`${queueId}: to=<bob@example\\.org>.* status=sent`).test(l), timeoutMs: 15_000 });
  assert.match(log(), new RegExp(`${queueId}: client=.*sasl_method=(PLAIN|LOGIN), sasl_username=alice`), 'Postfix authenticated alice');
  assert.match(log(), /Anonymous TLS connection established from .*TLSv1\.3/, 'Postfix saw TLS: tcplb re-encrypted');

  // Without AUTH the same message is refused: AUTH (which Postfix allows only under TLS) is what let it through.
  const anon = await send(port, false, 'carol@example.org');
  assert.notEqual(anon.code, 0);
  assert.match(anon.out, /554 5\.7\.1 .*Relay access denied|Recipient address rejected/, anon.out);

  // A Postfix whose certificate another CA signed: the connect fails with the named reason, and so does its check.
  const r = await send(roguePort, true, 'bob@example.org');
  assert.notEqual(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /220 /, 'no SMTP greeting reaches the client');
  await waitFor(() => app.lines.find((l) => /connect to rogue\/127\.0\.0\.123:465 failed: L6_VERIFY /.test(l)), { what: 'the L6_VERIFY connect failure in the log', timeoutMs: 10_000 });
  const rogueProbe = (await waitFor(() => app.runtime.backend(`rogue-checked/${ROGUE}:465`)?.lastProbe, { what: 'a probe of the rogue backend', timeoutMs: 10_000 }))!;
  assert.equal(rogueProbe.status, 'L6_VERIFY', rogueProbe.detail);
  const goodProbe = (await waitFor(() => app.runtime.backend(`smtps/${POSTFIX}:465`)?.lastProbe, { what: 'a probe of Postfix', timeoutMs: 10_000 }))!;
  assert.equal(goodProbe.ok, true, goodProbe.detail);
});
