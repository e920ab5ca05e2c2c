/**
 * STARTTLS at the balancer in front of real, unmodified Dovecot (IMAP 143,
 * POP3 110) and Postfix (submission with AUTH through Dovecot SASL), with
 * clients no one here wrote (openssl s_client -starttls, curl --ssl-reqd).
 * The servers refuse credentials in clear (`ssl = required`,
 * `disable_plaintext_auth = yes`, `smtpd_tls_auth_only = yes`), so a login
 * that works proves the backend leg is TLS too; the client verifies the
 * balancer's certificate (mail.a.test), which the servers do not have.
 *
 * Addresses of THIS file: 127.0.0.170 tcplb listeners, 127.0.0.172 dovecot,
 * 127.0.0.173 postfix. Needs root, dovecot, postfix, openssl and curl:
 * without them the test skips loudly, or fails when CI=true.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { requireRealServers } from '../fixtures/real/available.js';
import { startDovecot } from '../fixtures/real/dovecot.js';
import { startPostfix } from '../fixtures/real/postfix.js';
import { makePki } from '../fixtures/pki.js';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { sleep, waitFor } from '../helpers/wait.js';

const LB = '127.0.0.170';
const DOVECOT = '127.0.0.172';
const POSTFIX = '127.0.0.173';

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '15', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

/**
 * openssl s_client -starttls PROTO through the balancer: once the handshake
 * is done (its summary printed), `lines` are written one by one; resolves
 * with everything it printed when the server closes.
 */
function sClient(proto: 'imap' | 'pop3' | 'smtp', port: number, caFile: string, lines: string[]): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-starttls', proto, '-connect', `${LB}:${port}`, '-servername', 'mail.a.test', '-CAfile', caFile,
      '-verify_return_error', '-crlf', '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    c.stdin.on('error', () => {}); // it may exit before reading all of them
    const onOut = (d: Buffer): void => {
      out += d.toString();
      if (!sent && /Verify return code: 0/.test(out) && /\n---\n/.test(out.slice(out.indexOf('Verify return code')))) {
        sent = true;
        void (async () => {
          for (const l of lines) {
            c.stdin.write(`${l}\n`);
            await sleep(150);
          }
        })();
      }
    };
    c.stdout.on('data', onOut);
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill(), 15_000);
    c.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/**
 * Python's own clients (Debian's python3: imaplib, poplib, smtplib) through
 * the balancer with certificate verification on, for the name mail.a.test
 * (the socket goes to the balancer's address, the name is checked).
 */
const PY = `
import imaplib, poplib, smtplib, ssl, sys
mode, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class Ctx(ssl.SSLContext):
    def wrap_socket(self, sock, server_hostname=None, **kw):
        return super().wrap_socket(sock, server_hostname="mail.a.test", **kw)
ctx = Ctx(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
if mode == "imap":
    m = imaplib.IMAP4(host, port); m.starttls(ssl_context=ctx); print(m.login("alice", "secret")[0]); print(m.select("INBOX")[0]); m.logout()
elif mode == "pop3":
    m = poplib.POP3(host, port); m.stls(context=ctx); m.user("alice"); print(m.pass_("secret").decode()); print(m.stat()); m.quit()
else:
    m = smtplib.SMTP(host, port); m.starttls(context=ctx); m.login("alice", "secret")
    print(m.sendmail("alice@example.test", ["bob@example.org"], "Subject: via tcplb (python)\\r\\n\\r\\nhello\\r\\n")); m.quit()
`;

function python(mode: 'imap' | 'pop3' | 'smtp', port: number, caFile: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', ['-c', PY, mode, LB, String(port), caFile], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : 1, out: stdout + stderr });
    });
  });
}

