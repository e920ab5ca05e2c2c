/**
 * Descriptor hygiene under churn: 100,000 short connections through the
 * proxy (20,000 on the JavaScript engine, which is four times slower), 50
 * at a time, each reading the backend's one-byte greeting and closing. The
 * proxy's open descriptors (`ls /proc/PID/fd`) must come back to where they
 * were, and every connection must have been served.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reservePort } from '../helpers/net.js';
import { waitForSteady, waitUntil } from '../helpers/wait.js';
import { fdCount, lo, nodeChild, startBackend, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(61);
const native = process.env.TCPLB_ENGINE === 'native';
const TOTAL = native ? 100_000 : 20_000;

// Connect, wait for one byte, close; CONCURRENCY at a time. No local address
// is bound: connect()'s own port choice may reuse TIME_WAIT ports on
// loopback (tcp_tw_reuse), where a bind() to a fixed address would scan an
// ever fuller port range.
const CHURN = `
import net from 'node:net';
const [host, port, total, conc] = process.argv.slice(1);
const N = Number(total), C = Number(conc);
let started = 0, pending = 0, ok = 0, failed = 0;
const errors = {};
const t0 = Date.now();
function one() {
  started++; pending++;
  const s = net.connect({ host, port: Number(port) });
  let done = false;
  const settle = (good, why) => {
    if (done) return;
    done = true; pending--;
    if (good) ok++; else { failed++; errors[why] = (errors[why] || 0) + 1; }
    s.destroy();
    next();
  };
  s.once('data', () => settle(true));
  s.on('error', (e) => settle(false, e.code || e.message));
  s.on('close', () => settle(false, 'closed before the greeting'));
}
function next() {
  while (started < N && pending < C) one();
  if (started === N && pending === 0) process.stdout.write(JSON.stringify({ done: true, ok, failed, errors, ms: Date.now() - t0 }) + '\\n');
}
next();
`;

test(`${TOTAL.toLocaleString('en-US')} short connections leave no descriptor behind`, { timeout: 150_000 }, async (t) => {
  const be = await startBackend('idle', HOST);
  t.after(() => be.kill());
  const dir = tmpDir('fds');
  const port = await reservePort(HOST);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b" }],
    upstreams: { b: { servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
    log: { access: null },
  }`,
  );
  const px = await startProxy(file);
  t.after(() => px.kill());
  // The baseline once start-up has settled (no event says so: the count stops moving).
  const before = await waitForSteady(() => fdCount(px.pid), { what: 'the proxy\'s descriptor count after start', quietMs: 150 });
  const c = nodeChild(CHURN, [HOST, String(port), String(TOTAL), '50']);
  t.after(() => c.kill());
  const r = await c.next<{ ok: number; failed: number; errors: Record<string, number>; ms: number }>((m) => m.done === true, 140_000);
  // Closes propagate to the backend side asynchronously: wait for the count to come back (the assertion below reports if not).
  await waitUntil(() => fdCount(px.pid), { what: 'descriptors back to the baseline', timeoutMs: 4000, intervalMs: 50, until: (n) => n <= before });
  const after = fdCount(px.pid);
  console.log(`fd hygiene (${process.env.TCPLB_ENGINE ?? 'auto'}): ${r.ok} served, ${r.failed} failed ${JSON.stringify(r.errors)} in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.ok / (r.ms / 1000))}/s); proxy descriptors ${before} before, ${after} after`);
  assert.equal(r.failed, 0, `failures: ${JSON.stringify(r.errors)}`);
  assert.equal(r.ok, TOTAL);
  assert.equal(after, before, `the proxy holds ${after - before} more descriptors than before`);
  assert.equal(px.child.exitCode, null, 'proxy exited');
});
