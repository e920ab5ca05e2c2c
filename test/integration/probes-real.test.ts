// The seven protocol probes (src/health/probes/*) against REAL servers, liars and
// silent servers. For each check type: it passes against its real server, fails
// against a liar (a server that accepts and answers plausibly but wrongly), and fails
// by *_TIMEOUT against a silent server (accepts, never writes).
//
// Addresses used by THIS file: 127.0.0.30 - 127.0.0.39 only (other test files run
// concurrently on other addresses).
//   .30 dovecot (imap 143, imaps 993, pop3 110)   .31 postfix 587   .32 mariadb 3306
//   .33 nginx 80 + 443                            .34 openssl s_server 443
//   .35 liars (free ports)   .36 silent servers (free ports)   .37 nothing (refuses)
// The real servers need root and the packages of .ci/install-deps.sh: without them
// their tests skip loudly, or fail when CI=true. Liars and silent servers always run.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { CheckType, ProbeResult } from '../../src/core/types.js';
import { DEFAULT_SEND } from '../../src/health/probes/http.js';
import { probeFor } from '../../src/health/registry.js';
import type { ProbeOptions } from '../../src/health/types.js';
import { requireRealServers } from '../fixtures/real/available.js';
import { waitUntil } from '../helpers/wait.js';
import { makeCert, type CertFiles } from '../fixtures/real/cert.js';
import { findExecutable, runChecked, sleep, type Endpoint, type RealServer } from '../fixtures/real/common.js';
import { startDovecot, type DovecotServer } from '../fixtures/real/dovecot.js';
import {
  httpLiar,
  imapLiar,
  mysqlLiar,
  pop3Liar,
  silentServer,
  smtpLiar,
  type Liar,
} from '../fixtures/real/liars.js';
import { startMariadb, type MariadbServer } from '../fixtures/real/mariadb.js';
import { startNginx, type NginxServer } from '../fixtures/real/nginx.js';
import { startPostfix, type PostfixServer } from '../fixtures/real/postfix.js';
import { startSServer, type SServer } from '../fixtures/real/s-server.js';

const DOVECOT_HOST = '127.0.0.30';
const POSTFIX_HOST = '127.0.0.31';
const MARIADB_HOST = '127.0.0.32';
const NGINX_HOST = '127.0.0.33';
const SSERVER_HOST = '127.0.0.34';
const LIAR_HOST = '127.0.0.35';
const SILENT_HOST = '127.0.0.36';
const NOBODY_HOST = '127.0.0.37';

/** Generous for real servers on loopback: a pass must never be a slow-CI accident. */
const REAL_TIMEOUT_MS = 3000;
/** The timeout for the silent-server tests, and how late past it a probe may settle. */
const SILENT_TIMEOUT_MS = 500;
const SILENT_SLACK_MS = 300;

/** The binaries each real server needs (as requireRealServers checks them). */
const NEEDS = {
  dovecot: ['dovecot', 'openssl'],
  postfix: ['postfix'],
  mariadb: ['mariadbd', 'mariadb-install-db'],
  nginx: ['nginx', 'openssl'],
  sServer: ['openssl'],
} as const;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const installed = (names: readonly string[]): boolean => isRoot && names.every((n) => findExecutable(n) !== null);

type Timed = ProbeResult & { elapsedMs: number };

/** Every probe run against a real server, for the timing line printed at the end. */
const realRuns: string[] = [];
const REAL_HOSTS = new Set(['127.0.0.30', '127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34']);

