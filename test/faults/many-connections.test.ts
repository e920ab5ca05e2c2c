/**
 * Fault 4: 9,000 concurrent connections through one listener, and 14,000
 * with `workers: 2`. The proxy is a real child process (9,000 connections
 * hold 18,000 descriptors: client + backend side; with two workers each
 * holds its share), the backend an idle-accepting Node child that greets
 * with one byte, and the clients two child processes (the per-process
 * open-files limit is 20,000). Every connection must relay the greeting byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';
import { backendReport, lo, sleep, treeUsage, startBackend, startClients, startProxy, tmpDir, writeConfig, type NodeChild } from './helpers.js';

const HOST = lo(58);

interface Done {
  done: true;
  greeted: number;
  failed: number;
  errors: Record<string, number>;
  ms: number;
}

for (const { workers, TOTAL } of [
  { workers: 1, TOTAL: 9000 },
  { workers: 2, TOTAL: 14000 },
]) {
  const PER_CHILD = TOTAL / 2;
  test(`${TOTAL} concurrent connections through one listener (workers: ${workers}) all relay a greeting byte; RSS per connection`, { timeout: 120_000 }, async (t) => {
    const be = await startBackend('idle', HOST);
    t.after(() => be.kill());
    const dir = tmpDir('many');
    const port = await reservePort(HOST);
    const file = writeConfig(
      dir,
      `{
      workers: ${workers},
      listeners: [{ listen: "${HOST}:${port}", upstream: "b", maxConnections: 0, idleTimeout: "10m" }],
      upstreams: { b: { servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
      log: { access: null },
    }`,
    );
    // `workers` is a JavaScript-engine setting: that variant runs the js engine in every pass.
    const engineEnv = process.env.TCPLB_ENGINE;
    if (workers > 1) process.env.TCPLB_ENGINE = 'js';
    const px = await startProxy(file).finally(() => {
      if (engineEnv === undefined) delete process.env.TCPLB_ENGINE;
      else process.env.TCPLB_ENGINE = engineEnv;
    });
    t.after(() => px.kill());
    // Idle baseline once every worker is up (they start after the primary says "serving").
    const procs = workers === 1 ? 1 : workers + 1;
    await waitFor(() => treeUsage(px.pid).fds.filter((n) => n > 0).length, { what: `${procs} proxy processes with descriptors`, timeoutMs: 5000, until: (n) => n >= procs });
    const idle = treeUsage(px.pid);
    const before = idle.rss;
    assert.equal(idle.fds.length, workers === 1 ? 1 : workers + 1, 'one process, or a primary and its workers');

    const t0 = Date.now();
    const crowds: NodeChild[] = [startClients(HOST, port, PER_CHILD, lo(59), 200), startClients(HOST, port, PER_CHILD, lo(60), 200)];
    t.after(() => Promise.all(crowds.map((c) => c.kill())));
    const results = await Promise.all(crowds.map((c) => c.next<Done>((m) => m.done === true, 90_000)));
    const openMs = Date.now() - t0;
    await sleep(500); // part of the measurement: RSS is read once the heap settled after the burst (no event for that)
    const after = treeUsage(px.pid);
    const fds = after.fds.reduce((n, x) => n + x, 0);
    const rep = await backendReport(be);

    const greeted = results.reduce((n, r) => n + r.greeted, 0);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    const errors = results.map((r) => r.errors);
    const perConn = ((after.rss - before) * 1024) / TOTAL;
    console.log(
      `${TOTAL} connections: ${greeted} greeted, ${failed} failed ${JSON.stringify(errors)} in ${(openMs / 1000).toFixed(1)} s; ` +
        `proxy RSS (all processes) ${before.toFixed(1)} MB idle -> ${after.rss.toFixed(1)} MB = ${perConn.toFixed(1)} KB per connection; ` +
        `proxy fds ${idle.fds.join('+')} -> ${after.fds.join('+')}; backend holds ${rep.open}`,
    );
    assert.equal(failed, 0, `failures: ${JSON.stringify(errors)}`);
    assert.equal(greeted, TOTAL);
    assert.equal(rep.open, TOTAL, 'backend does not hold one connection per client');
    assert.ok(fds >= 2 * TOTAL, `proxy holds ${fds} descriptors, expected >= ${2 * TOTAL}`);
    assert.ok(px.child.exitCode === null, 'proxy exited');
  });
}
