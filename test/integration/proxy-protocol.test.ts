// PROXY protocol end to end: tcplb listeners with `proxyProtocol: "v1" | "v2"` in
// front of (a) a plain Node backend that parses the header itself, (b) a real dovecot
// with an `inet_listener { haproxy = yes }`, (c) a real postfix with
// `smtpd_upstream_proxy_protocol = haproxy`; and health probes against a backend
// that requires the header (`check.proxyProtocol`).
//
// Addresses used by THIS file (127.0.0.40 - 127.0.0.49 are reserved for it):
//   .40 tcplb listeners + the Node backend   .41 Node-test client
//   .42 dovecot (imap 143, PROXY imap 10143)  .43 IMAP client
//   .44 postfix 587 with PROXY protocol       .45 SMTP client
//   [::1] IPv6 client and listener
// The real servers start once for the file (on first use) and stop in after().
// Needs root and dovecot/postfix; without them those tests skip loudly, or fail
// when CI=true.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, test, type TestContext } from 'node:test';
import { requireRealServers } from '../fixtures/real/available.js';
import { startDovecot, type DovecotServer } from '../fixtures/real/dovecot.js';
import { startPostfix, type PostfixServer } from '../fixtures/real/postfix.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { reservePort, listen, waitFor } from '../helpers/net.js';

const LB = '127.0.0.40';
const NODE_CLIENT = '127.0.0.41';
const DOVECOT = '127.0.0.42';
const IMAP_CLIENT = '127.0.0.43';
const POSTFIX = '127.0.0.44';
const SMTP_CLIENT = '127.0.0.45';
const DOVECOT_PROXY_PORT = 10143;
const POSTFIX_PORT = 587;

const log = (msg: string) => console.log(msg);

// ---------------------------------------------------------------------------
// a PROXY header reader written from HAProxy's proxy-protocol.txt

interface Header {
  version: 1 | 2;
  /** v1: TCP4 / TCP6 / UNKNOWN; v2: PROXY / LOCAL */
  command: string;
  /** v2 family byte (0x11 TCP4, 0x21 TCP6, 0x00 UNSPEC); v1: 0 */
  fam: number;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** header length in bytes */
  length: number;
}

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** Parse the header at the start of `b`; undefined while incomplete. */
function readHeader(b: Buffer): Header | undefined {
  if (b.length >= 12 && b.subarray(0, 12).equals(SIG)) {
    if (b.length < 16) return undefined;
    const len = b.readUInt16BE(14);
    if (b.length < 16 + len) return undefined;
    assert.equal(b[12]! >> 4, 2, 'v2 version nibble');
    const cmd = b[12]! & 0x0f;
    const fam = b[13]!;
    const h: Header = { version: 2, command: cmd === 1 ? 'PROXY' : cmd === 0 ? 'LOCAL' : `cmd${cmd}`, fam, length: 16 + len };
    if (fam === 0x11) {
      h.src = [...b.subarray(16, 20)].join('.');
      h.dst = [...b.subarray(20, 24)].join('.');
      h.sport = b.readUInt16BE(24);
      h.dport = b.readUInt16BE(26);
    } else if (fam === 0x21) {
      const v6 = (x: Buffer) => Array.from({ length: 8 }, (_, i) => x.readUInt16BE(i * 2).toString(16)).join(':');
      h.src = v6(b.subarray(16, 32));
      h.dst = v6(b.subarray(32, 48));
      h.sport = b.readUInt16BE(48);
      h.dport = b.readUInt16BE(50);
    }
    return h;
  }
  const end = b.indexOf('\r\n');
  if (end < 0) {
    assert.ok(b.length < 107, `no CRLF in the first ${b.length} bytes: ${JSON.stringify(b.subarray(0, 120).toString('latin1'))}`);
    return undefined;
  }
  const parts = b.subarray(0, end).toString('latin1').split(' ');
  assert.equal(parts[0], 'PROXY', `v1 header expected, got ${JSON.stringify(b.subarray(0, end).toString('latin1'))}`);
  if (parts[1] === 'UNKNOWN') return { version: 1, command: 'UNKNOWN', fam: 0, length: end + 2 };
  assert.equal(parts.length, 6);
  return { version: 1, command: parts[1]!, fam: 0, src: parts[2]!, dst: parts[3]!, sport: Number(parts[4]), dport: Number(parts[5]), length: end + 2 };
}