/** Run the registered probe for `type` with full options, timing it; the detail must be short human text. */
async function probe(type: CheckType, target: Endpoint, o: Partial<ProbeOptions> = {}): Promise<Timed> {
  const options: ProbeOptions = {
    timeoutMs: REAL_TIMEOUT_MS,
    tls: false,
    servername: '',
    verify: false,
    send: '',
    expect: [],
    ...o,
  };
  const started = performance.now();
  const result = await probeFor(type)({ host: target.host, port: target.port }, options, new AbortController().signal);
  const elapsedMs = performance.now() - started;
  const shown = `${type} ${target.host}:${target.port} -> ${result.status} ${JSON.stringify(result.detail)}`;
  assert.equal(typeof result.detail, 'string', shown);
  assert.ok(result.detail.length > 0 && result.detail.length < 120, `detail not short: ${shown}`);
  assert.match(result.detail, /^[\x20-\x7e]+$/, `detail is not one line of printable text: ${shown}`);
  assert.equal(result.ok, /_OK$/.test(result.status), `ok disagrees with status: ${shown}`);
  if (REAL_HOSTS.has(target.host)) realRuns.push(`${type}@${target.port}${o.tls ? '/tls' : ''} ${result.status} ${elapsedMs.toFixed(1)}ms`);
  return { ...result, elapsedMs };
}

/** A pass: ok with `status`, and the detail matching `detail`. */
function assertPass(r: Timed, status: string, detail?: RegExp): void {
  const shown = `${r.status} ${JSON.stringify(r.detail)}`;
  assert.equal(r.ok, true, `expected a pass, got ${shown}`);
  assert.equal(r.status, status, shown);
  if (detail) assert.match(r.detail, detail);
}

/** A failure with `status`, the detail matching `detail`. */
function assertFail(r: Timed, status: string, detail: RegExp): void {
  const shown = `${r.status} ${JSON.stringify(r.detail)}`;
  assert.equal(r.ok, false, `expected a failure, got ${shown}`);
  assert.equal(r.status, status, shown);
  assert.match(r.detail, detail);
}

/** Current size of a log file (the offset to read new lines from). */
async function logSize(file: string): Promise<number> {
  return (await readFile(file)).length;
}

/** The log text written after `offset`, once it matches `re` (polled: daemons log asynchronously). */
async function logAfter(file: string, offset: number, re: RegExp, ms = 3000): Promise<string> {
  const text = async (): Promise<string> => (await readFile(file)).subarray(offset).toString('utf8');
  // The caller's assertion on the text says what is missing, so no failure here.
  await waitUntil(async () => re.test(await text()), { what: `${re} in ${file}`, timeoutMs: ms, intervalMs: 25 });
  return text();
}

// ---------------------------------------------------------------------------