test('IMAP and POP3 STARTTLS through tcplb to real Dovecot (ssl = required): the balancer\'s certificate, logins work, injection is discarded', { timeout: 90_000 }, async (t) => {
  if (!requireRealServers(t, 'dovecot', 'openssl', 'curl')) return;
  const pki = makePki();
  t.after(() => pki.cleanup());
  const front = pki.leaf('mail-a', ['mail.a.test']);
  const back = pki.leaf('imap-internal', ['imap.internal']);
  const dovecot = await startDovecot({
    host: DOVECOT, imapPort: 143, imapsPort: 0, pop3Port: 110, user: 'alice', password: 'secret',
    cert: { dir: pki.dir, certPath: back.cert, keyPath: back.key, cert: back.pem, key: fs.readFileSync(back.key, 'utf8'), cn: 'imap.internal', dnsNames: ['imap.internal'], cleanup: async () => undefined },
    // No login without TLS: a login through tcplb proves its leg to Dovecot is TLS.
    extraConfig: 'ssl = required\ndisable_plaintext_auth = yes\nauth_verbose = yes\n',
  });
  t.after(() => dovecot.stop());
  const imapPort = await reservePort(LB);
  const pop3Port = await reservePort(LB);
  const certs = `tls: { certificates: [{ cert: "${front.cert}", key: "${front.key}" }] }`;
  const app = await startTestApp(`{
    listeners: [
      { name: "imap", listen: "${LB}:${imapPort}", upstream: "imap", starttls: "imap", ${certs} },
      { name: "pop3", listen: "${LB}:${pop3Port}", upstream: "pop3", starttls: "pop3", ${certs} },
    ],
    upstreams: {
      imap: { servers: ["${DOVECOT}:143"], tls: { ca: "${pki.caFile}", servername: "imap.internal" }, check: { type: "imap" } },
      pop3: { servers: ["${DOVECOT}:110"], tls: { ca: "${pki.caFile}", servername: "imap.internal" }, check: { type: "pop3" } },
    },
  }`);
  t.after(() => app.stopNow());

  // openssl s_client -starttls imap: the balancer's certificate verifies for mail.a.test; LOGIN works.
  const imap = await sClient('imap', imapPort, pki.caFile, ['a LOGIN alice secret', 'b LOGOUT']);
  assert.match(imap, /subject=CN ?= ?mail\.a\.test/, imap);
  assert.match(imap, /Verify return code: 0 \(ok\)/, imap);
  assert.match(imap, /a OK .*Logged in/, imap);
  const pop3 = await sClient('pop3', pop3Port, pki.caFile, ['USER alice', 'PASS secret', 'QUIT']);
  assert.match(pop3, /subject=CN ?= ?mail\.a\.test/, pop3);
  assert.match(pop3, /\+OK Logged in/, pop3);
  await waitFor(() => fs.readFileSync(dovecot.logPath, 'utf8'), {
    what: 'both logins in the dovecot log, over TLS',
    // (rip: tcplb's own address towards Dovecot; proxyProtocol would carry the client's.)
    until: (l) => /imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.172, .*TLS/.test(l) && /pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.172, .*TLS/.test(l),
  });

  // Python's imaplib / poplib, verifying mail.a.test.
  const pyImap = await python('imap', imapPort, pki.caFile);
  assert.equal(pyImap.code, 0, pyImap.out);
  assert.match(pyImap.out, /^OK\nOK\n/, pyImap.out);
  const pyPop = await python('pop3', pop3Port, pki.caFile);
  assert.equal(pyPop.code, 0, pyPop.out);
  assert.match(pyPop.out, /^\+OK Logged in/, pyPop.out);

  // curl --ssl-reqd imap:// lists INBOX (the same upgrade by another client).
  const listed = await curl(['--ssl-reqd', '--cacert', pki.caFile, '--resolve', `mail.a.test:${imapPort}:${LB}`, `imap://mail.a.test:${imapPort}/`, '-u', 'alice:secret']);
  assert.equal(listed.code, 0, listed.out);
  assert.match(listed.out, /\* LIST \(.*\) "[./]" INBOX/, listed.out);

  // Injection: LOGIN pipelined after STARTTLS in the same packet is never executed.
  const logins = (): number => (fs.readFileSync(dovecot.logPath, 'utf8').match(/imap-login: Info: Login: user=<alice>/g) ?? []).length;
  const before = logins();
  const raw = net.connect(imapPort, LB);
  let clear = '';
  raw.on('data', (d: Buffer) => (clear += d.toString('latin1')));
  await waitFor(() => clear, { what: 'the greeting', until: (s) => s.includes('\r\n') });
  raw.write('a STARTTLS\r\nb LOGIN alice secret\r\n');
  await waitFor(() => clear, { what: 'the upgrade answer', until: (s) => /\r\na OK /.test(s) });
  await sleep(300);
  raw.removeAllListeners('data');
  assert.doesNotMatch(clear, /^b /m, 'the pipelined LOGIN got no answer in clear');
  const s = tls.connect({ socket: raw, servername: 'mail.a.test', ca: fs.readFileSync(pki.caFile) });
  let secure = '';
  s.on('data', (d: Buffer) => (secure += d.toString('latin1')));
  await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
  s.write('c NOOP\r\n');
  await waitFor(() => secure, { what: 'the NOOP answer', until: (x) => /^c /m.test(x) });
  assert.doesNotMatch(secure, /^b /m, 'nothing answers the injected LOGIN inside TLS');
  assert.match(secure.split('\r\n')[0]!, /^c OK/, secure);
  assert.equal(logins(), before, 'Dovecot never ran the injected LOGIN');
  s.destroy();
  await waitFor(() => app.records.filter((r) => r.listener === 'imap').length === 4, { what: 'the imap sessions recorded (s_client, python, curl, injection)' });
  assert.ok(app.records.every((r) => r.tls === 'client+backend'), JSON.stringify(app.records.map((r) => [r.listener, r.tls, r.reason, r.detail])));
});

