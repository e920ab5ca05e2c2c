/**
 * TLS termination on the engine TCPLB_ENGINE names, with what the native
 * engine adds (issue 16 item 5): under `native` the addon's relay threads
 * terminate TLS themselves (`ctl certs` says so; the addon holds the
 * session) while a listener with upstream `tls` stays in the embedded JS
 * engine; on both engines: ALPN chosen by the server's list and a failed
 * handshake when nothing is in common, resumption (openssl s_client
 * -sess_out/-sess_in reports "Reused"), the PROXY v2 header with the TLS
 * fields byte for byte as the JS path builds it (and no ALPN a mail backend
 * would reject), a bulk transfer with half-close, failed handshakes
 * logged with the same words on both engines, and a listener the native
 * routing fast path serves (the relay thread dials after the handshake)
 * reporting exactly as one JS routes (an `allow` list keeps it on the slow path).
 *
 * Addresses: 127.0.0.1 only (ports from reservePort).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { buildProxyHeader } from '../../src/core/proxy-header.js';
import { formatCerts } from '../../src/runtime/cert-status.js';
import type { NativeEngine } from '../../src/proxy/native-engine.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { connect, listen, reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

let pkiCache: Pki | undefined;
const pki = (): Pki => (pkiCache ??= makePki());
const ca = (): Buffer => fs.readFileSync(pki().caFile);

async function start(t: { after(fn: () => unknown): void }, tlsText: string, serve: (s: net.Socket) => void, extra = ''): Promise<{ app: TestApp; port: number }> {
  const backend = await listen(serve);
  t.after(() => backend.close());
  const port = await reservePort();
  const app = await startTestApp(`{
  listeners: [{ name: "imaps", listen: "127.0.0.1:${port}", upstream: "mail", tls: ${tlsText} ${extra} }],
  upstreams: { mail: { servers: ["127.0.0.1:${backend.port}"] } },
  log: { access: null },
}`);
  t.after(() => app.stopNow());
  return { app, port };
}

/** A handshake and the first line from the backend; resolves with the socket still open. */
function session(port: number, opts: tls.ConnectionOptions = {}): Promise<{ sock: tls.TLSSocket; line: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca(), servername: 'mail.a.test', ...opts });
    let buf = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ sock: s, line: buf.slice(0, nl) });
    });
  });
}

function sClient(port: number, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki().caFile, '-servername', 'mail.a.test', '-ign_eof', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => c.kill(), 10_000);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    c.stdin.end();
  });
}

const greetAndClose = (s: net.Socket): void => void s.end('backend\n');

test('the native engine terminates TLS in its relay threads (ctl certs says where); a listener with upstream tls stays in the JS engine', async (t) => {
  const a = pki().leaf('where-a', ['mail.a.test']);
  const backend = await listen((s) => s.pipe(s));
  t.after(() => backend.close());
  const [p1, p2] = [await reservePort(), await reservePort()];
  const certs = `tls: { certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`;
  const app = await startTestApp(`{
  listeners: [
    { name: "front", listen: "127.0.0.1:${p1}", upstream: "plain", ${certs} },
    { name: "reenc", listen: "127.0.0.1:${p2}", upstream: "secure", ${certs} },
  ],
  upstreams: {
    plain: { servers: ["127.0.0.1:${backend.port}"] },
    secure: { servers: ["127.0.0.1:${backend.port}"], tls: { ca: "${pki().caFile}", verify: false } },
  },
  log: { access: null },
}`);
  t.after(() => app.stopNow());
  const report = app.actions.certs!();
  const text = formatCerts(report).join('\n');
  const s = tls.connect({ host: '127.0.0.1', port: p1, ca: ca(), servername: 'mail.a.test' });
  await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
  const echoed = new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
  s.write('ping\n');
  assert.equal(await echoed, 'ping\n');
  if (app.engineChoice.kind === 'native') {
    assert.match(text, /^front 127\.0\.0\.1:\d+ · last reload .*\n {2}TLS in the native relay threads$/m, text);
    assert.match(text, /^reenc 127\.0\.0\.1:\d+ · last reload .*\n {2}TLS in the JavaScript engine$/m, text);
    // The open TLS session is the addon's own connection, not the embedded JS engine's.
    const counts = (app.engine as NativeEngine).nativeCounts();
    assert.equal(counts.connections, 1, 'the addon holds the TLS session');
  } else {
    assert.doesNotMatch(text, /TLS in the/, 'one engine: nothing to tell apart');
  }
  s.destroy();
});

