/**
 * What an operator sees of the certificates a running tcplb serves (#16):
 * `tcplb-console ctl certs` (names, issuer, expiry, serving since, last
 * reload), its exit code, the console's snapshot mark, and the Prometheus
 * expiry timestamps; a renewal refused for a mismatched key shows in all of
 * them while the old certificate keeps serving.
 *
 * Addresses: 127.0.0.1 only (ports from reservePort).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { makePki } from '../fixtures/pki.js';
import { runCli, startCli } from '../helpers/cli.js';
import { listen, reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

function serialVia(port: number, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(caFile), servername: 'mail.a.test' }, () => {
      resolve(s.getPeerCertificate().serialNumber.toUpperCase());
      s.destroy();
    });
    s.on('error', reject);
  });
}

test('ctl certs lists each TLS listener\'s certificates and last reload; metrics export expiry; a refused renewal shows while the old one serves', { timeout: 40_000 }, async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const main = pki.leaf('ctl-a', ['mail.a.test', '*.a.test'], 60);
  const soon = pki.leaf('ctl-soon', ['pop.b.test'], 5);
  const other = pki.leaf('ctl-other', ['mail.c.test']);
  const backend = await listen((s) => void s.end('backend\n'));
  t.after(() => backend.close());
  const dir = fs.mkdtempSync(path.join(pki.dir, 'run-'));
  fs.copyFileSync(main.cert, path.join(dir, 'cert.pem'));
  fs.copyFileSync(main.key, path.join(dir, 'key.pem'));
  const [imaps, pop3s, plain, mport] = [await reservePort(), await reservePort(), await reservePort(), await reservePort()];
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, `{
    listeners: [
      { name: "imaps", listen: "127.0.0.1:${imaps}", upstream: "mail", tls: { certificates: [{ cert: "cert.pem", key: "key.pem" }] } },
      { name: "pop3s", listen: "127.0.0.1:${pop3s}", upstream: "mail", tls: { certificates: [{ cert: "${soon.cert}", key: "${soon.key}" }] } },
      { name: "plain", listen: "127.0.0.1:${plain}", upstream: "mail" },
    ],
    upstreams: { mail: { servers: ["127.0.0.1:${backend.port}"] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
    metrics: { listen: "127.0.0.1:${mport}" },
  }`);
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const ctl = (...args: string[]) => runCli(['ctl', '-c', file, ...args]);
  await waitFor(() => fs.existsSync(path.join(dir, 'tcplb.sock')), { timeoutMs: 3000, what: 'control socket' });

  const notAfter = Date.parse(new X509Certificate(main.pem).validTo);
  const c = await ctl('certs');
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`^imaps 127\\.0\\.0\\.1:${imaps} · last reload \\S+ \\S+ ok$`, 'm'));
  assert.match(c.stdout, /^ {2}mail\.a\.test, \*\.a\.test \(default\)$/m);
  assert.match(c.stdout, /^ {4}issuer tcplb test ca · expires \S+ \S+ \((59|60) days left\) · serving since /m);
  assert.match(c.stdout, new RegExp(`serial ${main.serial} · ${path.join(dir, 'cert.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'i'));
  assert.match(c.stdout, /^ {2}pop\.b\.test \(default\)\n {4}issuer .* \((4|5) days left\)/m);
  assert.doesNotMatch(c.stdout, /^plain /m, 'a plain listener has no certificates to list');

  const j = await ctl('certs', '--json');
  assert.equal(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout) as { listeners: { listener: string; certificates: { notAfter: number; serial: string; loadedAt: number }[]; lastReload: { ok: boolean } }[] };
  assert.deepEqual(report.listeners.map((l) => l.listener), ['imaps', 'pop3s']);
  assert.equal(report.listeners[0]!.certificates[0]!.notAfter, notAfter);
  const servingSince = report.listeners[0]!.certificates[0]!.loadedAt;

  // The console's mark reads the snapshot: the earliest expiry per TLS listener.
  const snap = JSON.parse((await ctl('status')).stdout) as { listeners: { name: string; certExpiry?: number }[] };
  assert.equal(snap.listeners.find((l) => l.name === 'imaps')!.certExpiry, notAfter);
  assert.equal(snap.listeners.find((l) => l.name === 'plain')!.certExpiry, undefined);

  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
  const m = await metrics();
  assert.match(m, new RegExp(`^tcplb_cert_expiry_timestamp_seconds\\{listener="imaps",subject="mail\\.a\\.test"\\} ${Math.floor(notAfter / 1000)}$`, 'm'));
  assert.match(m, /^tcplb_cert_expiry_timestamp_seconds\{listener="pop3s",subject="pop\.b\.test"\} \d+$/m);
  assert.doesNotMatch(m, /tcplb_cert_expiry_timestamp_seconds\{listener="plain"/);

  // A renewal gone wrong: a key that does not belong to the certificate. Refused; the old pair keeps serving.
  fs.writeFileSync(path.join(dir, 'key.pem'), fs.readFileSync(other.key));
  await waitFor(() => run.stderr(), { what: 'the refused reload', until: (e) => /reload refused: .*does not match/.test(e), timeoutMs: 10_000 });
  const bad = await ctl('certs');
  assert.match(bad.stderr, /asking the running tcplb at .*tcplb\.sock anyway/, 'ctl -c finds the socket of a config that no longer validates');
  assert.equal(bad.code, 1, 'a refused renewal needs a person: exit 1');
  assert.match(bad.stdout, /^imaps .* REFUSED: the key in .*key\.pem" does not match the certificate in .*cert\.pem" \(mail\.a\.test\) \(the certificates below keep serving\)$/m);
  assert.match(bad.stdout, /^pop3s .* ok$/m, 'the other listener\'s files are fine: its record is untouched');
  assert.match(bad.stdout, new RegExp(`serial ${main.serial}`, 'i'), 'the old certificate is still listed');
  assert.equal(await serialVia(imaps, pki.caFile), main.serial.toUpperCase());

  // Fixed with a new pair: ok again, and the new certificate's service starts now.
  const renewed = pki.leaf('ctl-renewed', ['mail.a.test'], 90);
  fs.writeFileSync(path.join(dir, 'key.pem'), fs.readFileSync(renewed.key));
  fs.writeFileSync(path.join(dir, 'cert.pem'), fs.readFileSync(renewed.cert));
  await waitFor(() => serialVia(imaps, pki.caFile), { what: 'the renewed certificate', until: (s) => s === renewed.serial.toUpperCase(), timeoutMs: 10_000 });
  const good = await ctl('certs', '--json');
  assert.equal(good.code, 0, good.stdout);
  const after = JSON.parse(good.stdout) as typeof report;
  assert.equal(after.listeners[0]!.lastReload.ok, true);
  assert.equal(after.listeners[0]!.certificates[0]!.serial.toUpperCase(), renewed.serial.toUpperCase());
  assert.ok(after.listeners[0]!.certificates[0]!.loadedAt > servingSince);
  assert.equal(after.listeners[1]!.certificates[0]!.loadedAt, report.listeners[1]!.certificates[0]!.loadedAt, 'an unchanged certificate keeps its serving-since');
  assert.match(await metrics(), /^tcplb_cert_expiry_timestamp_seconds\{listener="imaps",subject="mail\.a\.test"\} \d+$/m);
});
