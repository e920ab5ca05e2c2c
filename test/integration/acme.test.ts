/**
 * Certificates by ACME (docs/tls.md#acme) against Debian's real pebble,
 * which really validates: its tls-alpn-01 and http-01 checks connect to the
 * balancer's listeners (pebble's `tlsPort` / `httpPort` are the listeners'
 * ports, every name resolves to 127.0.0.1 through pebble-challtestsrv).
 *
 * Needs /usr/bin/pebble (Debian package pebble): skipped loudly without it,
 * failing under CI=true. Addresses: 127.0.0.1 only, ports from reservePort.
 * Runs on the engine TCPLB_ENGINE names (the suite runs it on both).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { test, type TestContext } from 'node:test';
import { runCli, startCli, type Running } from '../helpers/cli.js';
import { reservePort } from '../helpers/ports.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { requireBinary } from '../fixtures/real/available.js';
import { startPebble, type Pebble } from '../fixtures/real/pebble.js';

/** An HTTP backend that names itself and echoes the path (and says so for every request it got). */
async function backend(t: TestContext, name: string): Promise<{ port: number; paths: string[] }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.end(`${name} ${req.url ?? ''}`);
  });
  const port = await reservePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  t.after(() => server.close());
  return { port, paths };
}

function httpGet(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** A TLS session to the balancer as `servername`; resolves with the socket and the served leaf. */
function tlsOpen(port: number, servername: string): Promise<{ s: tls.TLSSocket; serial: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      resolve({ s, serial: c.serialNumber.toUpperCase(), issuer: String(c.issuer?.CN ?? '') });
    });
    s.on('error', reject);
  });
}