test('ALPN: the server list decides; no protocol in common fails the handshake, logged as such; a client without ALPN is served', async (t) => {
  const a = pki().leaf('alpn', ['mail.a.test']);
  const { app, port } = await start(t, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }], alpn: ["imap", "h2"] }`, greetAndClose);
  const both = await session(port, { ALPNProtocols: ['h2', 'imap'] });
  assert.equal(both.sock.alpnProtocol, 'imap', "the server's preference wins");
  both.sock.destroy();
  const none = await session(port);
  assert.equal(none.sock.alpnProtocol, false);
  assert.equal(none.line, 'backend');
  none.sock.destroy();
  await assert.rejects(session(port, { ALPNProtocols: ['pop3'] }));
  await waitFor(() => app.lines.find((l) => l.includes('TLS handshake failed')), { what: 'the failure in the log' });
  assert.ok(app.lines.some((l) => /listener imaps: TLS handshake failed: no common ALPN protocol \(client 127\.0\.0\.1\)/.test(l)), app.lines.join('\n'));
  await waitFor(() => app.records.find((r) => r.reason === 'tls_failed'), { what: 'the tls_failed record' });
  const rec = app.records.find((r) => r.reason === 'tls_failed')!;
  assert.equal(rec.detail, 'no common ALPN protocol');
  assert.equal(rec.backend, '', 'no backend dialled for a failed handshake');
  assert.equal(rec.tls, 'client');
});

test('resumption: openssl s_client -sess_out then -sess_in is "Reused" (TLS 1.3 tickets and TLS 1.2)', async (t) => {
  const a = pki().leaf('resume', ['mail.a.test']);
  const { port } = await start(t, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`, greetAndClose);
  for (const v of ['-tls1_3', '-tls1_2']) {
    const sess = `${pki().dir}/sess${v}.pem`;
    const first = await sClient(port, [v, '-sess_out', sess]);
    assert.match(first, /^New, TLSv1\.[23]/m, first);
    assert.match(first, /^backend$/m, first);
    const again = await sClient(port, [v, '-sess_in', sess]);
    assert.match(again, /^Reused, TLSv1\.[23]/m, again);
    assert.match(again, /^backend$/m, 'the resumed session reaches the backend');
  }
});

