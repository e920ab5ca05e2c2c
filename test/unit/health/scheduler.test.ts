/** The probe scheduler with a fake probe and short intervals: timing, overlap, jitter, sync. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CheckConfig } from '../../../src/core/config.js';
import type { ProbeResult } from '../../../src/core/types.js';
import { HealthScheduler, START_SLICE, type CheckTarget } from '../../../src/health/scheduler.js';
import type { Probe } from '../../../src/health/types.js';
import { sleep, waitFor } from '../../helpers/wait.js';

function check(over: Partial<CheckConfig> = {}): CheckConfig {
  return {
    type: 'tcp', intervalMs: 100, rise: 2, fall: 3, timeoutMs: 50, tls: false, servername: '', verify: false,
    port: 0, send: '', expect: ['2xx', '3xx'], proxyProtocol: false, ...over,
  };
}

function target(id: string, c = check()): CheckTarget {
  return { id, host: '127.0.0.1', port: 1, check: c };
}

/** A probe that records calls and takes `ms` to answer. */
function fakeProbe(ms: number, ok = true) {
  const calls: { id: string; at: number }[] = [];
  let running = 0;
  let maxRunning = 0;
  const probe: Probe = async (t, _o, signal) => {
    calls.push({ id: `${t.host}:${t.port}`, at: Date.now() });
    running++;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((r) => {
      const timer = setTimeout(r, ms);
      signal.addEventListener('abort', () => { clearTimeout(timer); r(undefined); });
    });
    running--;
    const res: ProbeResult = signal.aborted
      ? { ok: false, status: 'ABORTED', latencyMs: ms, detail: 'aborted' }
      : { ok, status: ok ? 'L4_OK' : 'L4_REFUSED', latencyMs: ms, detail: ok ? 'connected' : 'connection refused' };
    return res;
  };
  return { probe, calls, get maxRunning() { return maxRunning; } };
}

test('the first probe runs at once, later ones every interval', async (t) => {
  const f = fakeProbe(1);
  const results: number[] = [];
  const s = new HealthScheduler({ onResult: () => results.push(Date.now()), probeFor: () => f.probe, random: () => 0.5 });
  t.after(() => s.close());
  const t0 = Date.now();
  s.sync([target('u/a')]);
  await sleep(20); // the schedule is what is tested: one probe in the first 20 ms, no more
  assert.equal(results.length, 1, 'first probe must not wait for the interval');
  // It started within sync() itself (the phase for later probes would be 50 ms); when it ended depends on the host's load.
  assert.ok(f.calls[0]!.at - t0 < 15, `first probe started ${f.calls[0]!.at - t0} ms after sync`);
  await sleep(420); // the observation window
  // phase 50 ms, then every 100 ms: about 1 + 4 probes in 440 ms
  assert.ok(results.length >= 4 && results.length <= 6, `got ${results.length} probes`);
  const gaps = results.slice(2).map((x, i) => x - results[i + 1]!);
  // Each probe is scheduled from the previous one's start, so a late timer shortens the next gap: allow a loaded host's jitter.
  for (const g of gaps) assert.ok(g >= 75 && g <= 160, `gap ${g} ms, interval 100 ms`);
});

test('probes of one backend never overlap, even when slower than the interval', async (t) => {
  const f = fakeProbe(150);
  const s = new HealthScheduler({ onResult: () => {}, probeFor: () => f.probe });
  t.after(() => s.close());
  s.sync([target('u/a', check({ intervalMs: 50 }))]);
  void s.checkNow('u/a');
  void s.checkNow('u/a');
  await sleep(500); // the observation window
  assert.equal(f.maxRunning, 1);
  assert.ok(f.calls.length >= 3, `only ${f.calls.length} probes`);
});

test('checkNow during a running probe shares its result instead of starting another', async (t) => {
  const f = fakeProbe(60);
  const forced: boolean[] = [];
  const s = new HealthScheduler({ onResult: (_id, _r, fo) => forced.push(fo), probeFor: () => f.probe, random: () => 0.99 });
  t.after(() => s.close());
  s.sync([target('u/a', check({ intervalMs: 10_000 }))]);
  const r = await s.checkNow('u/a');
  assert.equal(r?.ok, true);
  assert.equal(f.calls.length, 1);
  const r2 = await s.checkNow('u/a');
  assert.equal(r2?.ok, true);
  assert.equal(f.calls.length, 2);
  assert.deepEqual(forced, [false, true]);
  assert.equal(s.checkNow('u/none'), undefined);
});

