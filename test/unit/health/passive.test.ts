/** Passive health decisions (maxFails within failTimeout): pure, fed the time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectFailure, timeoutPassed, type PassiveState } from '../../../src/health/passive.js';

const fresh: PassiveState = { fails: [], until: 0 };
const limits = { maxFails: 3, failTimeoutMs: 10_000 };

test('maxFails 0 counts nothing and never takes a server out', () => {
  assert.deepEqual(connectFailure(fresh, 1000, { maxFails: 0, failTimeoutMs: 10_000 }, 'refused'), { kind: 'off' });
});

test('maxFails failures within failTimeout take the server out for failTimeout, with the reason shown', () => {
  let s: PassiveState = fresh;
  for (const t of [1000, 2000]) {
    const d = connectFailure(s, t, limits, 'connection refused');
    assert.equal(d.kind, 'counted');
    if (d.kind === 'counted') s = { ...s, fails: d.fails };
  }
  const d = connectFailure(s, 3000, limits, 'connection refused');
  assert.deepEqual(d, { kind: 'out', until: 13_000, count: 3, reason: '3 connect failures within 10s (connection refused)' });
});

test('failures older than failTimeout no longer count: a slow trickle never takes a server out', () => {
  let s: PassiveState = fresh;
  for (let t = 0; t < 100_000; t += 6000) {
    const d = connectFailure(s, t, limits, 'timeout');
    assert.equal(d.kind, 'counted', `at ${t} ms`);
    if (d.kind === 'counted') {
      s = { ...s, fails: d.fails };
      assert.ok(d.fails.length <= 2, 'only the failures within the window are kept');
    }
  }
});

test('while a timeout runs, more failures are counted but do not restart it', () => {
  const s: PassiveState = { fails: [5000, 5001], until: 15_000 };
  const d = connectFailure(s, 5002, limits, 'refused');
  assert.deepEqual(d, { kind: 'counted', fails: [5000, 5001, 5002] });
});

test('one failure is enough with maxFails 1, and says so in the singular', () => {
  const d = connectFailure(fresh, 0, { maxFails: 1, failTimeoutMs: 500 }, 'refused');
  assert.equal(d.kind, 'out');
  if (d.kind === 'out') assert.equal(d.reason, '1 connect failure within 500ms (refused)');
  assert.equal(timeoutPassed(10_000), 'fail_timeout 10s passed');
});