test('SMTP submission STARTTLS through tcplb to real Postfix (smtpd_tls_auth_only): AUTH PLAIN after the upgrade sends a message', { timeout: 90_000 }, async (t) => {
  if (!requireRealServers(t, 'dovecot', 'postfix', 'openssl', 'curl')) return;
  const pki = makePki();
  t.after(() => pki.cleanup());
  const front = pki.leaf('mail-a', ['mail.a.test']);
  const back = pki.leaf('smtp-internal', ['smtp.internal']);
  // Postfix's SASL is Dovecot's: an auth socket in a folder both can reach.
  const sasl = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-sasl-'));
  fs.chmodSync(sasl, 0o755);
  t.after(() => fs.rmSync(sasl, { recursive: true, force: true }));
  const authSocket = path.join(sasl, 'auth');
  const dovecot = await startDovecot({
    host: DOVECOT, imapPort: 0, imapsPort: 0, pop3Port: 0, proxyPort: 0, user: 'alice', password: 'secret',
    extraConfig: `service auth {\n  unix_listener ${authSocket} {\n    mode = 0666\n  }\n}\n`,
  });
  t.after(() => dovecot.stop());
  // smtpd reads its key before dropping privileges; a copy readable by all the same.
  const tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-smtpd-tls-'));
  fs.chmodSync(tlsDir, 0o755);
  t.after(() => fs.rmSync(tlsDir, { recursive: true, force: true }));
  fs.copyFileSync(back.cert, path.join(tlsDir, 'cert.pem'));
  fs.copyFileSync(back.key, path.join(tlsDir, 'key.pem'));
  const postfix = await startPostfix({
    host: POSTFIX, port: 587,
    extraMainCf: [
      `smtpd_tls_cert_file = ${path.join(tlsDir, 'cert.pem')}`,
      `smtpd_tls_key_file = ${path.join(tlsDir, 'key.pem')}`,
      'smtpd_tls_security_level = may',
      'smtpd_tls_auth_only = yes',
      'smtpd_tls_loglevel = 1',
      'smtpd_sasl_auth_enable = yes',
      'smtpd_sasl_type = dovecot',
      `smtpd_sasl_path = ${authSocket}`,
      // Only an authenticated client may relay: the message below goes through only after AUTH.
      'smtpd_relay_restrictions = permit_sasl_authenticated, reject',
    ].join('\n'),
    // smtpd's TLS needs the TLS manager (the fixture's master.cf has none by default).
    extraMasterCf: 'tlsmgr    unix  -       -       n       1000?   1       tlsmgr',
  });
  t.after(() => postfix.stop());
  const port = await reservePort(LB);
  const app = await startTestApp(`{
    listeners: [{ name: "submission", listen: "${LB}:${port}", upstream: "submission", starttls: "smtp",
                  tls: { certificates: [{ cert: "${front.cert}", key: "${front.key}" }] } }],
    upstreams: { submission: { servers: ["${POSTFIX}:587"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" } } },
  }`);
  t.after(() => app.stopNow());

  const ehlo = await sClient('smtp', port, pki.caFile, ['EHLO client.test', 'QUIT']);
  assert.match(ehlo, /subject=CN ?= ?mail\.a\.test/, `${ehlo}\n${fs.readFileSync(postfix.logPath, 'utf8').slice(-3000)}`);
  assert.match(ehlo, /250-AUTH PLAIN/, 'AUTH is offered: Postfix sees TLS on its side');

  const msg = path.join(tlsDir, 'msg.eml');
  fs.writeFileSync(msg, 'From: alice@example.test\r\nTo: bob@example.org\r\nSubject: via tcplb STARTTLS\r\n\r\nhello\r\n');
  const sent = await curl(['--ssl-reqd', '--cacert', pki.caFile, '--resolve', `mail.a.test:${port}:${LB}`, `smtp://mail.a.test:${port}`,
    '--mail-from', 'alice@example.test', '--mail-rcpt', 'bob@example.org', '-u', 'alice:secret', '-T', msg]);
  assert.equal(sent.code, 0, sent.out);
  // Python's smtplib: starttls(), login(), sendmail() with verification on.
  const py = await python('smtp', port, pki.caFile);
  assert.equal(py.code, 0, py.out);
  assert.match(py.out, /^\{\}\n/, py.out); // sendmail: no refused recipients
  await waitFor(() => fs.readFileSync(postfix.logPath, 'utf8'), {
    what: 'the authenticated submission in the postfix log',
    until: (l) => /Anonymous TLS connection established from|TLS connection established from/.test(l) && /sasl_method=PLAIN, sasl_username=alice/.test(l),
  });
  await waitFor(() => app.records.length >= 3, { what: 'the sessions recorded (s_client, curl, python)' });
  assert.ok(app.records.every((r) => r.tls === 'client+backend' && r.reason === 'closed'), JSON.stringify(app.records.map((r) => [r.tls, r.reason, r.detail])));
});
