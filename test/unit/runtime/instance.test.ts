/**
 * Readiness (`tcplb-console health`) and `ctl explain`: what keepalived and
 * ExaBGP read, and how instances of one config are compared.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';
import type { ProbeResult } from '../../../src/core/types.js';
import { backendDigest, explain, formatExplanation, type Explanation } from '../../../src/runtime/explain.js';
import { InstanceStatus, readiness } from '../../../src/runtime/instance.js';
import { Runtime } from '../../../src/runtime/store.js';

const pass: ProbeResult = { ok: true, status: 'L4_OK', latencyMs: 1, detail: 'connected' };
const fail: ProbeResult = { ok: false, status: 'L4_REFUSED', latencyMs: 1, detail: 'connection refused' };

function config(extra = '', servers = '"10.0.0.2:143", "10.0.0.3:143"'): Config {
  const res = loadConfigText(
    `{ listeners: [{ name: "imap", listen: "127.0.0.1:7000", upstream: "imap" }, { name: "web", listen: "127.0.0.1:7001", upstream: "web" }],
       upstreams: {
         imap: { balance: "ip_hash", check: { type: "tcp" }, servers: [${servers}] },
         web: { servers: ["10.0.1.2:80"] },
       }, ${extra} }`,
    '/tmp/x.json5',
  );
  assert.ok(res.ok, JSON.stringify(!res.ok && res.issues));
  return res.config;
}

test('readiness: not ready until a required upstream has a backend seen up; standby, leaving and stopping say so', () => {
  const c = config();
  const r = new Runtime(c);
  const s = new InstanceStatus();
  // Not probed yet: routed to optimistically, but it does not make the instance ready.
  assert.deepEqual(readiness(c, r, s), { ready: false, why: 'not ready: upstream imap has no usable backend (2 not probed yet)' });
  r.applyProbe('imap/10.0.0.2:143', fail);
  r.applyProbe('imap/10.0.0.3:143', pass);
  assert.deepEqual(readiness(c, r, s), { ready: true, why: 'ready: imap 1/2, web 1/1 usable' });
  r.setAdmin('imap/10.0.0.3:143', 'drain', 'operator', 'drain');
  assert.match(readiness(c, r, s).why, /^not ready: upstream imap has no usable backend \(1 DOWN, 1 DRAINING\)$/);
  r.setAdmin('imap/10.0.0.3:143', 'ready', 'operator', 'enable');

  assert.equal(s.setStandby(true, 'ctl (user alice, pid 42)', new Date(2026, 0, 1, 12, 0, 3).getTime()), true);
  assert.equal(s.setStandby(true, 'console'), false, 'already in standby: no change');
  assert.deepEqual(readiness(c, r, s), { ready: false, why: 'not ready: standby since 12:00:03 by ctl (user alice, pid 42)' });
  s.setStandby(false, 'console');
  assert.equal(readiness(c, r, s).ready, true);
  s.leavingUntil = 10_000;
  assert.deepEqual(readiness(c, r, s, 7_500), { ready: false, why: 'not ready: leaving (SIGTERM): stops accepting in 3 s' });
  s.stopping = true;
  assert.deepEqual(readiness(c, r, s, 7_500), { ready: false, why: 'not ready: shutting down' });
});

test('readiness: health.require limits the upstreams that count', () => {
  const c = config('health: { require: ["web"] },');
  const r = new Runtime(c);
  assert.deepEqual(readiness(c, r, new InstanceStatus()), { ready: true, why: 'ready: web 1/1 usable' }, 'imap is not probed yet, and not required');
  r.setAdmin('web/10.0.1.2:80', 'disabled', 'operator', 'disable');
  assert.equal(readiness(c, r, new InstanceStatus()).why, 'not ready: upstream web has no usable backend (1 DISABLED)');
});

test('config: health.require names upstreams (a typo is an error at its place), instance and leaveDelay are checked', () => {
  const bad = loadConfigText(`{ listeners: [{ listen: "127.0.0.1:7000", upstream: "imap" }], upstreams: { imap: { servers: ["10.0.0.2:143"] } },\n  health: { require: ["imap", "imapp"] }, instance: "lb 1", leaveDelay: "20m" }`, '/tmp/x.json5');
  assert.ok(!bad.ok);
  const msgs = bad.issues.map((i) => `${i.line}:${i.column}: ${i.message}`);
  assert.ok(msgs.some((m) => /^2:31: health\.require\[1\]: no upstream named "imapp" \(did you mean "imap"\?\)/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /instance: must be 1-64 of A-Z a-z 0-9 _ \. -/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /leaveDelay: /.test(m)), msgs.join('\n'));
  const c = config('leaveDelay: "3s", instance: "lb1"');
  assert.equal(c.leaveDelayMs, 3000);
  assert.equal(c.instance, 'lb1');
  assert.equal(c.health.require, null);
  assert.match(config().instance, /^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'default: the host name, as a valid name');
});

/** 10,000 distinct client addresses, IPv4 and IPv6. */
function clients(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 9000; i++) out.push(`198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  for (let i = 0; i < 1000; i++) out.push(`2001:db8::${i.toString(16)}`);
  return out;
}

test('explain: three instances of one config choose alike for 10,000 clients; a drain on all moves only the drained backend\'s clients, alike', () => {
  const servers = '"10.0.0.2:143", "10.0.0.3:143", { address: "10.0.0.4:143", weight: 2 }, { address: "10.0.0.9:143", backup: true }';
  const instances = [0, 1, 2].map(() => {
    const c = config('', servers);
    const r = new Runtime(c);
    // Probed in a different order on each instance: order must not matter.
    const ids = r.backendsOf('imap').map((b) => b.id);
    for (const id of ids.sort(() => Math.random() - 0.5)) r.applyProbe(id, pass);
    r.flushRoutes();
    return { c, r };
  });
  const choose = (i: { c: Config; r: Runtime }): string[] => clients().map((ip) => (explain(i.c, i.r, ip, 'imap') as Explanation).chosen!);
  const before = instances.map(choose);
  assert.deepEqual(before[1], before[0]);
  assert.deepEqual(before[2], before[0]);
  // The weighted one gets about twice the others' share; the backup none while primaries are usable.
  const share = (id: string): number => before[0]!.filter((x) => x === id).length;
  assert.ok(share('imap/10.0.0.4:143') > 1.6 * share('imap/10.0.0.2:143'), `weights: ${share('imap/10.0.0.4:143')} vs ${share('imap/10.0.0.2:143')}`);
  assert.equal(share('imap/10.0.0.9:143'), 0);
  const digests = instances.map((i) => (explain(i.c, i.r, '192.0.2.1', 'imap') as Explanation).digest);
  assert.equal(new Set(digests).size, 1);

  for (const i of instances) i.r.setAdmin('imap/10.0.0.3:143', 'drain', 'operator', 'drain');
  for (const i of instances) i.r.flushRoutes();
  const after = instances.map(choose);
  assert.deepEqual(after[1], after[0]);
  assert.deepEqual(after[2], after[0]);
  let moved = 0;
  before[0]!.forEach((b, k) => {
    if (b === 'imap/10.0.0.3:143') {
      assert.notEqual(after[0]![k], b);
      moved++;
    } else assert.equal(after[0]![k], b, `client ${clients()[k]} moved off ${b} although it was not drained`);
  });
  assert.ok(moved > 1500, `the drained backend had ${moved} clients`);
  // The digest tells instances that disagree apart.
  assert.notEqual((explain(instances[0]!.c, instances[0]!.r, '192.0.2.1', 'imap') as Explanation).digest, digests[0]);
});

test('explain: the ranking, the chosen backend, backups last resort; errors name what is wrong', () => {
  const c = config('', '"10.0.0.2:143", { address: "10.0.0.9:143", backup: true }');
  const r = new Runtime(c);
  r.applyProbe('imap/10.0.0.2:143', fail);
  r.applyProbe('imap/10.0.0.9:143', pass);
  r.flushRoutes();
  const e = explain(c, r, '203.0.113.7', undefined) as Explanation;
  assert.equal(e.listener, 'imap', 'default: the first listener');
  assert.equal(e.chosen, 'imap/10.0.0.9:143', 'no usable primary: the backup');
  const text = formatExplanation(e);
  assert.match(text, /^client 203\.0\.113\.7 on listener imap -> upstream imap \(ip_hash\)\n  goes to imap\/10\.0\.0\.9:143\n/);
  assert.match(text, /imap\/10\.0\.0\.2:143 +weight 1 +not usable \(DOWN\)/);
  assert.match(text, /backend set: 2 backends, 1 usable, digest [0-9a-f]{8}$/);
  const web = explain(c, r, '203.0.113.7', 'web') as Explanation;
  assert.equal(web.chosen, undefined);
  assert.match(formatExplanation(web), /round_robin does not rank by client/);
  assert.deepEqual(explain(c, r, 'nobody', 'imap'), { error: '"nobody" is not an IP address (explain CLIENT [LISTENER], e.g. explain 203.0.113.7 imap)' });
  assert.deepEqual(explain(c, r, '203.0.113.7', 'imapp'), { error: 'no listener named "imapp" (one of imap, web)' });
  assert.notEqual(backendDigest([{ id: 'a', weight: 1, backup: false, usable: true, state: 'UP' }]), backendDigest([{ id: 'a', weight: 2, backup: false, usable: true, state: 'UP' }]));
});