/** Full 8-group lower-case spelling of an IPv6 address (for comparing with the v2 reader). */
function fullV6(a: string): string {
  const [h, t] = a.split('::') as [string, string | undefined];
  const head = h ? h.split(':') : [];
  const tail = t ? t.split(':') : [];
  const groups = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

// ---------------------------------------------------------------------------
// a line client that can bind a local address

interface Conn {
  sock: net.Socket;
  localPort: number;
  /** everything read so far once `re` matches the unread part */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  write(s: string | Buffer): void;
  /** resolves when the peer closed; with what arrived unread */
  closed(timeoutMs?: number): Promise<string>;
  close(): void;
}

function dial(host: string, port: number, localAddress?: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress });
    let buf = '';
    let consumed = 0;
    let isClosed = false;
    const waiters = new Set<() => void>();
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (const w of [...waiters]) w();
    });
    sock.on('close', () => {
      isClosed = true;
      for (const w of [...waiters]) w();
    });
    sock.on('error', () => {});
    sock.once('error', reject);
    sock.once('connect', () =>
      resolve({
        sock,
        localPort: sock.localPort!,
        write: (s) => void sock.write(s),
        close: () => sock.destroy(),
        waitFor: (re, timeoutMs = 5000) =>
          new Promise<string>((res, rej) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`timeout waiting for ${re}; unread: ${JSON.stringify(buf.slice(consumed))}`));
            }, timeoutMs);
            function check(): void {
              const rest = buf.slice(consumed);
              if (re.test(rest)) {
                clearTimeout(timer);
                waiters.delete(check);
                consumed = buf.length;
                res(rest);
              } else if (isClosed) {
                clearTimeout(timer);
                waiters.delete(check);
                rej(new Error(`closed while waiting for ${re}; unread: ${JSON.stringify(rest)}`));
              }
            }
            waiters.add(check);
            check();
          }),
        closed: (timeoutMs = 5000) =>
          new Promise<string>((res, rej) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`still open after ${timeoutMs} ms; unread: ${JSON.stringify(buf.slice(consumed))}`));
            }, timeoutMs);
            function check(): void {
              if (!isClosed) return;
              clearTimeout(timer);
              waiters.delete(check);
              res(buf.slice(consumed));
            }
            waiters.add(check);
            check();
          }),
      }),
    );
  });
}

// ---------------------------------------------------------------------------
// real servers: started once for the file, on first use

let dovecotP: Promise<DovecotServer> | undefined;
let postfixP: Promise<PostfixServer> | undefined;
const apps: TestApp[] = [];

after(async () => {
  for (const a of apps) a.stopNow();
  await Promise.allSettled([dovecotP?.then((d) => d.stop()), postfixP?.then((p) => p.stop())]);
});

/** The shared dovecot, or undefined when the test was skipped (never under CI=true). */
async function dovecot(t: TestContext): Promise<DovecotServer | undefined> {
  if (!requireRealServers(t, 'dovecot')) return undefined;
  dovecotP ??= startDovecot({
    host: DOVECOT,
    imapPort: 143,
    imapsPort: 0,
    pop3Port: 0,
    proxyPort: DOVECOT_PROXY_PORT,
    greeting: 'dovecot42 ready',
    // the default elements plus the ports, so a line can be tied to one connection
    extraConfig:
      'login_log_format_elements = user=<%u> method=%m rip=%r rport=%{rport} lip=%l lport=%{lport} mpid=%e %c session=<%{session}>\n',
  });
  const d = await dovecotP;
  log(`dovecot on ${d.host} started in ${d.startMs} ms (pid ${d.pid})`);
  return d;
}