test('PROXY v2 to the backend carries the TLS fields exactly as the JS path builds them (native: built by the relay thread on the fast path, by JS with an allow list); an ALPN Dovecot would reject is not forwarded; v1 likewise', async (t) => {
  const a = pki().leaf('pp2', ['mail.a.test']);
  // An `allow` list keeps a listener off the native fast path: JS builds its header.
  for (const extra of ['', ', allow: ["127.0.0.0/8"]']) {
    for (const version of ['v2', 'v1'] as const) {
      const seen: Buffer[] = [];
      const { port } = await start(t, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }], alpn: ["imap", "h2"] }`, (s) => {
        s.once('data', (d: Buffer) => {
          seen.push(d);
          s.end('backend\n');
        });
      }, `, proxyProtocol: "${version}"${extra}`);
      await new Promise((r) => setTimeout(r, 50)); // past a new listener's first loop turn (it starts on the slow path)
      for (const alpn of version === 'v2' ? ['imap', 'h2'] : ['imap']) {
        const g = await session(port, { ALPNProtocols: [alpn] });
        const expected = buildProxyHeader(version, { srcAddr: '127.0.0.1', srcPort: g.sock.localPort!, dstAddr: '127.0.0.1', dstPort: port }, {
          version: g.sock.getProtocol()!,
          cipher: g.sock.getCipher().name,
          servername: 'mail.a.test',
          alpn: g.sock.alpnProtocol || '',
        });
        g.sock.destroy();
        const got = seen.shift()!;
        const what = `${version} header for ALPN ${alpn}${extra}`;
        assert.ok(got.subarray(0, expected.length).equals(expected), `${what}:\n got ${got.toString('hex')}\nwant ${expected.toString('hex')}`);
        assert.equal(got.includes(Buffer.from('h2')), false, 'h2 is never forwarded as PP2_TYPE_ALPN');
      }
    }
  }
});

test('routing fast path after the handshake: same backends in the same order, same session records and live sessions as a listener JS routes', async (t) => {
  const a = pki().leaf('fastpath', ['mail.a.test']);
  const named = async (name: string): Promise<number> => {
    const b = await listen((s) => {
      s.on('error', () => {});
      s.write(`${name}\n`); // and stays open until the client goes
    });
    t.after(() => b.close());
    return b.port;
  };
  const [pa, pb] = [await named('A'), await named('B')];
  const [fast, slow] = [await reservePort(), await reservePort()];
  const certs = `tls: { certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`;
  // "slow" differs only by an `allow` list, which the addon does not implement: JS routes its clients.
  const app = await startTestApp(`{
  listeners: [
    { name: "fast", listen: "127.0.0.1:${fast}", upstream: "mail", ${certs} },
    { name: "slow", listen: "127.0.0.1:${slow}", upstream: "mail2", allow: ["127.0.0.0/8"], ${certs} },
  ],
  upstreams: {
    mail: { servers: ["127.0.0.1:${pa}", "127.0.0.1:${pb}"] },
    mail2: { servers: ["127.0.0.1:${pa}", "127.0.0.1:${pb}"] },
  },
  log: { access: null },
}`);
  t.after(() => app.stopNow());
  await new Promise((r) => setTimeout(r, 50)); // past a new listener's first loop turn (it starts on the slow path)
  const lines = async (port: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < 4; i++) {
      const g = await session(port);
      out.push(g.line);
      g.sock.destroy();
    }
    return out;
  };
  const viaFast = await lines(fast);
  const viaSlow = await lines(slow);
  assert.deepEqual(viaFast, ['A', 'B', 'A', 'B'], 'round_robin, as the TS balancer picks');
  assert.deepEqual(viaFast, viaSlow);
  await waitFor(() => (app.records.length >= 8 ? true : undefined), { what: '8 session records' });
  const shape = (listener: string): unknown[] =>
    app.records.filter((r) => r.listener === listener).map((r) => ({ backend: r.backend.replace(/^[^/]+\//, ''), reason: r.reason, tls: r.tls, bytesIn: r.bytesIn, bytesOut: r.bytesOut }));
  assert.deepEqual(shape('fast'), shape('slow'));
  assert.equal(app.records.filter((r) => r.listener === 'fast').length, 4);
  // A live session: listed with its backend and `tls: client`, on either path.
  const held = await session(fast);
  t.after(() => held.sock.destroy());
  const live = await waitFor(() => app.engine.sessions(10).list.find((x) => x.listener === 'fast' && x.backend !== '') ?? undefined, { what: 'the live session' });
  assert.equal(live!.tls, 'client');
  assert.match(live!.backend, /^mail\/127\.0\.0\.1:\d+$/);
});

test('1 MiB each way through a TLS listener, with the client half-closing: every byte arrives, the backend FIN reaches the client', async (t) => {
  const a = pki().leaf('bulk-native', ['mail.a.test']);
  const { app, port } = await start(t, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`, (s) => s.pipe(s));
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 9)) & 0xff;
  const s = tls.connect({ host: '127.0.0.1', port, ca: ca(), servername: 'mail.a.test', allowHalfOpen: true } as tls.ConnectionOptions);
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('secureConnect', () => s.end(payload)); // write everything, then our FIN (close_notify)
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => resolve()); // the backend's FIN, relayed as close_notify + FIN
  });
  s.destroy();
  const all = Buffer.concat(got);
  assert.equal(all.length, payload.length);
  assert.ok(all.equals(payload), 'the bytes came back unchanged');
  await waitFor(() => app.records.at(-1), { what: 'the session record' });
  const rec = app.records.at(-1)!;
  assert.equal(rec.reason, 'closed');
  assert.equal(rec.bytesIn, payload.length, 'bytesIn counts plaintext');
  assert.equal(rec.bytesOut, payload.length);
});

test('failed handshakes are logged per kind with the same words on both engines: not TLS, below minVersion, strictSni, client closed, timeout', async (t) => {
  const a = pki().leaf('kinds', ['mail.a.test']);
  const { app, port } = await start(t, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }], minVersion: "TLSv1.3", strictSni: true, handshakeTimeout: "300ms" }`, greetAndClose);
  const garbage = await connect(port);
  garbage.on('error', () => {});
  garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await assert.rejects(session(port, { maxVersion: 'TLSv1.2' }));
  await assert.rejects(session(port, { servername: 'other.test' }));
  const quitter = await connect(port);
  quitter.end(); // FIN before any ClientHello
  const staller = await connect(port); // says nothing
  staller.on('error', () => {});
  const want = [
    'not a TLS ClientHello',
    'TLS version refused (below minVersion)',
    'no certificate for the name (strictSni)',
    'client closed during the handshake',
    'handshake timeout',
  ];
  await waitFor(() => want.filter((k) => app.lines.some((l) => l.includes(`listener imaps: TLS handshake failed: ${k} (client 127.0.0.1)`))), {
    what: 'a line per kind',
    until: (found) => found.length === want.length,
    timeoutMs: 5000,
  });
  await waitFor(() => app.records.filter((r) => r.reason === 'tls_failed').length, { what: 'five tls_failed sessions', until: (n) => n === 5 });
  assert.deepEqual(app.records.filter((r) => r.reason === 'tls_failed').map((r) => r.detail).sort(), [...want].sort());
  const ok = await session(port);
  assert.equal(ok.line, 'backend', 'still serving');
  ok.sock.destroy();
  garbage.destroy();
  staller.destroy();
});
