/**
 * TLS at the balancer (`listeners[].tls`, docs/tls.md), on the engine
 * TCPLB_ENGINE names: the certificate by SNI (openssl s_client), the default
 * certificate for clients without SNI, strictSni, and certificates replaced
 * on disk (rename, in-place write) while a session stays open, a bad key
 * refused with the old certificate still serving.
 *
 * Addresses: 127.0.0.1 only (ports from reservePort).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { watchConfig } from '../../src/cli/watch.js';
import { tlsFiles } from '../../src/config/certificates.js';
import { makePki, type Pki } from '../fixtures/pki.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { connect, listen, namedEcho, readLine, reservePort } from '../helpers/net.js';
import { loadConfigText } from '../../src/config/load.js';
import { waitFor } from '../helpers/wait.js';
import { startCli } from '../helpers/cli.js';

let pkiCache: Pki | undefined;
const pki = (): Pki => (pkiCache ??= makePki());

/** openssl s_client against the listener: what it printed (stdin closed at once; -ign_eof waits for the server). */
function sClient(port: number, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki().caFile, '-ign_eof', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => c.kill(), 10_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
    c.stdin.end();
  });
}

/** A TLS client through the listener: the certificate it got and the backend's greeting line. */
function tlsGreeting(port: number, servername?: string): Promise<{ serial: string; names: string; line: string; sock: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki().caFile), ...(servername ? { servername } : {}), checkServerIdentity: () => undefined });
    let buf = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const cert = s.getPeerCertificate();
      resolve({ serial: cert.serialNumber.toUpperCase(), names: cert.subjectaltname ?? '', line: buf.slice(0, nl), sock: s });
    });
  });
}

function config(port: number, backend: number, tlsText: string): string {
  return `{
  listeners: [{ name: "imaps", listen: "127.0.0.1:${port}", upstream: "mail", tls: ${tlsText} }],
  upstreams: { mail: { servers: ["127.0.0.1:${backend}"] } },
  log: { access: null },
}`;
}

/** A backend that greets and hangs up (s_client then ends by itself). */
const greetAndClose = (s: net.Socket): void => void s.end('backend\n');

async function start(t: { after(fn: () => unknown): void }, tlsText: (p: Pki) => string, serve: (s: net.Socket) => void = greetAndClose): Promise<{ app: TestApp; port: number }> {
  const backend = await listen(serve);
  t.after(() => backend.close());
  const port = await reservePort();
  const app = await startTestApp(config(port, backend.port, tlsText(pki())));
  t.after(() => app.stopNow());
  return { app, port };
}

test('SNI picks the certificate whose names match; no SNI or an unknown name gets the first, and the session completes', async (t) => {
  const a = pki().leaf('a', ['mail.a.test']);
  const b = pki().leaf('b', ['mail.b.test', '*.b.test']);
  const { port } = await start(t, () => `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }, { cert: "${b.cert}", key: "${b.key}" }] }`);

  const sb = await sClient(port, ['-servername', 'mail.b.test', '-verify_hostname', 'mail.b.test']);
  assert.match(sb.out, /subject=CN = mail\.b\.test/, sb.out);
  assert.match(sb.out, /Verify return code: 0 \(ok\)/, sb.out);
  assert.match(sb.out, /^backend$/m, 'the backend greeting came through the TLS session');

  const none = await sClient(port, ['-noservername']);
  assert.match(none.out, /subject=CN = mail\.a\.test/, none.out);
  assert.match(none.out, /^backend$/m, none.out);

  const wild = await tlsGreeting(port, 'imap.b.test');
  assert.equal(wild.serial, b.serial, 'a one-label wildcard covers imap.b.test');
  wild.sock.destroy();
  const deeper = await tlsGreeting(port, 'x.imap.b.test');
  assert.equal(deeper.serial, a.serial, 'the wildcard does not cover two labels: default certificate');
  deeper.sock.destroy();
  const unknown = await tlsGreeting(port, 'other.test');
  assert.equal(unknown.serial, a.serial);
  assert.equal(unknown.line, 'backend');
  unknown.sock.destroy();
});

test('strictSni: a client without SNI or with a name no certificate covers is refused in the handshake', async (t) => {
  const a = pki().leaf('strict-a', ['mail.a.test']);
  const { app, port } = await start(t, () => `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }], strictSni: true }`);
  const none = await sClient(port, ['-noservername']);
  assert.doesNotMatch(none.out, /subject=/, none.out);
  assert.doesNotMatch(none.out, /^backend$/m);
  await assert.rejects(tlsGreeting(port, 'other.test'));
  const ok = await tlsGreeting(port, 'mail.a.test');
  assert.equal(ok.serial, a.serial);
  ok.sock.destroy();
  await waitFor(() => app.records.filter((r) => r.reason === 'tls_failed').length, { what: 'two tls_failed sessions', until: (n) => n === 2 });
  assert.ok(app.records.every((r) => r.reason !== 'tls_failed' || r.backend === ''), 'no backend is dialled for a failed handshake');
});