async function postfix(t: TestContext): Promise<PostfixServer | undefined> {
  if (!requireRealServers(t, 'postfix')) return undefined;
  postfixP ??= startPostfix({
    host: POSTFIX,
    port: POSTFIX_PORT,
    proxyProtocol: true,
    // log the client port too, so a line can be tied to one connection
    extraMainCf: 'smtpd_client_port_logging = yes\n',
  });
  const p = await postfixP;
  log(`postfix on ${p.host} started in ${p.startMs} ms (pid ${p.pid})`);
  return p;
}

async function app(text: string): Promise<TestApp> {
  const a = await startTestApp(text);
  apps.push(a);
  return a;
}

const readLog = (path: string) => readFileSync(path, 'latin1');
/** Current size of a log, for reading only what comes after. */
const logMark = (path: string) => readLog(path).length;

/** Lines of `path` (from byte `since` on) matching `re`, once there is at least one
 * (logs are written asynchronously). */
async function logLines(path: string, re: RegExp, since = 0, timeoutMs = 5000): Promise<string[]> {
  let found: string[] = [];
  await waitFor(
    () => (found = readLog(path).slice(since).split('\n').filter((l) => re.test(l))).length > 0,
    { timeoutMs: timeoutMs, what: `a line matching ${re} in ${path}` },
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n--- tail of ${path}:\n${readLog(path).split('\n').slice(-15).join('\n')}`);
  });
  return found;
}

// ---------------------------------------------------------------------------
// 2. a plain Node backend that parses the header

test('plain Node backend: v1 and v2 headers carry the real client (127.0.0.41) and the listener, then the client bytes unchanged', async (t) => {
  const conns: { data: Buffer }[] = [];
  const backend = await listen((s) => {
    const c = { data: Buffer.alloc(0) };
    conns.push(c);
    s.on('data', (d: Buffer) => (c.data = Buffer.concat([c.data, d])));
    s.write('backend hello\r\n');
  }, LB);
  t.after(() => backend.close());
  const [p1, p2, p6, p61] = [await reservePort(LB), await reservePort(LB), await reservePort('::1'), await reservePort('::1')];
  const lb = await app(`{
    listeners: [
      { name: "v1", listen: "${LB}:${p1}", upstream: "node", proxyProtocol: "v1" },
      { name: "v2", listen: "${LB}:${p2}", upstream: "node", proxyProtocol: "v2" },
      { name: "v2-ipv6", listen: "[::1]:${p6}", upstream: "node", proxyProtocol: "v2" },
      { name: "v1-ipv6", listen: "[::1]:${p61}", upstream: "node", proxyProtocol: "v1" },
    ],
    upstreams: { node: { servers: ["${LB}:${backend.port}"] } },
  }`);

  // the client's bytes: sent before the backend connection exists, binary, and
  // including a forged PROXY line that must reach the backend as mere data
  const payload = Buffer.concat([
    Buffer.from('PROXY TCP4 6.6.6.6 7.7.7.7 1 2\r\n', 'latin1'),
    SIG,
    Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a]),
    Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) & 0xff)),
  ]);

  const cases = [
    { name: 'v1', host: LB, port: p1, from: NODE_CLIENT, expect: { version: 1, command: 'TCP4', fam: 0 } },
    { name: 'v2', host: LB, port: p2, from: NODE_CLIENT, expect: { version: 2, command: 'PROXY', fam: 0x11 } },
    { name: 'v2-ipv6', host: '::1', port: p6, from: '::1', expect: { version: 2, command: 'PROXY', fam: 0x21 } },
    { name: 'v1-ipv6', host: '::1', port: p61, from: '::1', expect: { version: 1, command: 'TCP6', fam: 0 } },
  ] as const;
  for (const c of cases) {
    const before = conns.length;
    const client = await dial(c.host, c.port, c.from);
    client.write(payload); // at once, before any greeting
    // nothing tcplb adds comes back to the client
    assert.equal(await client.waitFor(/\r\n/), 'backend hello\r\n', c.name);
    const complete = () => {
      const d = conns[before]?.data;
      const hh = d && readHeader(d);
      return hh !== undefined && d!.length - hh.length >= payload.length;
    };
    await waitFor(complete, { timeoutMs: 5000, what: `${c.name}: header and payload at the backend` });
    const got = conns[before]!.data;
    const h = readHeader(got);
    assert.ok(h, `${c.name}: a complete header`);
    assert.equal(h.version, c.expect.version, c.name);
    assert.equal(h.command, c.expect.command, c.name);
    assert.equal(h.fam, c.expect.fam, c.name);
    // v1 carries the address text as is; the v2 reader spells IPv6 in full
    const spell = (a: string) => (c.expect.fam === 0x21 ? fullV6(a) : a);
    assert.equal(h.src, spell(c.from), `${c.name}: src is the real client`);
    assert.equal(h.sport, client.localPort, `${c.name}: sport is the client's port`);
    assert.equal(h.dst, spell(c.host), `${c.name}: dst is the listener's address`);
    assert.equal(h.dport, c.port, `${c.name}: dport is the listener's port`);
    assert.ok(got.subarray(h.length).equals(payload), `${c.name}: the client's bytes follow the header unchanged (${got.length - h.length} of ${payload.length} bytes)`);
    log(`${c.name}: backend saw ${JSON.stringify(got.subarray(0, h.length).toString(h.version === 1 ? 'latin1' : 'hex'))}`);
    client.close();
  }
  await waitFor(() => lb.records.length, { until: (n) => n === cases.length, timeoutMs: 3000, what: 'session records' });
});