test('500 backends: after the first round, probes are spread over the interval', async (t) => {
  const f = fakeProbe(0);
  const s = new HealthScheduler({ onResult: () => {}, probeFor: () => f.probe });
  t.after(() => s.close());
  s.sync(Array.from({ length: 500 }, (_, i) => ({ id: `u/h${i}`, host: `h${i}`, port: 1, check: check({ intervalMs: 400 }) })));
  await new Promise((r) => setImmediate(r));
  // The first round (each backend's first call) starts at once, in slices of START_SLICE a loop turn.
  const firstSeen = new Set<string>();
  const isFirst = f.calls.map((c) => !firstSeen.has(c.id) && Boolean(firstSeen.add(c.id)));
  assert.equal(firstSeen.size, 500, 'every backend probes at once at start');
  await sleep(400); // one interval: the second round
  const second = f.calls.filter((_, i) => !isFirst[i]).map((c) => c.at);
  assert.ok(second.length > 400, `${second.length} second-round probes`);
  // Spread: no 40 ms bucket holds more than a quarter of them.
  const buckets = new Map<number, number>();
  for (const at of second) buckets.set(Math.floor(at / 40), (buckets.get(Math.floor(at / 40)) ?? 0) + 1);
  const max = Math.max(...buckets.values());
  assert.ok(max < second.length / 4, `${max} of ${second.length} probes in one 40 ms slot`);
});

test('10,000 backends: the first round starts in slices, and the event loop runs between them', async (t) => {
  const f = fakeProbe(0);
  const s = new HealthScheduler({ onResult: () => {}, probeFor: () => f.probe });
  t.after(() => s.close());
  s.sync(Array.from({ length: 10_000 }, (_, i) => ({ id: `u/h${i}`, host: `h${i}`, port: 1, check: check({ intervalMs: 60_000 }) })));
  assert.equal(f.calls.length, START_SLICE, 'the first slice starts at once');
  // A client or a ctl request waiting meanwhile gets its turn long before the round has started.
  let seenAt = -1;
  setImmediate(() => (seenAt = f.calls.length));
  const distinct = (): number => new Set(f.calls.map((c) => c.id)).size;
  for (let turns = 0; distinct() < 10_000 && turns < 1000; turns++) await new Promise((r) => setImmediate(r));
  assert.equal(distinct(), 10_000, 'every backend probed');
  assert.ok(seenAt > 0 && seenAt < 10_000, `other work ran after ${seenAt} of 10,000 first probes had started`);
});

test('sync keeps unchanged loops, restarts changed ones, stops removed ones; paused backends are not probed', async (t) => {
  const f = fakeProbe(0);
  // Who is paused is the caller's answer (the runtime's admin state), not the scheduler's.
  const paused = new Set<string>();
  const s = new HealthScheduler({ onResult: () => {}, probeFor: () => f.probe, random: () => 0.99, paused: (id) => paused.has(id) });
  t.after(() => s.close());
  s.sync([target('u/a', check({ intervalMs: 10_000 })), { ...target('u/b', check({ intervalMs: 10_000 })), host: 'b' }]);
  await waitFor(() => f.calls.length, { what: 'the first probes of a and b', timeoutMs: 1000, intervalMs: 2, until: (n) => n >= 2 });
  assert.equal(f.calls.length, 2);
  // Same settings for a, b removed, c new: only c probes at once.
  s.sync([target('u/a', check({ intervalMs: 10_000 })), { ...target('u/c', check({ intervalMs: 10_000 })), host: 'c' }]);
  await sleep(10); // proving a negative too: a (unchanged) must not probe again, so no event to wait for
  assert.deepEqual(f.calls.slice(2).map((c) => c.id), ['c:1']);
  assert.equal(s.has('u/b'), false);
  // A paused backend gets no probe; resuming probes at once.
  paused.add('u/a');
  s.sync([target('u/a', check({ intervalMs: 10_000 }))]);
  s.refresh('u/a');
  await sleep(10); // proving a negative: a paused backend gets no probe
  const n = f.calls.length;
  paused.delete('u/a');
  s.refresh('u/a');
  await waitFor(() => f.calls.length, { what: 'the probe on resume', timeoutMs: 1000, intervalMs: 2, until: (k) => k >= n + 1 });
  assert.equal(f.calls.length, n + 1);
});

test('who is paused is asked, not remembered: a backend disabled before sync gets no first probe, and one disabled later stops at its next turn', async (t) => {
  const f = fakeProbe(0);
  const disabled = new Set<string>(['u/a']);
  const s = new HealthScheduler({ onResult: () => {}, probeFor: () => f.probe, random: () => 0, paused: (id) => disabled.has(id) });
  t.after(() => s.close());
  s.sync([target('u/a', check({ intervalMs: 40 })), { ...target('u/b', check({ intervalMs: 40 })), host: 'b' }]);
  await sleep(100);
  assert.ok(f.calls.every((c) => c.id === 'b:1'), 'the disabled backend was probed');
  assert.ok(f.calls.length >= 2, `b probed ${f.calls.length} times`);
  // Disabled without telling the scheduler: the runtime's answer is read when the next probe is due.
  disabled.add('u/b');
  await sleep(60);
  const n = f.calls.length;
  await sleep(120);
  assert.equal(f.calls.length, n, 'probes went on after the backend was disabled');
  disabled.clear();
  s.refresh('u/a');
  s.refresh('u/b');
  await sleep(20);
  assert.deepEqual([...new Set(f.calls.slice(n).map((c) => c.id))].sort(), ['127.0.0.1:1', 'b:1'], 'enable probes each at once');
});