describe('probes against real servers', () => {
  let cert: CertFiles | undefined;
  let dovecot: DovecotServer | undefined;
  let postfix: PostfixServer | undefined;
  let mariadb: MariadbServer | undefined;
  let nginx: NginxServer | undefined;
  let sServer: SServer | undefined;
  const started: RealServer[] = [];

  /** Skip (loudly) or, under CI=true, fail when the server's binaries are missing; the server once they are not. */
  function need<S>(t: TestContext, names: readonly string[], server: S | undefined): S | undefined {
    if (!requireRealServers(t, ...names)) return undefined;
    assert.ok(server, 'server not started (see the before hook)');
    return server;
  }

  before(async () => {
    const t0 = Date.now();
    if (installed(['openssl'])) cert = await makeCert({ cn: 'mail.test' });
    // all five at once; a failed start fails every test here, the others are still stopped in after()
    const starts: Array<Promise<void>> = [];
    const track = <S extends RealServer>(p: Promise<S>, set: (s: S) => void): void =>
      void starts.push(
        p.then((s) => {
          started.push(s);
          set(s);
        }),
      );
    if (cert && installed(NEEDS.dovecot)) {
      track(startDovecot({ host: DOVECOT_HOST, imapPort: 143, imapsPort: 993, pop3Port: 110, cert }), (s) => (dovecot = s));
    }
    if (installed(NEEDS.postfix)) track(startPostfix({ host: POSTFIX_HOST, port: 587 }), (s) => (postfix = s));
    if (installed(NEEDS.mariadb)) track(startMariadb({ host: MARIADB_HOST, port: 3306 }), (s) => (mariadb = s));
    if (cert && installed(NEEDS.nginx)) {
      track(startNginx({ host: NGINX_HOST, port: 80, httpsPort: 443, name: 'web33', cert }), (s) => (nginx = s));
    }
    if (cert) track(startSServer({ host: SSERVER_HOST, port: 443, cert }), (s) => (sServer = s));
    const results = await Promise.allSettled(starts);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw failed[0]!.reason;
    const each = started.map((s) => `${s.host} ${s.startMs} ms`).join(', ');
    console.log(`real servers up in ${Date.now() - t0} ms (${each})`);
  }, { timeout: 90_000 });

  after(async () => {
    const t0 = Date.now();
    await Promise.allSettled(started.map((s) => s.stop()));
    await cert?.cleanup();
    console.log(`real servers stopped in ${Date.now() - t0} ms`);
    if (realRuns.length > 0) console.log(`probes against real servers: ${realRuns.join(', ')}`);
  });

  // --- tcp ------------------------------------------------------------------

  it('tcp: passes against nginx:80; with tls against nginx:443 records the certificate', async (t) => {
    const web = need(t, NEEDS.nginx, nginx);
    if (!web) return;
    assertPass(await probe('tcp', { host: web.host, port: 80 }), 'L4_OK', /^connected$/);
    const r = await probe('tcp', { host: web.host, port: 443 }, { tls: true, servername: 'mail.test' });
    assertPass(r, 'L6_OK', /^TLSv1\.[23] handshake ok$/);
    assert.equal(r.cert?.subject, 'mail.test');
    assert.equal(r.cert?.coversName, true);
  });

  it('tcp: with tls fails against plain text (dovecot imap 143)', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    const r = await probe('tcp', { host: mail.host, port: 143 }, { tls: true, servername: 'mail.test' });
    assertFail(r, 'L6_BAD', /TLS handshake failed/);
  });

  // --- ssl_hello --------------------------------------------------------------

  it('ssl_hello: ServerHello from openssl s_server and from nginx:443', async (t) => {
    const srv = need(t, NEEDS.sServer, sServer);
    if (!srv) return;
    assertPass(await probe('ssl_hello', { host: srv.host, port: 443 }), 'L6_OK', /ServerHello/);
    assertPass(await probe('ssl_hello', { host: srv.host, port: 443 }, { servername: 'mail.test' }), 'L6_OK');
    // s_server serves one connection at a time: a second probe right away proves the first one let go
    assertPass(await probe('ssl_hello', { host: srv.host, port: 443 }), 'L6_OK');
    const web = need(t, NEEDS.nginx, nginx);
    if (!web) return;
    assertPass(await probe('ssl_hello', { host: web.host, port: 443 }, { servername: 'mail.test' }), 'L6_OK', /ServerHello/);
  });

  it('ssl_hello: fails against plain text on the port (postfix 587, dovecot 143, nginx 80)', async (t) => {
    const smtp = need(t, NEEDS.postfix, postfix);
    const mail = need(t, NEEDS.dovecot, dovecot);
    const web = need(t, NEEDS.nginx, nginx);
    if (!smtp || !mail || !web) return;
    // postfix and dovecot speak first; nginx answers the binary hello with a 400 page
    assertFail(await probe('ssl_hello', { host: smtp.host, port: 587 }), 'L6_BAD', /^expected ServerHello, got plain text "220 mail\.test/);
    assertFail(await probe('ssl_hello', { host: mail.host, port: 143 }), 'L6_BAD', /^expected ServerHello, got plain text "\* OK/);
    assertFail(await probe('ssl_hello', { host: web.host, port: 80 }), 'L6_BAD', /^expected ServerHello, got plain text "HTTP\/1\.1 400/);
  });

  // --- http -------------------------------------------------------------------

  it('http: nginx / passes; /fail (503) fails, and passes with expect 5xx', async (t) => {
    const web = need(t, NEEDS.nginx, nginx);
    if (!web) return;
    const target = { host: web.host, port: 80 };
    assertPass(await probe('http', target), 'L7_OK', /^HTTP 200$/);
    const fail = { send: 'GET /fail HTTP/1.0\r\n\r\n' };
    assertFail(await probe('http', target, fail), 'L7_BAD_STATUS', /^HTTP 503 not in 2xx,3xx$/);
    assertPass(await probe('http', target, { ...fail, expect: ['5xx'] }), 'L7_OK', /^HTTP 503$/);
    assertFail(await probe('http', target, { expect: ['3xx'] }), 'L7_BAD_STATUS', /^HTTP 200 not in 3xx$/);
  });

  it('http: with tls against nginx:443 passes and records the certificate', async (t) => {
    const web = need(t, NEEDS.nginx, nginx);
    if (!web) return;
    const r = await probe('http', { host: web.host, port: 443 }, { tls: true, servername: 'mail.test' });
    assertPass(r, 'L7_OK', /^HTTP 200$/);
    assert.equal(r.cert?.coversName, true);
    assert.equal(r.cert?.trusted, false);
    // nginx logged the probe's requests as answered in full (status 200/503 with the body size)
    const access = await readFile(`${web.dir}/logs/access.log`, 'utf8');
    assert.match(access, /"GET \/ HTTP\/1\.0" 200 \d+/);
    assert.match(access, /"GET \/fail HTTP\/1\.0" 503 \d+/);
    // ... and saw no reset: the probe read the status line, then closed with FIN and drained the rest
    const errors = await readFile(web.logPath, 'utf8');
    assert.doesNotMatch(errors, /reset by peer|prematurely closed/, `nginx error log:\n${errors}`);
  });

  // --- smtp -------------------------------------------------------------------

  it('smtp: passes against postfix, which logs a polite EHLO + QUIT session', async (t) => {
    const smtp = need(t, NEEDS.postfix, postfix);
    if (!smtp) return;
    const offset = await logSize(smtp.logPath);
    const r = await probe('smtp', { host: smtp.host, port: 587 });
    assertPass(r, 'L7_OK', /^"220 mail\.test ESMTP tcplb-test"$/);
    // a rude probe shows as `lost connection after EHLO`, an impatient one as `improper command pipelining`
    const log = await logAfter(smtp.logPath, offset, /ehlo=1 quit=1 commands=2\b/);
    assert.match(log, /disconnect from \S+ ehlo=1 quit=1 commands=2\b/, `postfix log:\n${log}`);
    assert.doesNotMatch(log, /(lost connection|improper command pipelining) after (EHLO|HELO|QUIT)/, `postfix log:\n${log}`);
  });

  // --- mysql ------------------------------------------------------------------

  it('mysql: passes against mariadb, the detail names the version', async (t) => {
    const db = need(t, NEEDS.mariadb, mariadb);
    if (!db) return;
    // `mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu ...`
    const version = /\bVer (\S+)/.exec(await runChecked(findExecutable('mariadbd')!, ['--version']))?.[1];
    assert.ok(version, 'mariadbd --version');
    const r = await probe('mysql', { host: db.host, port: 3306 });
    // MariaDB prefixes its version with `5.5.5-` in the handshake (for old replication clients)
    assertPass(r, 'L7_OK', new RegExp(`^MySQL (5\\.5\\.5-)?${version.replace(/[.+]/g, '\\$&')}$`));
  });

  // --- pop3 -------------------------------------------------------------------

  it('pop3: passes against dovecot 110, which logs a QUIT, not a dropped connection', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    const offset = await logSize(mail.logPath);
    assertPass(await probe('pop3', { host: mail.host, port: 110 }), 'L7_OK', /^"\+OK Dovecot ready\."$/);
    // dovecot logs every login-less session at info level with `(no auth attempts ...)`; what tells a
    // polite probe from a rude one is the reason: `Aborted login by logging out` vs `Connection closed`
    const log = await logAfter(mail.logPath, offset, /pop3-login: .*Disconnected: Aborted login by logging out/);
    assert.match(log, /pop3-login: .*Disconnected: Aborted login by logging out/, `dovecot log:\n${log}`);
  });

  // --- imap -------------------------------------------------------------------

  it('imap: passes against dovecot 143, which logs a LOGOUT, not a dropped connection', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    const offset = await logSize(mail.logPath);
    assertPass(await probe('imap', { host: mail.host, port: 143 }), 'L7_OK', /^"\* OK /);
    const log = await logAfter(mail.logPath, offset, /imap-login: .*Disconnected: Aborted login by logging out/);
    assert.match(log, /imap-login: .*Disconnected: Aborted login by logging out/, `dovecot log:\n${log}`);
  });

  it('imap: with tls + servername mail.test against dovecot 993 passes and records the certificate', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    const offset = await logSize(mail.logPath);
    const r = await probe('imap', { host: mail.host, port: 993 }, { tls: true, servername: 'mail.test' });
    assertPass(r, 'L7_OK', /^"\* OK /);
    assert.ok(r.cert, 'certificate recorded');
    assert.equal(r.cert.subject, 'mail.test');
    assert.equal(r.cert.coversName, true);
    assert.equal(r.cert.trusted, false);
    assert.ok(r.cert.daysLeft > 0 && r.cert.daysLeft <= 30, `daysLeft ${r.cert.daysLeft}`);
    assert.ok(Math.abs(r.cert.validTo - (Date.now() + 30 * 86_400_000)) < 86_400_000, 'validTo about 30 days ahead');
    const log = await logAfter(mail.logPath, offset, /imap-login: .*Disconnected: Aborted login by logging out.*TLS,/);
    assert.match(log, /imap-login: .*Disconnected: Aborted login by logging out.*TLS,/, `dovecot log:\n${log}`);
  });

  it('imap: with tls + verify fails on a name the certificate does not cover, and on self-signed', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    const target = { host: mail.host, port: 993 };
    const other = await probe('imap', target, { tls: true, servername: 'other.example', verify: true });
    assertFail(other, 'L6_BAD', /certificate does not cover other\.example/);
    assert.equal(other.cert?.coversName, false);
    // without verify the same mismatch is recorded, not failed
    const recorded = await probe('imap', target, { tls: true, servername: 'other.example' });
    assertPass(recorded, 'L7_OK');
    assert.equal(recorded.cert?.coversName, false);
    // the right name still fails verify: the certificate is self-signed
    const self = await probe('imap', target, { tls: true, servername: 'mail.test', verify: true });
    assertFail(self, 'L6_BAD', /^certificate not trusted: self-signed certificate$/);
  });

  it('pop3 and imap: fail against each other (a greeting of the wrong protocol)', async (t) => {
    const mail = need(t, NEEDS.dovecot, dovecot);
    if (!mail) return;
    assertFail(await probe('pop3', { host: mail.host, port: 143 }), 'L7_BAD_RESPONSE', /^expected \+OK, got "\* OK/);
    assertFail(await probe('imap', { host: mail.host, port: 110 }), 'L7_BAD_RESPONSE', /^expected \* OK, got "\+OK/);
  });
});

// ---------------------------------------------------------------------------

describe('probes against liars', () => {
  const liars: Liar[] = [];
  const start = async (p: Promise<Liar>): Promise<Liar> => {
    const l = await p;
    liars.push(l);
    return l;
  };
  after(async () => {
    await Promise.all(liars.map((l) => l.close()));
  });

  it('tcp: a port that refuses fails with L4_REFUSED', async () => {
    const r = await probe('tcp', { host: NOBODY_HOST, port: 80 });
    assertFail(r, 'L4_REFUSED', /^connection refused$/);
    assert.ok(r.elapsedMs < 500, `refusal took ${r.elapsedMs} ms`);
  });

  it('pop3: -ERR greeting fails with L7_BAD_STATUS, closed with FIN', async () => {
    const liar = await start(pop3Liar(LIAR_HOST));
    assertFail(await probe('pop3', liar), 'L7_BAD_STATUS', /^expected \+OK, got "-ERR \[SYS\/TEMP\] Too many/);
    assert.deepEqual(await (await liar.conn(0)).closed, { clean: true });
  });

  it('imap: * BYE greeting fails with L7_BAD_STATUS', async () => {
    const liar = await start(imapLiar(LIAR_HOST));
    assertFail(await probe('imap', liar), 'L7_BAD_STATUS', /^expected \* OK, got "\* BYE \[UNAVAILABLE\]/);
    assert.equal((await liar.conn(0)).received(), '', 'no LOGOUT after a BYE');
  });

  it('smtp: 554 greeting fails with L7_BAD_STATUS, the client still says QUIT', async () => {
    const liar = await start(smtpLiar(LIAR_HOST));
    assertFail(await probe('smtp', liar), 'L7_BAD_STATUS', /^expected 2xx greeting, got "554 5\.3\.2/);
    const conn = await liar.conn(0);
    assert.deepEqual(await conn.closed, { clean: true });
    assert.equal(conn.received(), 'QUIT\r\n', 'QUIT only: no EHLO to a refusing server');
  });

  it('http: 503 fails with L7_BAD_STATUS', async () => {
    const liar = await start(httpLiar(LIAR_HOST));
    assertFail(await probe('http', liar), 'L7_BAD_STATUS', /^HTTP 503 not in 2xx,3xx$/);
    assert.equal((await liar.conn(0)).received(), DEFAULT_SEND, 'the default request, nothing more');
  });

  it('mysql: an ERR packet (0xff) instead of the handshake fails with the server message', async () => {
    const liar = await start(mysqlLiar(LIAR_HOST));
    assertFail(await probe('mysql', liar), 'L7_BAD_STATUS', /^MySQL error 1040: Too many connections$/);
  });

  it('ssl_hello: plain text on the port fails with L6_BAD', async () => {
    const liar = await start(pop3Liar(LIAR_HOST));
    assertFail(await probe('ssl_hello', liar), 'L6_BAD', /^expected ServerHello, got plain text "-ERR/);
  });
});

// ---------------------------------------------------------------------------

describe('probes against a silent server (accepts, never writes)', () => {
  const silent: Liar[] = [];
  after(async () => {
    await Promise.all(silent.map((l) => l.close()));
  });

  // tcp cannot see a silent server (connected is all it checks): with tls it waits for the handshake
  const cases: Array<[CheckType, Partial<ProbeOptions>, string, RegExp]> = [
    ['tcp', { tls: true, servername: 'mail.test' }, 'L6_TIMEOUT', /TLS handshake/],
    ['ssl_hello', {}, 'L6_TIMEOUT', /ServerHello/],
    ['http', {}, 'L7_TIMEOUT', /status line/],
    ['smtp', {}, 'L7_TIMEOUT', /greeting/],
    ['mysql', {}, 'L7_TIMEOUT', /handshake packet/],
    ['pop3', {}, 'L7_TIMEOUT', /greeting/],
    ['imap', {}, 'L7_TIMEOUT', /greeting/],
    ['imap', { tls: true, servername: 'mail.test' }, 'L6_TIMEOUT', /TLS handshake/],
  ];
  for (const [type, o, status, what] of cases) {
    it(`${type}${o.tls ? ' (tls)' : ''}: ${status} within ${SILENT_TIMEOUT_MS} + ${SILENT_SLACK_MS} ms`, async () => {
      const server = await silentServer(SILENT_HOST);
      silent.push(server);
      const r = await probe(type, server, { ...o, timeoutMs: SILENT_TIMEOUT_MS });
      assertFail(r, status, new RegExp(`^timeout after ${SILENT_TIMEOUT_MS} ms waiting for .*${what.source}`));
      assert.ok(r.elapsedMs >= SILENT_TIMEOUT_MS - 5, `settled early: ${r.elapsedMs.toFixed(0)} ms`);
      assert.ok(r.elapsedMs <= SILENT_TIMEOUT_MS + SILENT_SLACK_MS, `settled late: ${r.elapsedMs.toFixed(0)} ms`);
      // the probe hangs up at its deadline
      const closed = await Promise.race([(await server.conn(0)).closed, sleep(1000).then(() => 'still open')]);
      assert.notEqual(closed, 'still open', 'connection left open after the timeout');
    });
  }

  it('tcp (plain): passes, since a connect is all it checks', async () => {
    const server = await silentServer(SILENT_HOST);
    silent.push(server);
    assertPass(await probe('tcp', server, { timeoutMs: SILENT_TIMEOUT_MS }), 'L4_OK');
  });
});