test('plain Node backend: a dual-stack style listener ([::ffff:127.0.0.40]) reports its v4-mapped client as TCP4', async (t) => {
  const conns: Buffer[] = [];
  const backend = await listen((s) => {
    const i = conns.push(Buffer.alloc(0)) - 1;
    s.on('data', (d: Buffer) => (conns[i] = Buffer.concat([conns[i]!, d])));
  }, LB);
  t.after(() => backend.close());
  const port = await reservePort(LB);
  await app(`{
    listeners: [
      { name: "m1", listen: "[::ffff:${LB}]:${port}", upstream: "node", proxyProtocol: "v1" },
    ],
    upstreams: { node: { servers: ["${LB}:${backend.port}"] } },
  }`);
  const client = await dial(LB, port, NODE_CLIENT);
  client.write('hi\n');
  await waitFor(() => conns.length === 1 && conns[0]!.includes('hi\n'), { timeoutMs: 3000, what: 'data at the backend' });
  assert.equal(conns[0]!.toString('latin1'), `PROXY TCP4 ${NODE_CLIENT} ${LB} ${client.localPort} ${port}\r\nhi\n`);
  client.close();
});

// ---------------------------------------------------------------------------
// 3. real dovecot behind tcplb

/** LOGIN + LOGOUT as `test`; returns the client's local port. */
async function imapLogin(port: number, from: string): Promise<number> {
  const c = await dial(LB, port, from);
  try {
    assert.match(await c.waitFor(/\r\n/), /^\* OK .*dovecot42 ready/);
    c.write('a1 LOGIN test test\r\n');
    assert.match(await c.waitFor(/^a1 .*\r\n/m), /^a1 OK/m);
    c.write('a2 LOGOUT\r\n');
    await c.waitFor(/^a2 OK.*\r\n/m);
    return c.localPort;
  } finally {
    c.close();
  }
}

