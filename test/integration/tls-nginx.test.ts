/**
 * HTTPS through tcplb to a real nginx over HTTP/1.1 and h2 (#16): tcplb
 * holds the public certificate and offers `alpn: ["h2", "http/1.1"]`; it
 * re-encrypts to nginx's `listen … ssl http2` port (verified against the
 * internal CA) and offers nginx the protocol the client negotiated, so an
 * h2 client gets h2 end to end and an HTTP/1.1 client HTTP/1.1. nginx's
 * access log shows the protocol and ALPN each request arrived with.
 *
 * Addresses of THIS file: 127.0.0.130 tcplb listener, 127.0.0.132 nginx
 * (https 443). Needs root, nginx and curl: without them the test skips
 * loudly, or fails when CI=true.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { requireRealServers } from '../fixtures/real/available.js';
import { NGINX_FILE_1M, patternBytes, startNginx } from '../fixtures/real/nginx.js';
import { makePki } from '../fixtures/pki.js';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const LB = '127.0.0.130';
const NGINX = '127.0.0.132';

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-v', '--max-time', '15', ...args], { maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

test('HTTPS through tcplb to nginx: h2 negotiated end to end for curl --http2, HTTP/1.1 for --http1.1, the ALPN passed through', { timeout: 60_000 }, async (t) => {
  if (!requireRealServers(t, 'nginx', 'curl')) return;
  const pki = makePki();
  t.after(() => pki.cleanup());
  fs.chmodSync(pki.dir, 0o755);
  const pub = pki.leaf('www-public', ['www.a.test']);
  const internal = pki.leaf('web-internal', ['web.internal']);
  const nginx = await startNginx({
    host: NGINX, port: 0, httpsPort: 443, name: 'web', http2: true,
    cert: { dir: pki.dir, certPath: internal.cert, keyPath: internal.key, cert: internal.pem, key: fs.readFileSync(internal.key, 'utf8'), cn: 'web.internal', dnsNames: ['web.internal'], cleanup: async () => {} },
  });
  t.after(() => nginx.stop());
  const port = await reservePort(LB);
  const app = await startTestApp(`{
    listeners: [{ name: "https", listen: "${LB}:${port}", upstream: "web",
      tls: { certificates: [{ cert: "${pub.cert}", key: "${pub.key}" }], alpn: ["h2", "http/1.1"] } }],
    upstreams: { web: { servers: ["${NGINX}:443"], tls: { ca: "${pki.caFile}", servername: "web.internal" } } },
  }`);
  t.after(() => app.stopNow());
  const base = ['--cacert', pki.caFile, '--resolve', `www.a.test:${port}:${LB}`];
  // Lines of requests that came through tcplb (the fixture's own readiness probe sends none with this SNI).
  const access = (): string[] => fs.readFileSync(nginx.accessLogPath, 'utf8').trim().split('\n').filter((l) => l.includes('sni=web.internal'));

  const h2 = await curl([...base, '--http2', `https://www.a.test:${port}/`]);
  assert.equal(h2.code, 0, h2.out);
  assert.match(h2.out, /ALPN: server accepted h2/, h2.out);
  assert.match(h2.out, /subject: CN=www\.a\.test/, 'the client got tcplb\'s public certificate');
  assert.match(h2.out, /^< HTTP\/2 200/m);
  assert.match(h2.out, /^< x-backend: web/m);
  assert.match(h2.out, /^web ok$/m);
  await waitFor(access, { what: 'nginx logging the h2 request', until: (l) => l.length >= 1 });
  assert.match(access()[0]!, /"GET \/ HTTP\/2\.0" 200 \d+ HTTP\/2\.0 alpn=h2 sni=web\.internal$/, 'nginx got h2 by ALPN from tcplb');

  const h1 = await curl([...base, '--http1.1', `https://www.a.test:${port}/`]);
  assert.equal(h1.code, 0, h1.out);
  assert.match(h1.out, /ALPN: server accepted http\/1\.1/, h1.out);
  assert.match(h1.out, /^< HTTP\/1\.1 200/m);
  await waitFor(access, { what: 'nginx logging the HTTP/1.1 request', until: (l) => l.length >= 2 });
  assert.match(access()[1]!, /"GET \/ HTTP\/1\.1" 200 \d+ HTTP\/1\.1 alpn=http\/1\.1 sni=web\.internal$/);

  // A 1 MiB body over h2 arrives intact (flow control through both TLS hops).
  const file = path.join(pki.dir, '1m.out');
  const big = await curl([...base, '--http2', '-o', file, `https://www.a.test:${port}/1m`]);
  assert.equal(big.code, 0, big.out);
  const got = fs.readFileSync(file);
  assert.equal(got.length, NGINX_FILE_1M);
  assert.ok(got.equals(patternBytes(NGINX_FILE_1M)));
});