/** One HTTP/1.1 request on an open TLS session (keep-alive): the body. */
function requestOn(s: tls.TLSSocket, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = /\r\n\r\n/.exec(buf);
      const len = /content-length: (\d+)/i.exec(buf);
      if (m !== null && len !== null && buf.length >= m.index + 4 + Number(len[1])) {
        s.off('data', onData);
        resolve(buf.slice(m.index + 4, m.index + 4 + Number(len[1])));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

async function serialOf(port: number, name: string): Promise<{ serial: string; issuer: string }> {
  const o = await tlsOpen(port, name);
  o.s.destroy();
  return { serial: o.serial, issuer: o.issuer };
}

/** `openssl s_client -servername` as an operator would check, the issuer line. */
function sClientIssuer(port: number, name: string): string {
  const out = execFileSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', name], { input: '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'], timeout: 10_000 });
  return /issuer=([^\n]*)/.exec(out)?.[1] ?? out.slice(0, 300);
}

interface Lb {
  run: Running;
  file: string;
  dir: string;
  ctl: (...args: string[]) => ReturnType<typeof runCli>;
}

async function startLb(t: TestContext, dir: string, text: string, env: NodeJS.ProcessEnv, name = 'config.json5'): Promise<Lb> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const run = await startCli(['--headless', '-c', file], /serving/, { env, timeoutMs: 15_000 });
  t.after(() => run.child.kill('SIGKILL'));
  return { run, file, dir, ctl: (...args: string[]) => runCli(['ctl', '-c', file, ...args], { env, timeoutMs: 60_000 }) };
}

function pebbleOrSkip(t: TestContext): boolean {
  return requireBinary('pebble', t) && requireBinary('pebble-challtestsrv', t) && requireBinary('openssl', t);
}

test('ACME: tls-alpn-01 then http-01 issuance, stored 0600/0700, forced renewal under an open session, a failing renewal keeps the certificate, a restart orders nothing', { timeout: 180_000 }, async (t) => {
  if (!pebbleOrSkip(t)) return;
  const [tlsPort, httpPort, mport] = [await reservePort(), await reservePort(), await reservePort()];
  const pebble: Pebble = await startPebble({ httpPort, tlsPort });
  t.after(() => pebble.stop());
  const web = await backend(t, 'web');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-acme-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: pebble.caFile };
  const config = (challenge: string): string => `{
    acme: { email: "ops@acme.test", directory: "${pebble.directory}", domains: ["www.acme.test", "acme.test"], challenge: "${challenge}",
            storage: "acme", retryMin: "300ms", retryMax: "2s" },
    listeners: [
      { name: "https", listen: "127.0.0.1:${tlsPort}", upstream: "web", tls: { acme: true } },
      { name: "http", listen: "127.0.0.1:${httpPort}", upstream: "web", acme: true },
    ],
    upstreams: { web: { servers: ["127.0.0.1:${web.port}"] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
    metrics: { listen: "127.0.0.1:${mport}" },
  }`;
  // --check validates without contacting the directory (pebble's is not even asked).
  const ordersBefore = pebble.orders();
  fs.writeFileSync(path.join(dir, 'check.json5'), config('tls-alpn-01'));
  const check = await runCli(['--check', '-c', path.join(dir, 'check.json5')], { env });
  assert.equal(check.code, 0, check.stderr + check.stdout);
  assert.match(check.stdout, /acme: +www\.acme\.test, acme\.test by tls-alpn-01 from https:\/\/127\.0\.0\.1:\d+\/dir \(not contacted by --check\)/);
  assert.equal(pebble.orders(), ordersBefore);

  // 1. First start: no certificate in storage, tls-alpn-01 order answered on the TLS listener.
  const started = Date.now();
  let lb = await startLb(t, dir, config('tls-alpn-01'), env);
  // Plain HTTP on the http-01 listener is relayed while the order runs.
  const during: string[] = [];
  let issuing = true;
  const traffic = (async () => {
    while (issuing) {
      during.push(await httpGet(httpPort, `/during-${during.length}`));
      await sleep(20);
    }
  })();
  await waitFor(() => /certificate for www\.acme\.test, acme\.test stored and in service/.test(lb.run.stderr()), { what: 'first certificate', timeoutMs: 60_000 });
  issuing = false;
  await traffic;
  const firstMs = Date.now() - started;
  assert.match(lb.run.stderr(), /answered ACME tls-alpn-01 for (www\.)?acme\.test/);
  assert.ok(during.length > 0 && during.every((b, i) => b === `web /during-${i}`), `HTTP relayed unchanged during issuance: ${during.slice(0, 3).join(' | ')}`);
  const first = await serialOf(tlsPort, 'www.acme.test');
  assert.match(sClientIssuer(tlsPort, 'www.acme.test'), /Pebble Intermediate CA/);
  assert.match(first.issuer, /Pebble Intermediate CA/);
  const st = (p: string): number => fs.statSync(path.join(dir, 'acme', p)).mode & 0o777;
  assert.equal(st(''), 0o700);
  assert.equal(st('certificate.pem'), 0o600);
  assert.equal(st('account.key'), 0o600);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'acme')).filter((n) => n.includes('.tmp-')), [], 'no temporary file left');

  // 2. Forced renewal: an open TLS session stays up; new handshakes get the new certificate;
  //    HTTPS traffic on the same listener is relayed unchanged meanwhile.
  const open = await tlsOpen(tlsPort, 'www.acme.test');
  assert.equal(await requestOn(open.s, '/before'), 'web /before');
  const httpsDuring: string[] = [];
  let renewing = true;
  const httpsTraffic = (async () => {
    while (renewing) {
      const o = await tlsOpen(tlsPort, 'acme.test');
      httpsDuring.push(await requestOn(o.s, `/r-${httpsDuring.length}`));
      o.s.destroy();
    }
  })();
  const r0 = Date.now();
  const renew = await lb.ctl('acme', 'renew', 'www.acme.test');
  const renewMs = Date.now() - r0;
  renewing = false;
  await httpsTraffic;
  assert.equal(renew.code, 0, renew.stderr + renew.stdout);
  const second = await waitFor(async () => {
    const s = await serialOf(tlsPort, 'www.acme.test');
    return s.serial !== first.serial ? s : undefined;
  }, { what: "a new certificate after ctl acme renew", timeoutMs: 10_000 }) as { serial: string; issuer: string };
  assert.equal(await requestOn(open.s, '/after'), 'web /after', 'the session opened before the renewal still relays');
  assert.ok(httpsDuring.length > 0 && httpsDuring.every((b, i) => b === `web /r-${i}`), 'HTTPS relayed unchanged during the renewal');
  open.s.destroy();

  // 3. http-01: the config now asks for it (the certificate in service stays until due); a forced
  //    renewal goes through http-01, answered on the plain listener.
  fs.writeFileSync(lb.file, config('http-01'));
  const reload = await lb.ctl('reload');
  assert.equal(reload.code, 0, reload.stderr);
  const viaHttp = await lb.ctl('acme', 'renew');
  assert.equal(viaHttp.code, 0, viaHttp.stderr + viaHttp.stdout);
  const third = await waitFor(async () => {
    const s = await serialOf(tlsPort, 'acme.test');
    return s.serial !== second.serial ? s : undefined;
  }, { what: "a certificate by http-01", timeoutMs: 60_000 }) as { serial: string; issuer: string };
  assert.match(lb.run.stderr(), /answered ACME http-01 token/);
  assert.match(third.issuer, /Pebble Intermediate CA/);
  const certs = await lb.ctl('certs');
  assert.equal(certs.code, 0, certs.stdout);
  assert.match(certs.stdout, /acme www\.acme\.test, acme\.test · http-01/);

  // 4. The CA is down: the renewal fails, retries with growing delays, the certificate keeps serving.
  await pebble.pause();
  const failed = await lb.ctl('acme', 'renew');
  assert.equal(failed.code, 1);
  assert.match(failed.stderr + failed.stdout, /order failed: .*the current certificate keeps serving; next attempt in/);
  await waitFor(async () => {
    const r = await lb.ctl('certs', '--json');
    return (JSON.parse(r.stdout) as { acme: { failures: number } }).acme.failures >= 3 ? true : undefined;
  }, { what: 'two scheduled retries after the failed renewal', timeoutMs: 20_000 });
  const attempts = [...lb.run.stderr().matchAll(/order for .* failed \(attempt (\d+)\).*next attempt in (\d+) ms/g)].map((m) => ({ n: Number(m[1]), ms: Number(m[2]) }));
  assert.deepEqual(attempts.slice(0, 3).map((a) => a.n), [1, 2, 3], 'attempts counted up');
  // retryMin 300ms doubled per failure, capped at retryMax 2s, jittered to 50-100%.
  for (const [i, a] of attempts.slice(0, 3).entries()) {
    const base = Math.min(2000, 300 * 2 ** i);
    assert.ok(a.ms >= base / 2 && a.ms <= base, `retry ${a.n} after ${a.ms} ms (base ${base})`);
  }
  const whileDown = await lb.ctl('certs');
  assert.equal(whileDown.code, 1, 'ctl certs exits 1 while orders fail');
  assert.match(whileDown.stdout, /LAST ORDER FAILED .*the certificate keeps serving/);
  assert.equal((await serialOf(tlsPort, 'acme.test')).serial, third.serial, 'the working certificate still serves');
  const metrics = await httpGet(mport, '/metrics');
  const failures = Number(/tcplb_acme_renewal_failures_total\{domain="www.acme.test"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(failures >= 3, `tcplb_acme_renewal_failures_total ${failures}`);
  assert.match(metrics, /tcplb_cert_expiry_timestamp_seconds\{listener="https"/);
  await pebble.resume();

  // 5. Restart with a valid stored certificate: no ACME request at all.
  lb.run.child.kill('SIGTERM');
  await lb.run.exited;
  const orders = pebble.orders();
  const requests = (pebble.log().match(/-> calling handler/g) ?? []).length;
  lb = await startLb(t, dir, config('http-01'), env);
  assert.equal((await serialOf(tlsPort, 'acme.test')).serial, third.serial, 'the stored certificate serves at once');
  await sleep(1500); // the scenario: nothing happens for a while
  assert.equal(pebble.orders(), orders);
  assert.equal((pebble.log().match(/-> calling handler/g) ?? []).length, requests, 'no request reached the CA');
  assert.doesNotMatch(lb.run.stderr(), /acme: ordering/);
  t.diagnostic(`first issuance ${firstMs} ms (tls-alpn-01), forced renewal ${renewMs} ms; ${during.length} HTTP and ${httpsDuring.length} HTTPS requests relayed during them`);
});

test('ACME with an HA pair sharing storage: the member that did not order answers the challenge and serves the certificate', { timeout: 120_000 }, async (t) => {
  if (!pebbleOrSkip(t)) return;
  // Pebble validates on B's ports only; A orders.
  const [aTls, bTls, bHttp] = [await reservePort(), await reservePort(), await reservePort()];
  const pebble = await startPebble({ httpPort: bHttp, tlsPort: bTls });
  t.after(() => pebble.stop());
  const web = await backend(t, 'web');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-acme-ha-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: pebble.caFile };
  const config = (tlsPort: number, order: boolean, sock: string): string => `{
    instance: "${sock}",
    acme: { email: "ops@acme.test", directory: "${pebble.directory}", domains: ["ha.acme.test"], storage: "shared", retryMin: "300ms", retryMax: "1s", order: ${order} },
    listeners: [{ name: "https", listen: "127.0.0.1:${tlsPort}", upstream: "web", tls: { acme: true } }],
    upstreams: { web: { servers: ["127.0.0.1:${web.port}"] } },
    log: { access: null },
    control: { socket: "${sock}.sock" },
  }`;
  const b = await startLb(t, dir, config(bTls, false, 'b'), env, 'b.json5');
  const a = await startLb(t, dir, config(aTls, true, 'a'), env, 'a.json5');
  await waitFor(() => /stored and in service/.test(a.run.stderr()), { what: 'A obtains the certificate', timeoutMs: 60_000 });
  assert.match(b.run.stderr(), /answered ACME tls-alpn-01 for ha\.acme\.test/, 'B answered the challenge A ordered');
  assert.doesNotMatch(a.run.stderr(), /answered ACME/, 'A was never asked');
  assert.doesNotMatch(b.run.stderr(), /acme: ordering/, 'B ordered nothing');
  const served = await serialOf(aTls, 'ha.acme.test');
  await waitFor(async () => ((await serialOf(bTls, 'ha.acme.test').catch(() => undefined))?.serial === served.serial ? true : undefined), {
    what: 'B serves the certificate A stored', timeoutMs: 10_000,
  });
  assert.equal(new X509Certificate(fs.readFileSync(path.join(dir, 'shared', 'certificate.pem'))).serialNumber.toUpperCase(), served.serial);
});