test('dovecot (haproxy = yes) behind tcplb: v2 and v1 log the real client rip=127.0.0.43; no header = dropped', async (t) => {
  const d = await dovecot(t);
  if (!d) return;
  const [pv2, pv1, pNone, pPlain] = [await reservePort(LB), await reservePort(LB), await reservePort(LB), await reservePort(LB)];
  const lb = await app(`{
    listeners: [
      { name: "imap-v2", listen: "${LB}:${pv2}", upstream: "haproxy", proxyProtocol: "v2" },
      { name: "imap-v1", listen: "${LB}:${pv1}", upstream: "haproxy", proxyProtocol: "v1" },
      { name: "imap-none", listen: "${LB}:${pNone}", upstream: "haproxy" },
      { name: "imap-plain", listen: "${LB}:${pPlain}", upstream: "plain" },
    ],
    upstreams: {
      haproxy: { servers: ["${DOVECOT}:${DOVECOT_PROXY_PORT}"] },
      plain: { servers: ["${DOVECOT}:143"] },
    },
  }`);

  const mark = logMark(d.logPath);
  for (const [name, port] of [['v2', pv2], ['v1', pv1]] as const) {
    const cport = await imapLogin(port, IMAP_CLIENT);
    const lines = await logLines(d.logPath, new RegExp(`imap-login: (Info: )?Login: user=<test>.*rip=127\\.0\\.0\\.43, rport=${cport}\\b`), mark);
    assert.equal(lines.length, 1, `${name}: one Login line for client port ${cport}`);
    // lip/lport come from the header's destination: the tcplb listener
    assert.match(lines[0]!, new RegExp(`lip=127\\.0\\.0\\.40, lport=${port}\\b`), name);
    log(`dovecot via tcplb ${name}: ${lines[0]}`);
  }

  // control: without PROXY protocol (plain port) dovecot only sees tcplb's own address
  const cport = await imapLogin(pPlain, IMAP_CLIENT);
  const plain = await logLines(d.logPath, new RegExp(`imap-login: (Info: )?Login: user=<test>.*rport=\\d+, lip=127\\.0\\.0\\.42, lport=143\\b`), mark);
  assert.equal(plain.length, 1);
  assert.match(plain[0]!, /rip=127\.0\.0\.1,/);
  assert.doesNotMatch(plain[0]!, /rip=127\.0\.0\.43/);
  assert.doesNotMatch(plain[0]!, new RegExp(`rport=${cport}\\b`));
  log(`dovecot via tcplb without PROXY (plain port): ${plain[0]}`);

  // mismatch: tcplb sends no header to the haproxy port
  //  - a client that talks first: its bytes are taken for a (bad) header, dropped at once
  const eager = await dial(LB, pNone, IMAP_CLIENT);
  eager.write('a1 LOGIN test test\r\n');
  const eagerGot = await eager.closed(2000);
  assert.doesNotMatch(eagerGot, /\* OK|a1 OK/, 'no greeting, no login without the header');
  //  - a normal IMAP client waits for the greeting, which never comes; dovecot gives up
  //    after haproxy_timeout (3 s by default) and closes
  const polite = await dial(LB, pNone, IMAP_CLIENT);
  const t0 = Date.now();
  assert.equal(await polite.closed(6000), '', 'no greeting at all');
  const waited = Date.now() - t0;
  assert.ok(waited >= 2500, `dovecot closed after ${waited} ms (haproxy_timeout is 3 s)`);
  const haproxyErrors = () => readLog(d.logPath).slice(mark).split('\n').filter((l) => /imap-login: Error: haproxy: /.test(l));
  await waitFor(() => haproxyErrors().length, { until: (n) => n >= 2, timeoutMs: 3000, what: 'both dropped connections logged' });
  const errors = haproxyErrors();
  log(`dovecot without the header (closed after ${waited} ms):\n  ${errors.join('\n  ')}`);
  assert.match(errors.join('\n'), /Failed to read valid HAproxy data/);
  assert.match(errors.join('\n'), /Client timed out/);
  assert.equal(readLog(d.logPath).slice(mark).split('\n').filter((l) => /Login: user=<test>/.test(l)).length, 3, 'no extra logins');
  await waitFor(() => lb.records.length, { until: (n) => n === 5, timeoutMs: 3000, what: 'session records' });
});

// ---------------------------------------------------------------------------
// 4. real postfix behind tcplb

