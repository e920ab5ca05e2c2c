// Real protocol servers as private loopback instances (test/fixtures/real/*):
// each one starts, greets a raw socket the way its protocol says, and stops
// (our PID gone, port closed).
//
// Addresses used by THIS file: 127.0.0.20 - 127.0.0.26 (127.0.0.20-29 are reserved
// for it), on the protocols' normal ports; other test files use other addresses.
//   .20 dovecot A (143, 993, 110, PROXY imap 10143)   .21 dovecot B (143, 993, 110)
//   .22 postfix 587   .23 postfix 587 with PROXY protocol   .24 mariadb 3306
//   .25 nginx 80 + 443   .26 openssl s_server 443
// Needs root and the packages of .ci/install-deps.sh; without them the tests skip
// loudly, or fail when CI=true.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { requireBinary, requireRealServers } from '../fixtures/real/available.js';
import { pidAlive, portOpen, type RealServer } from '../fixtures/real/common.js';
import { startDovecot } from '../fixtures/real/dovecot.js';
import { startMariadb } from '../fixtures/real/mariadb.js';
import { NGINX_FILE_1M, patternBytes, startNginx } from '../fixtures/real/nginx.js';
import { startPostfix } from '../fixtures/real/postfix.js';
import { startSServer } from '../fixtures/real/s-server.js';

// ---------------------------------------------------------------------------
// a tiny line-oriented client over net/tls

interface Conn {
  sock: net.Socket;
  /** resolves with everything read so far once `re` matches the unread part */
  waitFor(re: RegExp | ((b: Buffer) => boolean), timeoutMs?: number): Promise<Buffer>;
  write(s: string | Buffer): void;
  close(): void;
}

function connect(host: string, port: number, opts: { tls?: boolean } = {}): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock: net.Socket = opts.tls
      ? tls.connect({ host, port, servername: 'mail.test', rejectUnauthorized: false })
      : net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let consumed = 0;
    let waiter: (() => void) | null = null;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      waiter?.();
    });
    sock.on('close', () => waiter?.());
    sock.once('error', reject);
    sock.once(opts.tls ? 'secureConnect' : 'connect', () =>
      resolve({
        sock,
        write: (s) => sock.write(s),
        close: () => sock.destroy(),
        waitFor: (re, timeoutMs = 5000) =>
          new Promise<Buffer>((res, rej) => {
            const timer = setTimeout(() => {
              waiter = null;
              rej(new Error(`timeout waiting for ${re}; unread: ${JSON.stringify(buf.subarray(consumed).toString('latin1'))}`));
            }, timeoutMs);
            const check = () => {
              const rest = buf.subarray(consumed);
              const ok = typeof re === 'function' ? re(rest) : re.test(rest.toString('latin1'));
              if (ok) {
                clearTimeout(timer);
                waiter = null;
                consumed = buf.length;
                res(rest);
              } else if (sock.destroyed || sock.readableEnded) {
                clearTimeout(timer);
                waiter = null;
                rej(new Error(`closed while waiting for ${re}; unread: ${JSON.stringify(rest.toString('latin1'))}`));
              }
            };
            waiter = check;
            check();
          }),
      }),
    );
  });
}

async function greeting(host: string, port: number, re: RegExp, o: { tls?: boolean; send?: string } = {}): Promise<string> {
  const c = await connect(host, port, o);
  try {
    if (o.send) c.write(o.send);
    return (await c.waitFor(re)).toString('latin1');
  } finally {
    c.close();
  }
}

function httpGet(
  url: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; httpVersion: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { rejectUnauthorized: false, servername: 'mail.test', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), httpVersion: res.httpVersion }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`timeout GET ${url}`)));
  });
}

/** stop() and check that the PID we started is gone and every port refuses. */
async function stopAndCheck(s: RealServer, ports: number[]): Promise<void> {
  await s.stop();
  assert.equal(pidAlive(s.pid), false, `pid ${s.pid} still alive after stop()`);
  for (const p of ports) {
    assert.equal(await portOpen(s.host, p), false, `${s.host}:${p} still open after stop()`);
  }
}

/** stop the servers if a test failed half-way (stop() is idempotent) */
function cleanup(t: TestContext, servers: RealServer[]): void {
  t.after(async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  });
}

const log = (msg: string) => console.log(msg);

// ---------------------------------------------------------------------------

