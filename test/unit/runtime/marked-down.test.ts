/** onMarkedDown: which transitions close a backend's open sessions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { EndReason, ProbeResult } from '../../../src/core/types.js';
import { followMarkedDown } from '../../../src/runtime/marked-down.js';
import { Runtime } from '../../../src/runtime/store.js';

const pass: ProbeResult = { ok: true, status: 'L4_OK', latencyMs: 1, detail: 'connected' };
const fail: ProbeResult = { ok: false, status: 'L4_REFUSED', latencyMs: 1, detail: 'connection refused' };

/** Upstream `s` (shutdown) and `k` (keep), one checked server each; an engine that counts kills. */
function setup(open = 2) {
  const res = loadConfigText(
    `{ listeners: [{ listen: "127.0.0.1:7000", upstream: "s" }],
       upstreams: {
         s: { onMarkedDown: "shutdown", check: { type: "tcp", rise: 1, fall: 1 }, servers: ["127.0.0.2:1"] },
         k: { check: { type: "tcp", rise: 1, fall: 1 }, servers: ["127.0.0.3:1"] } } }`,
    '/tmp/x.json5',
  );
  assert.ok(res.ok);
  const runtime = new Runtime(res.config);
  const kills: string[] = [];
  const warnings: string[] = [];
  const engine = {
    killBackend(id: string, reason: EndReason): number {
      kills.push(`${id} ${reason}`);
      return open;
    },
  };
  const stop = followMarkedDown(runtime, engine, (m) => warnings.push(m));
  return { runtime, kills, warnings, stop };
}
const S = 's/127.0.0.2:1';
const K = 'k/127.0.0.3:1';

test('checks marking a "shutdown" backend DOWN close its sessions (backend_down) and say how many', () => {
  const { runtime, kills, warnings } = setup();
  runtime.applyProbe(S, pass);
  runtime.applyProbe(S, fail);
  assert.deepEqual(kills, [`${S} backend_down`]);
  assert.deepEqual(warnings, [`${S}: closed 2 open connections (onMarkedDown: shutdown)`]);
  runtime.close();
});

test('a "keep" upstream keeps its sessions when checks mark it DOWN', () => {
  const { runtime, kills } = setup();
  runtime.applyProbe(K, pass);
  runtime.applyProbe(K, fail);
  assert.equal(runtime.backend(K)!.op, 'down');
  assert.deepEqual(kills, []);
  runtime.close();
});

test('only a probe verdict triggers it: passive failures, drain and disable leave sessions alone', () => {
  const { runtime, kills } = setup();
  runtime.applyProbe(S, pass);
  runtime.connectFailed(S, 'connection refused'); // maxFails 1: passive DOWN
  assert.equal(runtime.backend(S)!.passiveUntil > 0, true);
  runtime.setAdmin(S, 'drain', 'operator', 'drain by test');
  runtime.setAdmin(S, 'disabled', 'operator', 'disable by test');
  assert.deepEqual(kills, []);
  runtime.close();
});

test('nothing to close is not logged; the returned function stops the policy', () => {
  const { runtime, kills, warnings, stop } = setup(0);
  runtime.applyProbe(S, pass);
  runtime.applyProbe(S, fail);
  assert.equal(kills.length, 1);
  assert.deepEqual(warnings, []);
  stop();
  runtime.applyProbe(S, pass);
  runtime.applyProbe(S, fail);
  assert.equal(kills.length, 1);
  runtime.close();
});