async function smtpSend(port: number, from: string): Promise<{ localPort: number; queueId: string }> {
  const c = await dial(LB, port, from);
  try {
    assert.match(await c.waitFor(/\r\n/), /^220 mail\.test ESMTP/);
    c.write('EHLO client.example.test\r\n');
    assert.match(await c.waitFor(/^250 .*\r\n/m), /^250-mail\.test/);
    c.write('MAIL FROM:<a@example.test>\r\n');
    assert.match(await c.waitFor(/\r\n/), /^250 /);
    c.write('RCPT TO:<b@example.test>\r\n');
    assert.match(await c.waitFor(/\r\n/), /^250 /);
    c.write('DATA\r\n');
    assert.match(await c.waitFor(/\r\n/), /^354 /);
    c.write('From: a@example.test\r\nTo: b@example.test\r\nSubject: via tcplb\r\n\r\nhello through a PROXY header\r\n.\r\n');
    const queued = await c.waitFor(/\r\n/);
    const m = /^250 2\.0\.0 Ok: queued as (\w+)/.exec(queued);
    assert.ok(m, `queued: ${queued}`);
    c.write('QUIT\r\n');
    assert.match(await c.waitFor(/\r\n/), /^221 /);
    return { localPort: c.localPort, queueId: m[1]! };
  } finally {
    c.close();
  }
}

test('postfix (smtpd_upstream_proxy_protocol = haproxy) behind tcplb: v1 and v2 mail is queued, log shows [127.0.0.45]', async (t) => {
  const p = await postfix(t);
  if (!p) return;
  const [pv1, pv2, pNone] = [await reservePort(LB), await reservePort(LB), await reservePort(LB)];
  await app(`{
    listeners: [
      { name: "smtp-v1", listen: "${LB}:${pv1}", upstream: "smtp", proxyProtocol: "v1" },
      { name: "smtp-v2", listen: "${LB}:${pv2}", upstream: "smtp", proxyProtocol: "v2" },
      { name: "smtp-none", listen: "${LB}:${pNone}", upstream: "smtp" },
    ],
    upstreams: { smtp: { servers: ["${POSTFIX}:${POSTFIX_PORT}"] } },
  }`);
  const mark = logMark(p.logPath);
  for (const [name, port] of [['v1', pv1], ['v2', pv2]] as const) {
    const { localPort, queueId } = await smtpSend(port, SMTP_CLIENT);
    const connect = await logLines(p.logPath, new RegExp(`smtpd\\[\\d+\\]: connect from unknown\\[127\\.0\\.0\\.45\\]:${localPort}$`));
    assert.equal(connect.length, 1, name);
    const client = await logLines(p.logPath, new RegExp(`${queueId}: client=unknown\\[127\\.0\\.0\\.45\\]:${localPort}$`));
    assert.equal(client.length, 1, name);
    const sent = await logLines(p.logPath, new RegExp(`${queueId}: to=<b@example\\.test>.*status=sent`));
    log(`postfix via tcplb ${name}:\n  ${connect[0]}\n  ${client[0]}\n  ${sent[0]}`);
  }
  // mismatch: no header; the client's EHLO is taken for a bad header
  const c = await dial(LB, pNone, SMTP_CLIENT);
  c.write('EHLO client.example.test\r\n');
  const got = await c.closed(3000);
  assert.doesNotMatch(got, /^220 /, 'no greeting without the header');
  const errs = await logLines(p.logPath, /smtpd\[\d+\]: .*haproxy/i, mark);
  log(`postfix without the header:\n  ${errs.join('\n  ')}`);
});

// ---------------------------------------------------------------------------
// 5. health probes against a backend that requires the header