test('a renewed certificate (rename, then in-place write) serves new handshakes while an open session carries on; a mismatched key is refused', async (t) => {
  const first = pki().leaf('r1', ['mail.a.test']);
  const second = pki().leaf('r2', ['mail.a.test']);
  const third = pki().leaf('r3', ['mail.a.test']);
  const other = pki().leaf('r-other', ['mail.b.test']);
  // The live files the config names; the tests replaces them as certbot would.
  const dir = fs.mkdtempSync(`${pki().dir}/live-`);
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  fs.copyFileSync(first.cert, cert);
  fs.copyFileSync(first.key, key);
  const { app, port } = await start(t, () => `{ certificates: [{ cert: "${cert}", key: "${key}" }] }`, namedEcho('backend'));
  const w = watchConfig(app.file, () => void app.actions.reload('watcher'), 50);
  t.after(() => w.close());
  w.follow(tlsFiles(app.runtime.config));
  await w.ready;

  const held = await tlsGreeting(port, 'mail.a.test');
  assert.equal(held.serial, first.serial);

  // certbot-style: new files written beside, renamed over the live ones.
  fs.copyFileSync(second.key, `${key}.new`);
  fs.copyFileSync(second.cert, `${cert}.new`);
  fs.renameSync(`${key}.new`, key);
  fs.renameSync(`${cert}.new`, cert);
  await waitFor(async () => {
    const g = await tlsGreeting(port, 'mail.a.test');
    g.sock.destroy();
    return g.serial;
  }, { what: 'the renamed certificate in new handshakes', until: (s) => s === second.serial, timeoutMs: 10_000 });

  // In-place writes (truncate + write), key first.
  fs.writeFileSync(key, fs.readFileSync(third.key));
  fs.writeFileSync(cert, fs.readFileSync(third.cert));
  await waitFor(async () => {
    const g = await tlsGreeting(port, 'mail.a.test');
    g.sock.destroy();
    return g.serial;
  }, { what: 'the rewritten certificate in new handshakes', until: (s) => s === third.serial, timeoutMs: 10_000 });

  // The session opened before both swaps still relays.
  const echoed = new Promise<string>((r) => held.sock.once('data', (d: Buffer) => r(d.toString())));
  held.sock.write('still here\n');
  assert.equal(await echoed, 'still here\n');

  // A key that does not belong to the certificate: refused, the old pair keeps serving.
  fs.writeFileSync(key, fs.readFileSync(other.key));
  await waitFor(() => app.lines.find((l) => /reload refused: .*does not match the certificate/.test(l)), { what: 'the refused reload in the log', timeoutMs: 10_000 });
  const after = await tlsGreeting(port, 'mail.a.test');
  assert.equal(after.serial, third.serial);
  after.sock.destroy();
  held.sock.destroy();
});

