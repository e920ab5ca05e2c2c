/**
 * STARTTLS at the balancer (`listeners[].starttls`, docs/tls.md) against a
 * small fake mail server (test/fixtures/servers/starttls.ts), on the engine
 * TCPLB_ENGINE names: the upgrade with the balancer's certificate and TLS on
 * the backend leg, pipelined bytes after the upgrade discarded both ways
 * (the CVE-2011-0411 class), a backend refusal answered with the protocol's
 * temporary failure and counted against the backend, requireTls, an
 * over-long line, a client stalling in the upgrade, and a client that never
 * upgrades.
 *
 * Addresses: 127.0.0.1 only (ports from reservePort).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import type { StarttlsProtocol } from '../../src/core/config.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { startFakeStarttls, type FakeStarttls } from '../fixtures/servers/starttls.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { connect, reservePort } from '../helpers/net.js';
import { sleep, waitFor } from '../helpers/wait.js';

let pkiCache: Pki | undefined;
const pki = (): Pki => (pkiCache ??= makePki());

/** Lines from a socket that may turn TLS half-way. */
class Conn {
  #buf = '';
  #closed = false;
  #wake: (() => void) | undefined;
  sock: net.Socket;
  constructor(sock: net.Socket) {
    this.sock = sock;
    this.#attach(sock);
  }
  #attach(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#wake?.();
    });
    s.on('error', () => {});
    // Test sockets allow half-open: the balancer's FIN is the end of the session for the client.
    for (const ev of ['end', 'close']) {
      s.on(ev, () => {
        this.#closed = true;
        this.#wake?.();
      });
    }
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Everything received and not yet read as a line. */
  get pending(): string {
    return this.#buf;
  }
  async line(timeoutMs = 3000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#buf.indexOf('\n');
      if (i >= 0) {
        const l = this.#buf.slice(0, i).replace(/\r$/, '');
        this.#buf = this.#buf.slice(i + 1);
        return l;
      }
      if (this.#closed) throw new Error(`closed before a line (got ${JSON.stringify(this.#buf)})`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms (got ${JSON.stringify(this.#buf)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }
  /** Lines until one matching `re` (that one included). */
  async until(re: RegExp): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line();
      out.push(l);
      if (re.test(l)) return out;
    }
  }
  write(s: string): void {
    this.sock.write(s);
  }
  /** TLS on this connection, verifying the balancer's certificate for mail.a.test. */
  async upgrade(): Promise<tls.TLSSocket> {
    assert.equal(this.#buf, '', 'nothing may follow the upgrade answer in clear');
    this.sock.removeAllListeners('data');
    const t = tls.connect({ socket: this.sock, servername: 'mail.a.test', ca: fs.readFileSync(pki().caFile) });
    await new Promise<void>((r, j) => t.once('secureConnect', r).once('error', j));
    this.sock = t;
    this.#attach(t);
    return t;
  }
}

const UPGRADE: Record<StarttlsProtocol, string> = { imap: 'a STARTTLS', pop3: 'STLS', smtp: 'STARTTLS' };
const OK: Record<StarttlsProtocol, RegExp> = { imap: /^a OK /, pop3: /^\+OK /, smtp: /^220 / };

interface Rig {
  app: TestApp;
  backend: FakeStarttls;
  port: number;
  open(): Promise<Conn>;
}

async function rig(t: { after: (fn: () => unknown) => void }, protocol: StarttlsProtocol, extra = '', mode: 'ok' | 'refuse' | 'inject' | 'slow' = 'ok', backendCa?: string): Promise<Rig> {
  const leaf = pki().leaf('mail-a', ['mail.a.test']);
  const bleaf = pki().leaf('backend', ['backend.test']);
  const backend = await startFakeStarttls({ protocol, cert: fs.readFileSync(bleaf.cert, 'utf8'), key: fs.readFileSync(bleaf.key, 'utf8'), mode });
  t.after(() => backend.close());
  const port = await reservePort('127.0.0.1');
  const app = await startTestApp(`{
    listeners: [{ name: "mail", listen: "127.0.0.1:${port}", upstream: "mail", starttls: "${protocol}", ${extra}
                  tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }], handshakeTimeout: "1s" } }],
    upstreams: { mail: { servers: [{ address: "127.0.0.1:${backend.port}", maxFails: 1, failTimeout: "30s" }],
                         tls: { ca: "${backendCa ?? pki().caFile}", servername: "backend.test" } } },
  }`);
  t.after(() => app.stopNow());
  return {
    app, backend, port,
    open: async () => {
      const c = new Conn(await connect(port));
      t.after(() => c.sock.destroy());
      return c;
    },
  };
}

