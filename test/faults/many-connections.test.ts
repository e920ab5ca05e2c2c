/**
 * Fault 4: 9,000 concurrent connections through one listener. The proxy is
 * a real child process (18,000 descriptors: client + backend side), the
 * backend an idle-accepting Node child that greets with one byte, and the
 * clients two child processes of 4,500 connections each (the per-process
 * open-files limit is 20,000). Every connection must relay the greeting byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../helpers/net.js';
import { backendReport, fdCount, lo, memOf, sleep, startBackend, startClients, startProxy, tmpDir, writeConfig, type NodeChild } from './helpers.js';

const HOST = lo(58);
const TOTAL = 9000;
const PER_CHILD = TOTAL / 2;

interface Done {
  done: true;
  greeted: number;
  failed: number;
  errors: Record<string, number>;
  ms: number;
}

test(`${TOTAL} concurrent connections through one listener all relay a greeting byte; RSS per connection`, { timeout: 120_000 }, async (t) => {
  const be = await startBackend('idle', HOST);
  t.after(() => be.kill());
  const dir = tmpDir('many');
  const port = await freePort(HOST);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", maxConnections: 0, idleTimeout: "10m" }],
    upstreams: { b: { servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
    log: { access: null },
  }`,
  );
  const px = await startProxy(file);
  t.after(() => px.kill());
  await sleep(300);
  const before = memOf(px.pid).rss;
  const fdsBefore = fdCount(px.pid);

  const t0 = Date.now();
  const crowds: NodeChild[] = [startClients(HOST, port, PER_CHILD, lo(59), 200), startClients(HOST, port, PER_CHILD, lo(60), 200)];
  t.after(() => Promise.all(crowds.map((c) => c.kill())));
  const results = await Promise.all(crowds.map((c) => c.next<Done>((m) => m.done === true, 90_000)));
  const openMs = Date.now() - t0;
  await sleep(500); // let the proxy's heap settle after the burst
  const after = memOf(px.pid);
  const fds = fdCount(px.pid);
  const rep = await backendReport(be);

  const greeted = results.reduce((n, r) => n + r.greeted, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const errors = results.map((r) => r.errors);
  const perConn = ((after.rss - before) * 1024) / TOTAL;
  console.log(
    `${TOTAL} connections: ${greeted} greeted, ${failed} failed ${JSON.stringify(errors)} in ${(openMs / 1000).toFixed(1)} s; ` +
      `proxy RSS ${before.toFixed(1)} MB idle -> ${after.rss.toFixed(1)} MB (peak ${after.hwm.toFixed(1)} MB) = ${perConn.toFixed(1)} KB per connection; ` +
      `proxy fds ${fdsBefore} -> ${fds}; backend holds ${rep.open}`,
  );
  assert.equal(failed, 0, `failures: ${JSON.stringify(errors)}`);
  assert.equal(greeted, TOTAL);
  assert.equal(rep.open, TOTAL, 'backend does not hold one connection per client');
  assert.ok(fds >= 2 * TOTAL, `proxy holds ${fds} descriptors, expected >= ${2 * TOTAL}`);
  assert.ok(px.child.exitCode === null, 'proxy exited');
});