test('requireBinary: fails under CI=true, skips loudly otherwise', () => {
  const saved = process.env.CI;
  const savedError = console.error;
  const skips: string[] = [];
  const fake = { skip: (m?: string) => void skips.push(m ?? '') } as unknown as TestContext;
  try {
    console.error = () => undefined;
    process.env.CI = 'true';
    assert.throws(() => requireBinary('tcplb-no-such-binary', fake), /tcplb-no-such-binary not installed: run sudo \.ci\/install-deps\.sh/);
    assert.deepEqual(skips, []);
    delete process.env.CI;
    assert.equal(requireBinary('tcplb-no-such-binary', fake), false);
    assert.deepEqual(skips, ['tcplb-no-such-binary not installed: run sudo .ci/install-deps.sh']);
    assert.equal(requireBinary('openssl', fake), true);
  } finally {
    console.error = savedError;
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
});

test('dovecot: two replicas with distinct greetings (imap, imaps, pop3, PROXY listener, login)', async (t) => {
  if (!requireRealServers(t, 'dovecot')) return;
  const [a, b] = await Promise.all([
    startDovecot({ host: '127.0.0.20', greeting: 'mail20 ready', proxyPort: 10143 }),
    startDovecot({ host: '127.0.0.21', greeting: 'mail21 ready' }),
  ]);
  cleanup(t, [a, b]);
  log(`dovecot started in ${a.startMs} ms / ${b.startMs} ms (pids ${a.pid}, ${b.pid})`);

  for (const [s, name] of [[a, 'mail20'], [b, 'mail21']] as const) {
    const imap = await greeting(s.host, 143, /\r\n/);
    assert.match(imap, /^\* OK /);
    assert.match(imap, new RegExp(`${name} ready`));
    const imaps = await greeting(s.host, 993, /\r\n/, { tls: true });
    assert.match(imaps, new RegExp(`^\\* OK .*${name} ready`));
    const pop3 = await greeting(s.host, 110, /\r\n/);
    assert.match(pop3, new RegExp(`^\\+OK ${name} ready`));
  }
  // the replicas really are different servers
  assert.doesNotMatch(await greeting('127.0.0.21', 143, /\r\n/), /mail20/);

  // the test user logs in (IMAP and POP3)
  const c = await connect(a.host, 143);
  await c.waitFor(/^\* OK .*\r\n/);
  c.write('a1 LOGIN test test\r\n');
  assert.match((await c.waitFor(/^a1 \w+.*\r\n/m)).toString(), /^a1 OK/m);
  c.write('a2 LOGOUT\r\n');
  await c.waitFor(/^a2 OK/m);
  c.close();
  const p = await connect(b.host, 110);
  await p.waitFor(/^\+OK.*\r\n/);
  p.write('USER test\r\n');
  await p.waitFor(/^\+OK.*\r\n/);
  p.write('PASS test\r\n');
  assert.match((await p.waitFor(/\r\n/)).toString(), /^\+OK/);
  p.write('QUIT\r\n');
  p.close();

  // PROXY protocol listener: header first, then the greeting
  const proxied = await greeting(a.host, 10143, /\r\n/, { send: `PROXY TCP4 127.0.0.99 ${a.host} 50000 10143\r\n` });
  assert.match(proxied, /^\* OK .*mail20 ready/);

  await Promise.all([stopAndCheck(a, [143, 993, 110, 10143]), stopAndCheck(b, [143, 993, 110])]);
});

test('postfix: 220 ESMTP greeting, EHLO, PROXY protocol variant', async (t) => {
  if (!requireRealServers(t, 'postfix')) return;
  const [plain, proxied] = await Promise.all([
    startPostfix({ host: '127.0.0.22', port: 587 }),
    startPostfix({ host: '127.0.0.23', port: 587, proxyProtocol: true }),
  ]);
  cleanup(t, [plain, proxied]);
  log(`postfix started in ${plain.startMs} ms / ${proxied.startMs} ms (proxy protocol)`);

  const c = await connect(plain.host, 587);
  assert.match((await c.waitFor(/\r\n/)).toString(), /^220 mail\.test ESMTP/);
  c.write('EHLO probe.test\r\n');
  const ehlo = (await c.waitFor(/^250 .*\r\n/m)).toString();
  assert.match(ehlo, /^250-mail\.test/);
  c.write('QUIT\r\n');
  await c.waitFor(/^221/m);
  c.close();

  // with smtpd_upstream_proxy_protocol = haproxy the header's source address is the client
  const d = await connect(proxied.host, 587);
  d.write(`PROXY TCP4 127.0.0.99 ${proxied.host} 50000 587\r\n`);
  assert.match((await d.waitFor(/\r\n/)).toString(), /^220 mail\.test ESMTP/);
  d.write('QUIT\r\n');
  await d.waitFor(/^221/m);
  d.close();
  const { readFile } = await import('node:fs/promises');
  assert.match(await readFile(proxied.logPath, 'utf8'), /connect from unknown\[127\.0\.0\.99\]/);

  await Promise.all([stopAndCheck(plain, [587]), stopAndCheck(proxied, [587])]);
});

test('mariadb: handshake packet with protocol version 10', async (t) => {
  if (!requireRealServers(t, 'mariadbd', 'mariadb-install-db')) return;
  const t0 = Date.now();
  const db = await startMariadb({ host: '127.0.0.24', port: 3306 });
  cleanup(t, [db]);
  log(`mariadb started in ${db.startMs} ms (${Date.now() - t0} ms with install-db)`);

  const c = await connect(db.host, 3306);
  const pkt = await c.waitFor((b) => b.length >= 4 && b.length >= 4 + b.readUIntLE(0, 3));
  c.close();
  assert.equal(pkt[3], 0, 'sequence id 0');
  assert.equal(pkt[4], 0x0a, 'protocol version 10');
  const version = pkt.subarray(5, pkt.indexOf(0, 5)).toString('latin1');
  assert.match(version, /MariaDB/);

  // many probes that hang up right after the handshake must not get us blocked
  for (let i = 0; i < 20; i++) {
    const x = await connect(db.host, 3306);
    await x.waitFor((b) => b.length > 4);
    x.close();
  }
  const again = await connect(db.host, 3306);
  assert.equal((await again.waitFor((b) => b.length > 4))[4], 0x0a);
  again.close();

  await stopAndCheck(db, [3306]);
});

test('nginx: 200 on /, 503 on /fail, static files, https', async (t) => {
  if (!requireRealServers(t, 'nginx')) return;
  const web = await startNginx({ host: '127.0.0.25', port: 80, httpsPort: 443, name: 'web25' });
  cleanup(t, [web]);
  log(`nginx started in ${web.startMs} ms`);

  const raw = await greeting(web.host, 80, /\r\n\r\n/, { send: 'GET / HTTP/1.1\r\nHost: mail.test\r\nConnection: close\r\n\r\n' });
  assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
  const fail = await greeting(web.host, 80, /\r\n\r\n/, { send: 'GET /fail HTTP/1.0\r\n\r\n' });
  assert.match(fail, /^HTTP\/1\.1 503 /);

  const root = await httpGet(`http://${web.host}/`);
  assert.equal(root.status, 200);
  assert.equal(root.headers['x-backend'], 'web25');
  assert.equal(root.body.toString(), 'web25 ok\n');
  const small = await httpGet(`http://${web.host}/100b`);
  assert.equal(small.status, 200);
  assert.equal(small.body.length, 100);
  const big = await httpGet(`http://${web.host}/1m`);
  assert.equal(big.body.length, NGINX_FILE_1M);
  assert.ok(big.body.equals(patternBytes(NGINX_FILE_1M)));
  const secure = await httpGet(`https://${web.host}/fail`);
  assert.equal(secure.status, 503);
  assert.equal(secure.headers['x-backend'], 'web25');

  await stopAndCheck(web, [80, 443]);
});

test('openssl s_server: TLS handshake with the self-signed mail.test cert', async (t) => {
  if (!requireRealServers(t, 'openssl')) return;
  const srv = await startSServer({ host: '127.0.0.26', port: 443 });
  cleanup(t, [srv]);
  log(`openssl s_server started in ${srv.startMs} ms`);

  const sock = tls.connect({ host: srv.host, port: 443, servername: 'mail.test', rejectUnauthorized: false });
  await new Promise<void>((res, rej) => {
    sock.once('secureConnect', res);
    sock.once('error', rej);
  });
  const peer = sock.getPeerCertificate();
  assert.equal(peer.subject.CN, 'mail.test');
  assert.match(peer.subjectaltname ?? '', /DNS:mail\.test, DNS:\*\.mail\.test/);
  assert.equal(tls.checkServerIdentity('imap.mail.test', peer), undefined);
  sock.write('GET / HTTP/1.0\r\n\r\n');
  const body = await new Promise<string>((res) => {
    let s = '';
    sock.on('data', (d: Buffer) => (s += d.toString()));
    sock.on('close', () => res(s));
  });
  assert.match(body, /^HTTP\/1\.0 200 ok/);

  await stopAndCheck(srv, [443]);
});