/** Greeting (and EHLO for SMTP) in clear. */
async function hello(c: Conn, p: StarttlsProtocol): Promise<void> {
  await c.line();
  if (p === 'smtp') {
    c.write('EHLO client.test\r\n');
    const ehlo = await c.until(/^250 /);
    assert.ok(ehlo.some((l) => /STARTTLS/.test(l)), ehlo.join('|'));
  }
}

for (const p of ['imap', 'pop3', 'smtp'] as const) {
  test(`${p}: the client upgrades with the balancer's certificate, the backend leg is TLS too, tls=client+backend`, { timeout: 20_000 }, async (t) => {
    const r = await rig(t, p);
    const c = await r.open();
    await hello(c, p);
    c.write(`${UPGRADE[p]}\r\n`);
    assert.match(await c.line(), OK[p]);
    const s = await c.upgrade();
    assert.deepEqual(s.getPeerCertificate().subjectaltname, 'DNS:mail.a.test');
    c.write(p === 'imap' ? 'b NOOP\r\n' : p === 'pop3' ? 'NOOP\r\n' : 'EHLO client.test\r\n');
    const answer = p === 'smtp' ? (await c.until(/^250 /)).join('|') : await c.line();
    assert.match(answer, /tls/, 'the backend read the command inside TLS');
    // The client's upgrade command itself never reached the backend: the balancer sent its own.
    if (p === 'imap') assert.ok(r.backend.seen.includes('tcplb.starttls STARTTLS') && !r.backend.seen.includes('a STARTTLS'), r.backend.seen.join('|'));
    // ctl status and the console list the open session with where TLS is terminated.
    assert.deepEqual(r.app.actions.snapshot().connections.list.map((x) => x.tls), ['client+backend']);
    c.sock.end();
    await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
    assert.equal(r.app.records[0]!.tls, 'client+backend');
    assert.equal(r.app.records[0]!.reason, 'closed');
  });

  test(`${p}: bytes pipelined after the upgrade command are never forwarded nor answered; backend bytes after its OK never reach the client`, { timeout: 20_000 }, async (t) => {
    const r = await rig(t, p, '', 'inject');
    const c = await r.open();
    await hello(c, p);
    const injected = p === 'imap' ? 'b CAPABILITY' : p === 'pop3' ? 'CAPA' : 'MAIL FROM:<x@evil.test>';
    c.write(`${UPGRADE[p]}\r\n${injected}\r\n`);
    assert.match(await c.line(), OK[p]);
    await sleep(100); // anything the balancer would answer in clear has arrived by now
    await c.upgrade(); // asserts nothing else came in clear
    c.write(p === 'imap' ? 'c NOOP\r\n' : 'NOOP\r\n');
    const next = await c.line();
    assert.match(next, p === 'imap' ? /^c OK NOOP tls/ : p === 'pop3' ? /^\+OK NOOP tls/ : /^250 NOOP tls/, 'the first answer inside TLS is to the first command sent inside TLS');
    assert.ok(!r.backend.seen.some((l) => l.startsWith(injected)), `the backend never read the injected command: ${r.backend.seen.join('|')}`);
    assert.ok(!c.pending.includes('INJECTED'));
  });

  test(`${p}: a backend refusing STARTTLS: the client gets the protocol's temporary failure, the session ends, the backend is counted down`, { timeout: 20_000 }, async (t) => {
    const r = await rig(t, p, '', 'refuse');
    const c = await r.open();
    await hello(c, p);
    c.write(`${UPGRADE[p]}\r\n`);
    assert.match(await c.line(), p === 'imap' ? /^a NO \[UNAVAILABLE\]/ : p === 'pop3' ? /^-ERR / : /^454 4\.7\.0 /);
    await waitFor(() => c.closed, { what: 'the session closed' });
    await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
    assert.equal(r.app.records[0]!.reason, 'tls_failed');
    assert.match(r.app.records[0]!.detail, /backend refused STARTTLS/);
    await waitFor(() => r.app.lines.some((l) => /STARTTLS refused/.test(l)), { what: 'the passive failure logged' });
    // maxFails 1: the backend is out, the next client finds none.
    const c2 = await r.open();
    await waitFor(() => c2.closed, { what: 'the next client refused (no backend)' });
  });
}

