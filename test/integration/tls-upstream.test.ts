/**
 * Re-encryption to the backend (`upstreams.X.tls`): tcplb speaks TLS to a
 * real `openssl s_server`, verifying its certificate against the configured
 * CA and server name. A backend whose certificate another CA signed fails
 * the connect (the client is closed `connect_failed`, the log names
 * `L6_VERIFY`) and its health check (status L6_VERIFY), while the good one
 * relays and probes L6_OK.
 *
 * Addresses of THIS file: 127.0.0.114 (good s_server), 127.0.0.115 (rogue
 * s_server), tcplb on 127.0.0.1. Needs openssl: without it the test skips
 * loudly, or fails when CI=true.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireBinary } from '../fixtures/real/available.js';
import type { CertFiles } from '../fixtures/real/cert.js';
import { startSServer } from '../fixtures/real/s-server.js';
import { makePki, type Leaf } from '../fixtures/pki.js';
import { startTestApp } from '../helpers/app.js';
import { connect, readLine, reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const GOOD = '127.0.0.114';
const ROGUE = '127.0.0.115';

function certFiles(l: Leaf, name: string, dir: string): CertFiles {
  return { dir, certPath: l.cert, keyPath: l.key, cert: l.pem, key: '', cn: name, dnsNames: [name], cleanup: async () => {} };
}

test('upstream tls: a verified backend relays and probes L6_OK; one signed by another CA fails connect and check with L6_VERIFY', { timeout: 60_000 }, async (t) => {
  if (!requireBinary('openssl', t)) return;
  const pki = makePki();
  t.after(() => pki.cleanup());
  const goodLeaf = pki.leaf('smtp-good', ['smtp.internal']);
  const rogueLeaf = pki.leaf('smtp-rogue', ['smtp.internal'], 30, 'other');
  const goodPort = await reservePort(GOOD);
  const roguePort = await reservePort(ROGUE);
  const good = await startSServer({ host: GOOD, port: goodPort, mode: 'rev', cert: certFiles(goodLeaf, 'smtp.internal', pki.dir) });
  t.after(() => good.stop());
  const rogue = await startSServer({ host: ROGUE, port: roguePort, mode: 'rev', cert: certFiles(rogueLeaf, 'smtp.internal', pki.dir) });
  t.after(() => rogue.stop());

  const pGood = await reservePort();
  const pRogue = await reservePort();
  const app = await startTestApp(`{
    listeners: [
      { name: "good", listen: "127.0.0.1:${pGood}", upstream: "good" },
      { name: "rogue", listen: "127.0.0.1:${pRogue}", upstream: "rogue" },
    ],
    upstreams: {
      good: { servers: ["${GOOD}:${goodPort}"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" },
              check: { type: "tcp", interval: "1s", timeout: "2s" } },
      // Without a check: it starts up, so clients are sent to it and the connect itself must refuse it.
      rogue: { servers: ["${ROGUE}:${roguePort}"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" } },
      rogueChecked: { servers: ["${ROGUE}:${roguePort}"], tls: { ca: "${pki.caFile}", servername: "smtp.internal" },
                      check: { type: "tcp", interval: "1s", timeout: "2s" } },
    },
  }`);
  t.after(() => app.stopNow());

  const goodId = `good/${GOOD}:${goodPort}`;
  const rogueId = `rogueChecked/${ROGUE}:${roguePort}`;
  const goodProbe = (await waitFor(() => app.runtime.backend(goodId)?.lastProbe, { what: "a probe of the good backend", timeoutMs: 10_000 }))!;
  assert.equal(goodProbe.status, 'L6_OK', goodProbe.detail);
  const rogueProbe = (await waitFor(() => app.runtime.backend(rogueId)?.lastProbe, { what: "a probe of the rogue backend", timeoutMs: 10_000 }))!;
  assert.equal(rogueProbe.status, 'L6_VERIFY', rogueProbe.detail);
  assert.match(rogueProbe.detail, /not trusted/);

  // Through the good one, s_server -rev answers each line reversed: the bytes went through TLS both ways.
  const c = await connect(pGood);
  c.write('hello tls\n');
  assert.equal(await readLine(c, 10_000), 'slt olleh');
  c.destroy();

  // The rogue one: the client is closed without a byte, the failed connect names L6_VERIFY.
  const r = await connect(pRogue);
  await new Promise((resolve) => r.once('end', resolve).once('close', resolve).resume());
  r.destroy();
  const rec = (await waitFor(() => app.records.find((x) => x.listener === 'rogue'), { what: 'the rogue session record' }))!;
  assert.equal(rec.reason, 'connect_failed');
  assert.equal(rec.bytesOut, 0);
  assert.ok(app.lines.some((l) => /connect to rogue\/127\.0\.0\.115:\d+ failed: L6_VERIFY unable to verify the first certificate/.test(l)), app.lines.join('\n'));
});

