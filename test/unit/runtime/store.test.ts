/** The runtime store: probe verdicts, passive failures and the routing table they produce. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { ProbeResult } from '../../../src/core/types.js';
import { Runtime } from '../../../src/runtime/store.js';
import { waitFor } from '../../helpers/wait.js';

function runtime(check = 'check: { type: "tcp", rise: 2, fall: 3 },'): Runtime {
  const res = loadConfigText(
    `{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }],
       upstreams: { u: { ${check} servers: ["127.0.0.2:1", "127.0.0.3:1"] } } }`,
    '/tmp/x.json5',
  );
  assert.ok(res.ok);
  return new Runtime(res.config);
}
const pass: ProbeResult = { ok: true, status: 'L4_OK', latencyMs: 1, detail: 'connected' };
const fail: ProbeResult = { ok: false, status: 'L4_REFUSED', latencyMs: 1, detail: 'connection refused' };
const usable = (r: Runtime) => r.routes.upstreams.get('u')!.backends.map((b) => b.usable);

test('without checks backends start UP; with checks UNKNOWN, tried all while none is known', () => {
  assert.deepEqual(usable(runtime('')), [true, true]);
  const r = runtime();
  assert.deepEqual(r.backends().map((b) => b.op), ['unknown', 'unknown']);
  assert.deepEqual(usable(r), [true, true], 'nothing known yet: try them as without checks');
  r.applyProbe('u/127.0.0.2:1', pass);
  assert.deepEqual(usable(r), [true, false], 'one known: unknown ones get no new connections');
});

test('the first probe decides; then rise passes / fall failures flip, with events', () => {
  const r = runtime();
  const ev: string[] = [];
  r.bus.on('transition', (e) => ev.push(`${e.backend} ${e.from}->${e.to} ${e.cause}`));
  const probes: string[] = [];
  r.bus.on('probe', (e) => probes.push(e.transition));
  const a = 'u/127.0.0.2:1';
  r.applyProbe(a, fail);
  assert.deepEqual(ev, [`${a} UNKNOWN->DOWN probe`]);
  r.applyProbe(a, pass);
  assert.equal(r.backend(a)!.op, 'down', 'rise 2: one pass is not enough');
  assert.equal(r.backend(a)!.passes, 1);
  r.applyProbe(a, pass);
  assert.equal(r.backend(a)!.op, 'up');
  r.applyProbe(a, fail);
  r.applyProbe(a, fail);
  assert.equal(r.backend(a)!.fails, 2);
  r.applyProbe(a, pass); // resets the failure run
  r.applyProbe(a, fail);
  r.applyProbe(a, fail);
  assert.equal(r.backend(a)!.op, 'up');
  r.applyProbe(a, fail);
  assert.equal(r.backend(a)!.op, 'down');
  assert.deepEqual(ev.map((e) => e.split(' ')[1]), ['UNKNOWN->DOWN', 'DOWN->UP', 'UP->DOWN']);
  assert.match(r.backend(a)!.opReason, /3 consecutive failures: connection refused/);
  assert.deepEqual(probes, ['changed', 'pending', 'changed', 'pending', 'pending', 'unchanged', 'pending', 'pending', 'changed']);
  assert.equal(r.backend(a)!.lastProbe?.detail, 'connection refused');
});

test('passive failures and probe results combine into one state', () => {
  const r = runtime('check: { type: "tcp", rise: 1, fall: 1 },');
  const a = 'u/127.0.0.2:1';
  r.applyProbe(a, pass);
  r.applyProbe('u/127.0.0.3:1', pass);
  assert.deepEqual(usable(r), [true, true]);
  r.connectFailed(a, 'connection refused'); // maxFails 1 by default
  assert.deepEqual(usable(r), [false, true], 'passive failure takes it out although the probe said up');
  r.close();
});

/** A config of `n` upstreams u0..u(n-1), one checked server each. */
function many(n: number): Runtime {
  const ups = Array.from({ length: n }, (_, i) => `u${i}: { check: { type: "tcp" }, servers: ["127.0.2.${1 + (i % 200)}:${1000 + i}"] }`).join(',\n');
  const res = loadConfigText(`{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u0" }], upstreams: { ${ups} } }`, '/tmp/x.json5');
  assert.ok(res.ok);
  return new Runtime(res.config);
}
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a state change rebuilds only its own upstream; the others are shared with the last table', async () => {
  const r = many(3);
  const before = r.routes;
  const events: (string[] | 'all')[] = [];
  r.bus.on('routes', (e) => events.push(e.changed === undefined ? 'all' : [...e.changed]));
  r.applyProbe(`u1/127.0.2.2:1001`, fail);
  await nextTurn();
  const after = r.routes;
  assert.notEqual(after, before, 'a new table');
  assert.equal(after.upstreams.get('u0'), before.upstreams.get('u0'), 'u0 untouched');
  assert.equal(after.upstreams.get('u2'), before.upstreams.get('u2'), 'u2 untouched');
  assert.deepEqual(after.upstreams.get('u1')!.backends.map((b) => b.usable), [false]);
  assert.deepEqual(events, [['u1']], 'the engines are told which upstream changed');
});

