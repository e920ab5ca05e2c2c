/**
 * import-nginx and TLS (#16): `listen … ssl` with ssl_certificate,
 * ssl_certificate_key and ssl_protocols becomes the listener's `tls`, in
 * both dialects' stream/tcp blocks, server level overriding the block's;
 * what cannot be carried over is noted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importNginx } from '../../../src/import/index.js';
import { loadConfigText } from '../../../src/config/load.js';
import { makePki } from '../../fixtures/pki.js';

const pki = makePki();
process.on('exit', () => pki.cleanup());

async function importText(text: string): Promise<{ json5: string; warnings: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-import-tls-'));
  try {
    await writeFile(join(dir, 'nginx.conf'), text);
    return await importNginx(join(dir, 'nginx.conf'), { now: new Date('2024-05-01T12:00:00Z') });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('stream listen … ssl: the certificate pairs, in order, and minVersion from ssl_protocols become tls; the config loads with the real files', async () => {
  const rsa = pki.leaf('imp-a', ['mail.a.test']);
  const ec = pki.leaf('imp-b', ['mail.b.test']);
  const { json5, warnings } = await importText(`
stream {
  upstream imap { server 10.0.0.2:143; server 10.0.0.3:143; }
  ssl_certificate ${rsa.cert};
  ssl_certificate_key ${rsa.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  server { listen 993 ssl; proxy_pass imap; }
  server {
    listen 995 ssl;
    proxy_pass imap;
    ssl_certificate ${ec.cert};
    ssl_certificate_key ${ec.key};
    ssl_certificate ${rsa.cert};
    ssl_certificate_key ${rsa.key};
    ssl_protocols TLSv1 TLSv1.1 TLSv1.3;
  }
  server { listen 143; proxy_pass imap; }
}`);
  const r = loadConfigText(json5, '');
  assert.ok(r.ok, `${JSON.stringify(!r.ok && r.issues)}\n${json5}`);
  const [l993, l995, l143] = [993, 995, 143].map((p) => r.config.listeners.find((l) => l.listen.port === p)!);
  assert.deepEqual(l993!.tls!.certificates.map((c) => c.certFile), [rsa.cert]);
  assert.equal(l993!.tls!.minVersion, 'TLSv1.2');
  assert.deepEqual(l995!.tls!.certificates.map((c) => [c.certFile, c.keyFile]), [[ec.cert, ec.key], [rsa.cert, rsa.key]], "the server's own pairs replace the block's, in order");
  assert.equal(l995!.tls!.minVersion, 'TLSv1.3', 'TLSv1 and TLSv1.1 are not offered: the lowest tcplb has');
  assert.equal(l143!.tls, undefined, 'a listen without ssl stays plain');
  assert.deepEqual(warnings.map((w) => w.replace(/^.*nginx\.conf:/, '')), ['15: not translated: TLSv1 TLSv1.1 (in "ssl_protocols TLSv1 TLSv1.1 TLSv1.3;") -- tcplb\'s lowest TLS version is TLSv1.2']);
  assert.match(json5, /TLS terminated here \(nginx: listen … ssl\)/);
});

test('certificate files absent on the importing machine still import (they live on the balancer); missing pieces are noted, not guessed', async () => {
  const { json5, warnings } = await importText(`
stream {
  server { listen 465 ssl; proxy_pass 10.0.0.2:465; ssl_certificate /etc/letsencrypt/live/x/fullchain.pem; ssl_certificate_key /etc/letsencrypt/live/x/privkey.pem; }
  server { listen 443 ssl; proxy_pass 10.0.0.5:443; }
  server { listen 8443 ssl; proxy_pass 10.0.0.5:443; ssl_certificate a.pem; ssl_certificate_key a.key; ssl_certificate b.pem; }
  server { listen 2222; proxy_pass 10.0.0.22:22; ssl_certificate /etc/ssl/c.pem; }
}`);
  assert.match(json5, /tls: \{\n\s+\/\/ from ssl_certificate \/etc\/letsencrypt\/live\/x\/fullchain\.pem;.*\n\s+certificates: \[\{ cert: "\/etc\/letsencrypt\/live\/x\/fullchain\.pem", key: "\/etc\/letsencrypt\/live\/x\/privkey\.pem" \}\]/);
  const w = warnings.map((x) => x.replace(/^.*nginx\.conf:/, ''));
  assert.ok(w.some((x) => /^4: not translated: ssl \(in "listen 443 ssl;"\) -- ssl without ssl_certificate/.test(x)), w.join('\n'));
  assert.ok(w.some((x) => /^5: not translated: ssl \(in "listen 8443 ssl;"\) -- 2 ssl_certificate but 1 ssl_certificate_key/.test(x)), w.join('\n'));
  assert.ok(w.some((x) => /^6: not translated: ssl_certificate \/etc\/ssl\/c\.pem; -- tcplb is L4 and does not terminate TLS on a listen without ssl/.test(x)), w.join('\n'));
  assert.equal(w.length, 3, w.join('\n'));
});