test('health probes: check.proxyProtocol v1 and v2 (naming the probe connection) pass against dovecot and postfix; without it the probe fails', async (t) => {
  const d = await dovecot(t);
  if (!d) return;
  const p = await postfix(t);
  if (!p) return;
  const ports = [await reservePort(LB), await reservePort(LB), await reservePort(LB), await reservePort(LB), await reservePort(LB), await reservePort(LB)];
  const check = (type: string, pp: string) => `{ type: "${type}", interval: "300ms", timeout: "1s", rise: 1, fall: 1${pp ? `, proxyProtocol: "${pp}"` : ''} }`;
  const dv = `${DOVECOT}:${DOVECOT_PROXY_PORT}`;
  const pf = `${POSTFIX}:${POSTFIX_PORT}`;
  const lb = await app(`{
    listeners: [
      { listen: "${LB}:${ports[0]}", upstream: "imapV2", proxyProtocol: "v2" },
      { listen: "${LB}:${ports[1]}", upstream: "imapV1", proxyProtocol: "v1" },
      { listen: "${LB}:${ports[2]}", upstream: "imapNone", proxyProtocol: "v2" },
      { listen: "${LB}:${ports[3]}", upstream: "smtpV2", proxyProtocol: "v2" },
      { listen: "${LB}:${ports[4]}", upstream: "smtpV1", proxyProtocol: "v1" },
      { listen: "${LB}:${ports[5]}", upstream: "smtpNone", proxyProtocol: "v1" },
    ],
    upstreams: {
      imapV2: { check: ${check('imap', 'v2')}, servers: ["${dv}"] },
      imapV1: { check: ${check('imap', 'v1')}, servers: ["${dv}"] },
      imapNone: { check: ${check('imap', '')}, servers: ["${dv}"] },
      smtpV2: { check: ${check('smtp', 'v2')}, servers: ["${pf}"] },
      smtpV1: { check: ${check('smtp', 'v1')}, servers: ["${pf}"] },
      smtpNone: { check: ${check('smtp', '')}, servers: ["${pf}"] },
    },
  }`);
  const marks = { d: logMark(d.logPath), p: logMark(p.logPath) };
  const ids = { imapV2: `imapV2/${dv}`, imapV1: `imapV1/${dv}`, imapNone: `imapNone/${dv}`, smtpV2: `smtpV2/${pf}`, smtpV1: `smtpV1/${pf}`, smtpNone: `smtpNone/${pf}` };
  const b = (id: string) => lb.runtime.backend(id)!;
  await waitFor(() => Object.values(ids).every((id) => b(id).lastProbe !== undefined && b(id).op !== 'unknown'), { timeoutMs: 5000, what: 'first probes' });
  for (const [k, id] of Object.entries(ids)) {
    const x = b(id);
    log(`probe ${k}: op=${x.op} status=${x.lastProbe!.status} detail=${x.lastProbe!.detail} (${x.opReason})`);
  }
  // The probe's header names its own connection, as HAProxy's check-send-proxy
  // does; postfix 3.7 would refuse v1's `PROXY UNKNOWN` with a 421.
  for (const k of ['imapV2', 'imapV1', 'smtpV2', 'smtpV1'] as const) {
    assert.equal(b(ids[k]).op, 'up', `${k}: ${b(ids[k]).opReason}`);
    assert.equal(b(ids[k]).lastProbe!.status, 'L7_OK', k);
  }
  assert.match(b(ids.imapV2).lastProbe!.detail, /\* OK /);
  assert.match(b(ids.smtpV2).lastProbe!.detail, /^"220 mail\.test ESMTP/);
  // no header: the server waits for one (dovecot haproxy_timeout 3 s, postfix
  // smtpd_upstream_proxy_timeout 5 s) and the probe times out waiting for the greeting
  for (const k of ['imapNone', 'smtpNone'] as const) {
    assert.equal(b(ids[k]).op, 'down', `${k}: ${b(ids[k]).opReason}`);
    assert.equal(b(ids[k]).lastProbe!.status, 'L7_TIMEOUT', k);
    assert.match(b(ids[k]).lastProbe!.detail, /timeout after 1000 ms waiting for greeting/, k);
  }
  assert.doesNotMatch(fs.readFileSync(p.logPath, 'utf8'), /haproxy read: .*PROXY UNKNOWN/, 'no UNKNOWN header may reach postfix');
  log(`dovecot on the header-less probe: ${(await logLines(d.logPath, /haproxy/, marks.d))[0]}`);
  // traffic follows the verdicts: the header-less check took its backend out
  const c = await dial(LB, ports[2]!, IMAP_CLIENT);
  await c.closed(3000);
  const ok = await dial(LB, ports[0]!, IMAP_CLIENT);
  assert.match(await ok.waitFor(/\r\n/), /^\* OK .*dovecot42 ready/);
  ok.close();
});