test('ACME http-01 with workers: 2: the relay processes answer from storage, the certificate reaches them', { timeout: 90_000 }, async (t) => {
  if (!pebbleOrSkip(t)) return;
  const [tlsPort, httpPort] = [await reservePort(), await reservePort()];
  const pebble = await startPebble({ httpPort, tlsPort });
  t.after(() => pebble.stop());
  const web = await backend(t, 'web');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-acme-w-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: pebble.caFile };
  const lb = await startLb(t, dir, `{
    workers: 2,
    acme: { email: "ops@acme.test", directory: "${pebble.directory}", domains: ["w.acme.test"], challenge: "http-01", retryMin: "300ms", retryMax: "1s" },
    listeners: [
      { name: "https", listen: "127.0.0.1:${tlsPort}", upstream: "web", tls: { acme: true } },
      { name: "http", listen: "127.0.0.1:${httpPort}", upstream: "web", acme: true },
    ],
    upstreams: { web: { servers: ["127.0.0.1:${web.port}"] } },
    log: { access: null },
  }`, env);
  await waitFor(() => /stored and in service/.test(lb.run.stderr()), { what: 'the certificate by http-01', timeoutMs: 60_000 });
  assert.match(lb.run.stderr(), /answered ACME http-01 token/);
  const o = await tlsOpen(tlsPort, 'w.acme.test');
  assert.match(o.issuer, /Pebble Intermediate CA/);
  assert.equal(await requestOn(o.s, '/x'), 'web /x');
  o.s.destroy();
  assert.equal(await httpGet(httpPort, '/.well-known/acme-challenge/unknown-token'), 'web /.well-known/acme-challenge/unknown-token', 'an unknown token is the backend\'s');
});