test('10,000 upstreams: the first round of probes is published as one table, and a probe result costs its own upstream only', async () => {
  const r = many(10_000);
  const tables: number[] = [];
  r.bus.on('routes', (e) => tables.push(e.changed?.size ?? -1));
  const t0 = performance.now();
  for (const b of r.backends()) r.applyProbe(b.id, pass);
  await nextTurn();
  const ms = performance.now() - t0;
  assert.deepEqual(tables, [10_000], 'one table naming every upstream, not 10,000 tables');
  assert.ok(r.backends().every((b) => b.op === 'up'));
  // Quadratic rebuilding took tens of seconds here; linear work is well under one.
  assert.ok(ms < 5000, `${ms.toFixed(0)} ms for 10,000 transitions`);
});

test('an operator action reaches the routing table before the call returns', () => {
  const r = runtime('');
  const seen: boolean[][] = [];
  r.bus.on('routes', (e) => seen.push(e.table.upstreams.get('u')!.backends.map((b) => b.usable)));
  r.setAdmin('u/127.0.0.2:1', 'drain', 'operator', 'drain by test');
  assert.deepEqual(seen, [[false, true]], 'published synchronously');
});


test('a probe that could not run for tcplb\'s own shortage (LOCAL_ERROR) changes no verdict, shows as the last probe, and is logged once a second as tcplb\'s problem', async () => {
  const r = runtime('check: { type: "tcp", rise: 2, fall: 2 },');
  const local: ProbeResult = { ok: false, status: 'LOCAL_ERROR', latencyMs: 0, detail: 'EMFILE: tcplb is out of file descriptors (raise LimitNOFILE / ulimit -n)' };
  const [a, b] = ['u/127.0.0.2:1', 'u/127.0.0.3:1'];
  const transitions: string[] = [];
  const probes: string[] = [];
  const logs: { level: string; msg: string }[] = [];
  r.bus.on('transition', (e) => transitions.push(`${e.backend} ${e.from}->${e.to}`));
  r.bus.on('probe', (e) => probes.push(e.transition));
  r.bus.on('log', (e) => logs.push(e));

  // Before any answer: still UNKNOWN, still "try them all".
  r.applyProbe(a, local);
  assert.equal(r.backend(a)!.op, 'unknown');
  assert.deepEqual(usable(r), [true, true]);

  r.applyProbe(a, pass);
  r.applyProbe(b, pass);
  r.applyProbe(a, fail); // one real failure: 1 of fall 2
  for (let i = 0; i < 50; i++) {
    r.applyProbe(a, local);
    r.applyProbe(b, local);
  }
  assert.deepEqual(transitions, [`${a} UNKNOWN->UP`, `${b} UNKNOWN->UP`], 'no transition for local errors');
  assert.deepEqual([r.backend(a)!.op, r.backend(a)!.fails, r.backend(a)!.passes], ['up', 1, 0], 'the failure count is kept, not raised nor wiped');
  assert.deepEqual([r.backend(b)!.op, r.backend(b)!.fails], ['up', 0]);
  assert.deepEqual(usable(r), [true, true]);
  assert.equal(r.backend(a)!.lastProbe?.status, 'LOCAL_ERROR', 'the console and ctl status show the balancer is the problem');
  assert.deepEqual(new Set(probes.slice(4)), new Set(['unchanged']));

  assert.equal(logs.length, 1, `one line at once, not one per probe: ${JSON.stringify(logs)}`);
  assert.equal(logs[0]!.level, 'error');
  assert.match(logs[0]!.msg, /^health checks: probe of u\/127\.0\.0\.2:1 could not run: EMFILE: tcplb is out of file descriptors.*not the backend's fault/);
  // The summary comes with the next second.
  await waitFor(() => logs.length, { what: 'the summary line of the local errors', timeoutMs: 2500, until: (n) => n >= 2 });
  assert.equal(logs.length, 2);
  assert.match(logs[1]!.msg, /^health checks: 100 more probes could not run in the last second \(EMFILE: tcplb is out of file descriptors/);

  // The next real failure completes the run of 2 that the local errors did not break.
  r.applyProbe(a, fail);
  assert.equal(r.backend(a)!.op, 'down');
  r.close();
});