test('imap: a backend certificate that does not verify: the client gets NO [UNAVAILABLE], L6_VERIFY counted against the backend', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, 'imap', '', 'ok', pki().otherCaFile);
  const c = await r.open();
  await hello(c, 'imap');
  c.write('a STARTTLS\r\n');
  assert.match(await c.line(), /^a NO \[UNAVAILABLE\]/);
  await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
  assert.match(r.app.records[0]!.detail, /backend TLS: L6_VERIFY/);
  assert.ok(r.app.lines.some((l) => /failed: STARTTLS: L6_VERIFY/.test(l)), r.app.lines.join('\n'));
});

test('a client that leaves while the balancer upgrades its backend leg is not counted against the backend', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, 'imap', '', 'slow');
  const c = await r.open();
  await hello(c, 'imap');
  c.write('a STARTTLS\r\n');
  // The backend said OK and takes 500 ms to start TLS: the client gives up meanwhile.
  await waitFor(() => r.backend.seen.includes('tcplb.starttls STARTTLS'), { what: 'the balancer\'s STARTTLS at the backend' });
  await sleep(100);
  c.sock.resetAndDestroy();
  await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
  assert.ok(!r.app.lines.some((l) => /failed: STARTTLS/.test(l)), r.app.lines.join('\n'));
  // maxFails 1: had it been counted, the next client would find no backend.
  const c2 = await r.open();
  assert.match(await c2.line(), /^\* OK /);
});

test('requireTls: credentials before TLS are refused by the balancer with each protocol\'s own error, never forwarded', { timeout: 20_000 }, async (t) => {
  const cases: Array<[StarttlsProtocol, string, RegExp]> = [
    ['imap', 'a LOGIN user pass', /^a NO \[PRIVACYREQUIRED\]/],
    ['pop3', 'USER user', /^-ERR /],
    ['smtp', 'AUTH PLAIN AHVzZXIAcGFzcw==', /^530 5\.7\.0 Must issue a STARTTLS command first/],
  ];
  for (const [p, cmd, re] of cases) {
    const r = await rig(t, p, 'requireTls: true,');
    const c = await r.open();
    await hello(c, p);
    c.write(`${cmd}\r\n`);
    assert.match(await c.line(), re);
    assert.ok(!r.backend.seen.includes(cmd), `${p}: ${r.backend.seen.join('|')}`);
    // The session goes on: the upgrade still works after a refusal.
    c.write(`${UPGRADE[p]}\r\n`);
    assert.match(await c.line(), OK[p]);
    await c.upgrade();
  }
});

test('a client that never upgrades passes through in clear (requireTls false): its LOGIN reaches the backend, tls=-', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, 'imap');
  const c = await r.open();
  await hello(c, 'imap');
  c.write('a LOGIN user pass\r\n');
  assert.match(await c.line(), /^a OK LOGIN plain/);
  c.write('b NOOP\r\n');
  assert.match(await c.line(), /^b OK NOOP plain/);
  c.sock.end();
  await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
  assert.equal(r.app.records[0]!.tls, undefined);
});

test('a line longer than 8 KiB before TLS ends the session with a log line', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, 'imap');
  const c = await r.open();
  await hello(c, 'imap');
  c.write(`a ${'x'.repeat(9000)}`);
  await waitFor(() => c.closed, { what: 'the session closed' });
  await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
  assert.equal(r.app.records[0]!.reason, 'error');
  assert.match(r.app.records[0]!.detail, /client line over 8192 bytes before TLS/);
  assert.ok(r.app.lines.some((l) => /listener mail: STARTTLS: client line over 8192 bytes before TLS, session closed/.test(l)), r.app.lines.join('\n'));
});

test('a client that stalls after the upgrade answer is closed after handshakeTimeout', { timeout: 20_000 }, async (t) => {
  const r = await rig(t, 'imap');
  const c = await r.open();
  await hello(c, 'imap');
  // Bounded from the upgrade command on (the backend's part of the upgrade included).
  const t0 = Date.now();
  c.write('a STARTTLS\r\n');
  assert.match(await c.line(), /^a OK /);
  await waitFor(() => c.closed, { what: 'the stalled client closed', timeoutMs: 5000 });
  const took = Date.now() - t0;
  assert.ok(took >= 950 && took < 3000, `closed ${took} ms after its STARTTLS (handshakeTimeout 1s)`);
  await waitFor(() => r.app.records.length === 1, { what: 'the session record' });
  assert.equal(r.app.records[0]!.reason, 'tls_failed');
  assert.equal(r.app.records[0]!.detail, 'handshake timeout');
});