test('a TLS listener relays bytes both ways unchanged (64 KiB each way)', async (t) => {
  const a = pki().leaf('bulk', ['mail.a.test']);
  const backend = await listen((s) => s.pipe(s));
  t.after(() => backend.close());
  const port = await reservePort();
  const app = await startTestApp(config(port, backend.port, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`));
  t.after(() => app.stopNow());
  const payload = Buffer.alloc(64 * 1024, 7);
  const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki().caFile), servername: 'mail.a.test' });
  const got: Buffer[] = [];
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('secureConnect', () => s.write(payload));
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) resolve();
    });
  });
  s.destroy();
  assert.ok(Buffer.concat(got).equals(payload));
});

test('the binary watches the certificate files a config names: a renewed certificate reaches new handshakes, a symlink flip too', { timeout: 30_000 }, async (t) => {
  const first = pki().leaf('cli1', ['mail.a.test']);
  const second = pki().leaf('cli2', ['mail.a.test']);
  const third = pki().leaf('cli3', ['mail.a.test']);
  const backend = await listen(greetAndClose);
  t.after(() => backend.close());
  const dir = fs.mkdtempSync(`${pki().dir}/cli-`);
  // certbot's layout: live/ names are symlinks into archive/ files.
  fs.mkdirSync(`${dir}/archive`);
  for (const [n, l] of [['1', first], ['2', second], ['3', third]] as const) {
    fs.copyFileSync(l.cert, `${dir}/archive/cert${n}.pem`);
    fs.copyFileSync(l.key, `${dir}/archive/key${n}.pem`);
  }
  fs.symlinkSync(`${dir}/archive/cert1.pem`, `${dir}/cert.pem`);
  fs.symlinkSync(`${dir}/archive/key1.pem`, `${dir}/key.pem`);
  const port = await reservePort();
  const file = `${dir}/config.json5`;
  // Relative paths: resolved against the config's folder.
  fs.writeFileSync(file, config(port, backend.port, '{ certificates: [{ cert: "cert.pem", key: "key.pem" }] }'));
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const serial = async (): Promise<string> => {
    const g = await tlsGreeting(port, 'mail.a.test');
    g.sock.destroy();
    return g.serial;
  };
  assert.equal(await serial(), first.serial);
  // Renewal by rename over the live file (the config itself is untouched).
  fs.copyFileSync(`${dir}/archive/key2.pem`, `${dir}/key.new`);
  fs.copyFileSync(`${dir}/archive/cert2.pem`, `${dir}/cert.new`);
  fs.renameSync(`${dir}/key.new`, `${dir}/key.pem`);
  fs.renameSync(`${dir}/cert.new`, `${dir}/cert.pem`);
  await waitFor(serial, { what: 'the renamed certificate', until: (s) => s === second.serial, timeoutMs: 10_000 });
  // certbot's symlink flip: the links re-pointed at newer archive files.
  for (const [link, target] of [['key.pem', 'key3.pem'], ['cert.pem', 'cert3.pem']]) {
    fs.symlinkSync(`${dir}/archive/${target}`, `${dir}/${link}.tmp`);
    fs.renameSync(`${dir}/${link}.tmp`, `${dir}/${link}`);
  }
  await waitFor(serial, { what: 'the certificate behind the flipped symlinks', until: (s) => s === third.serial, timeoutMs: 10_000 });
  assert.match(run.stderr(), /reload: ~listener imaps tls \[mail\.a\.test#/);
});

test('turning TLS on for a running listener by reload: the js engine swaps it in place; the native engine refuses naming the listener and keeps serving plain', async (t) => {
  const a = pki().leaf('switch', ['mail.a.test']);
  const backend = await listen(greetAndClose);
  t.after(() => backend.close());
  const port = await reservePort();
  const plain = `{
  listeners: [{ name: "imaps", listen: "127.0.0.1:${port}", upstream: "mail" }],
  upstreams: { mail: { servers: ["127.0.0.1:${backend.port}"] } },
  log: { access: null },
}`;
  const app = await startTestApp(plain);
  t.after(() => app.stopNow());
  const next = loadConfigText(config(port, backend.port, `{ certificates: [{ cert: "${a.cert}", key: "${a.key}" }] }`), app.file);
  assert.ok(next.ok);
  const r = await app.apply(next.config, 'ctl');
  if (app.engineChoice.kind === 'native') {
    assert.equal(r.ok, false);
  assert.match(r.message, /listener "imaps": turning TLS (or acceptProxyProtocol )?on at the same address \(127\.0\.0\.1:\d+\) needs a restart with the native engine/);
    const c = await connect(port);
    assert.equal(await readLine(c), 'backend', 'still served in plain');
    c.destroy();
  } else {
    assert.ok(r.ok, r.message);
    const g = await tlsGreeting(port, 'mail.a.test');
    assert.equal(g.serial, a.serial);
    assert.equal(g.line, 'backend');
    g.sock.destroy();
  }
});

/** One TLS connection through the listener offering `session`: whether it resumed, and the ticket it got for the next one. */
function resumeOnce(port: number, session: Buffer | undefined): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki().caFile), servername: 'mail.a.test', ...(session ? { session } : {}) });
    let ticket: Buffer | undefined;
    let reused = false;
    s.on('session', (b: Buffer) => (ticket = b));
    s.once('secureConnect', () => (reused = s.isSessionReused()));
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => resolve({ reused, session: ticket }));
  });
}

test('workers: 2: a session ticket resumes on whichever relay worker accepts the next connection', { timeout: 30_000 }, async (t) => {
  const a = pki().leaf('tickets', ['mail.a.test']);
  const backend = await listen(greetAndClose);
  t.after(() => backend.close());
  const port = await reservePort();
  // `workers` is a setting of the JavaScript engine: run it in every pass, the native one's too.
  const forced = process.env.TCPLB_ENGINE;
  process.env.TCPLB_ENGINE = 'js';
  t.after(() => (forced === undefined ? delete process.env.TCPLB_ENGINE : (process.env.TCPLB_ENGINE = forced)));
  const app = await startTestApp(`{
    workers: 2, engine: "js",
    listeners: [{ name: "imaps", listen: "127.0.0.1:${port}", upstream: "mail",
                  tls: { certificates: [{ cert: "${a.cert}", key: "${a.key}" }] } }],
    upstreams: { mail: { servers: ["127.0.0.1:${backend.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  assert.equal(app.engine.name, 'js x2 workers');
  // The kernel spreads accepts over the two workers: in 12 connections both serve
  // (all on one worker: 1 in 2,048). Each offers the newest ticket it has seen.
  let { session } = await resumeOnce(port, undefined);
  const reused: boolean[] = [];
  for (let i = 0; i < 12; i++) {
    assert.ok(session, `connection ${i} got a session ticket`);
    const r = await resumeOnce(port, session);
    reused.push(r.reused);
    session = r.session ?? session;
  }
  assert.deepEqual(reused, Array(12).fill(true), 'every connection resumed its ticket');
});