test('implicit TLS listeners (issue 16) report where TLS is terminated the same way: client, client+backend, backend', { timeout: 20_000 }, async (t) => {
  const leaf = pki().leaf('mail-a', ['mail.a.test']);
  const bleaf = pki().leaf('backend', ['backend.test']);
  const echo = tls.createServer({ cert: fs.readFileSync(bleaf.cert), key: fs.readFileSync(bleaf.key) }, (s) => {
    s.on('error', () => {});
    s.write('hi\r\n');
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => echo.close());
  const plainEcho = await (await import('../helpers/net.js')).listen((s) => {
    s.write('hi\r\n');
    s.pipe(s);
  });
  t.after(() => plainEcho.close());
  const [a, b, c] = [await reservePort('127.0.0.1'), await reservePort('127.0.0.1'), await reservePort('127.0.0.1')];
  const certs = `tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }] }`;
  const app = await startTestApp(`{
    listeners: [
      { name: "both", listen: "127.0.0.1:${a}", upstream: "reenc", ${certs} },
      { name: "front", listen: "127.0.0.1:${b}", upstream: "plain", ${certs} },
      { name: "back", listen: "127.0.0.1:${c}", upstream: "reenc2" },
    ],
    upstreams: {
      reenc: { servers: ["127.0.0.1:${(echo.address() as net.AddressInfo).port}"], tls: { ca: "${pki().caFile}", servername: "backend.test" } },
      reenc2: { servers: ["127.0.0.1:${(echo.address() as net.AddressInfo).port}"], tls: { ca: "${pki().caFile}", servername: "backend.test" } },
      plain: { servers: ["127.0.0.1:${plainEcho.port}"] },
    },
  }`);
  t.after(() => app.stopNow());
  for (const [port, secure, want] of [[a, true, 'client+backend'], [b, true, 'client'], [c, false, 'backend']] as const) {
    const raw = await connect(port);
    const conn = new Conn(secure ? tls.connect({ socket: raw, servername: 'mail.a.test', ca: fs.readFileSync(pki().caFile) }) : raw);
    assert.equal(await conn.line(), 'hi');
    assert.deepEqual(app.actions.snapshot().connections.list.map((x) => x.tls), [want]);
    conn.sock.destroy();
    await waitFor(() => app.records.length > 0 && app.records.at(-1)!.listener === (port === a ? 'both' : port === b ? 'front' : 'back'), { what: 'the record' });
    assert.equal(app.records.at(-1)!.tls, want);
  }
});

test('workers: 2: STARTTLS runs in the worker processes; the primary lists the session with tls=client+backend and logs it', { timeout: 30_000 }, async (t) => {
  const leaf = pki().leaf('mail-a', ['mail.a.test']);
  const bleaf = pki().leaf('backend', ['backend.test']);
  const backend = await startFakeStarttls({ protocol: 'imap', cert: fs.readFileSync(bleaf.cert, 'utf8'), key: fs.readFileSync(bleaf.key, 'utf8') });
  t.after(() => backend.close());
  const port = await reservePort('127.0.0.1');
  // `workers` is a setting of the JavaScript engine: run it in every pass, the native one's too.
  const forced = process.env.TCPLB_ENGINE;
  process.env.TCPLB_ENGINE = 'js';
  t.after(() => (forced === undefined ? delete process.env.TCPLB_ENGINE : (process.env.TCPLB_ENGINE = forced)));
  const app = await startTestApp(`{
    workers: 2, engine: "js",
    listeners: [{ name: "mail", listen: "127.0.0.1:${port}", upstream: "mail", starttls: "imap",
                  tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }] } }],
    upstreams: { mail: { servers: ["127.0.0.1:${backend.port}"], tls: { ca: "${pki().caFile}", servername: "backend.test" } } },
  }`);
  t.after(() => app.stopNow());
  assert.equal(app.engine.name, 'js x2 workers');
  const c = new Conn(await connect(port));
  t.after(() => c.sock.destroy());
  await hello(c, 'imap');
  c.write('a STARTTLS\r\n');
  assert.match(await c.line(), /^a OK /);
  await c.upgrade();
  c.write('b NOOP\r\n');
  assert.match(await c.line(), /^b OK NOOP tls/);
  // Mirrored to the primary after a flush (its byte counts and tls travel together).
  await waitFor(() => app.actions.snapshot().connections.list.map((x) => x.tls).join(), { until: (v) => v === 'client+backend', what: 'the live session with tls in the primary', timeoutMs: 5000 });
  c.sock.end();
  await waitFor(() => app.records.length === 1, { what: 'the record in the primary', timeoutMs: 5000 });
  assert.equal(app.records[0]!.tls, 'client+backend');
});
