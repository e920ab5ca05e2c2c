/**
 * The reload sequence and its one-at-a-time queue, against fakes of the
 * engine, the health scheduler and the config file: no process, no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config, ListenerConfig, LoadResult } from '../../../src/core/config.js';
import type { ListenerResult } from '../../../src/core/dataplane.js';
import type { CheckTarget } from '../../../src/health/scheduler.js';
import { createLogger } from '../../../src/log/logger.js';
import { EventLog } from '../../../src/runtime/event-log.js';
import { createReloader, oneAtATime, type ReloadDeps } from '../../../src/runtime/reload.js';
import { Runtime } from '../../../src/runtime/store.js';

function config(servers: string[], extra = ''): Config {
  const res = loadConfigText(
    `{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }],
       upstreams: { u: { check: { type: "tcp" }, servers: ${JSON.stringify(servers)} } } ${extra} }`,
    '/tmp/tcplb-reload-unit.json5',
  );
  assert.ok(res.ok, res.ok ? '' : res.issues.map((i) => i.message).join('; '));
  return res.config;
}
const A = config(['127.0.0.2:1']);
const B = config(['127.0.0.2:1', '127.0.0.3:1']);

/** A reloader on a runtime running `A`, with every collaborator recorded. */
function setup(over: Partial<ReloadDeps> = {}, bind: (ls: readonly ListenerConfig[]) => ListenerResult[] = (ls) => ls.map((l) => ({ name: l.name, ok: true }))) {
  const runtime = new Runtime(A);
  const calls: string[] = [];
  const lines: string[] = [];
  const synced: CheckTarget[][] = [];
  const events = new EventLog();
  const deps: ReloadDeps = {
    runtime,
    engine: {
      async setListeners(ls, beforeCommit) {
        calls.push(`bind (config ${runtime.config === A ? 'A' : 'new'})`);
        const results = bind(ls);
        if (results.every((r) => r.ok)) {
          beforeCommit?.();
          calls.push(`commit (config ${runtime.config === A ? 'A' : 'new'})`);
        }
        return results;
      },
    },
    health: { sync: (targets) => void synced.push([...targets]) },
    events,
    logger: createLogger('debug', (l) => lines.push(l)),
    reopenAccessLog: (c) => void calls.push(`reopen access log ${c.log.access}`),
    reloaded: (ok) => void calls.push(`reloaded ${ok}`),
    checkHosts: async () => [],
    ...over,
  };
  return { runtime, calls, lines, synced, events, reloader: createReloader(deps) };
}

test('apply: routes are installed between binding and serving, then checks resync, and the reload is counted and recorded', async () => {
  const { runtime, calls, synced, events, reloader } = setup();
  const r = await reloader.apply(B, 'ctl');
  assert.equal(r.ok, true);
  assert.equal(r.message, 'reloaded: 1 change');
  assert.equal(runtime.config, B);
  assert.deepEqual(calls, ['bind (config A)', 'commit (config new)', 'reloaded true']);
  assert.deepEqual(synced.at(-1)!.map((t) => t.id), ['u/127.0.0.2:1', 'u/127.0.0.3:1']);
  assert.match(events.list().at(-1)!.text, /^reload by ctl: 1 change: \+server u\/127\.0\.0\.3:1/);
  assert.equal(reloader.view().watch, 'static');
  runtime.close();
});

test('apply of the same config changes nothing and binds nothing', async () => {
  const { calls, reloader, runtime } = setup();
  const r = await reloader.apply(config(['127.0.0.2:1']), 'watcher');
  assert.deepEqual(r, { ok: true, message: 'reloaded: no changes', changes: [] });
  assert.deepEqual(calls, []);
  runtime.close();
});

test('a backend host that does not resolve refuses the reload before anything is bound', async () => {
  const { runtime, calls, reloader, lines } = setup({ checkHosts: async () => ['server u/x.test:1: cannot resolve host "x.test" (ENOTFOUND)'] });
  const r = await reloader.apply(B, 'signal');
  assert.equal(r.ok, false);
  assert.match(r.message, /^reload refused: server u\/x\.test:1: cannot resolve host "x\.test" \(ENOTFOUND\) — still serving the previous config$/);
  assert.equal(runtime.config, A);
  assert.deepEqual(calls, ['reloaded false']);
  assert.equal(reloader.view().watch, 'refused');
  assert.match(reloader.view().error!, /x\.test/);
  assert.ok(lines.some((l) => /error reload refused: server u\/x\.test/.test(l)));
  runtime.close();
});

test('a listener that cannot bind refuses the reload and the old config keeps serving', async () => {
  const { runtime, calls, synced, reloader } = setup({}, (ls) => ls.map((l) => ({ name: l.name, ok: false, error: `listener "${l.name}": 127.0.0.1:7000 is already in use` })));
  const r = await reloader.apply(B, 'ctl');
  assert.equal(r.ok, false);
  assert.match(r.message, /already in use — still serving the previous config$/);
  assert.equal(runtime.config, A);
  assert.deepEqual(calls, ['bind (config A)', 'reloaded false']);
  assert.deepEqual(synced, [], 'checks untouched');
  runtime.close();
});

test('log settings: a new level is set at once, a new access log is opened', async () => {
  const { calls, lines, reloader, runtime } = setup();
  await reloader.apply(config(['127.0.0.2:1'], ', log: { level: "warn", access: "/tmp/tcplb-unit-access.log" }'), 'ctl');
  assert.ok(calls.includes('reopen access log /tmp/tcplb-unit-access.log'));
  const n = lines.length;
  // Its `reload: +server ...` info line is below the new level.
  await reloader.apply(config(['127.0.0.2:1', '127.0.0.3:1'], ', log: { level: "warn", access: "/tmp/tcplb-unit-access.log" }'), 'ctl');
  assert.equal(lines.length, n);
  runtime.close();
});

test('reloadFile: an invalid file is refused with its first issue and how many more', async () => {
  const bad: LoadResult = {
    ok: false,
    issues: [
      { file: 'c.json5', line: 3, column: 7, message: 'unknown key "wieght"' },
      { file: 'c.json5', line: 9, column: 1, message: 'expected a number' },
    ],
  };
  const { runtime, reloader, lines } = setup({ load: async () => bad });
  const r = await reloader.reloadFile('watcher');
  assert.equal(r.message, 'reload refused: c.json5:3:7: unknown key "wieght" (+1 more) — still serving the previous config');
  assert.ok(lines.some((l) => l.includes('c.json5:9:1: expected a number')), 'every issue is logged');
  assert.equal(reloader.view().watch, 'refused');
  runtime.close();
});

test('setWatching shows in the view, but not over a refused reload', async () => {
  const { runtime, reloader } = setup();
  reloader.setWatching(true);
  assert.equal(reloader.view().watch, 'watching');
  reloader.refuse('bad', 'console');
  reloader.setWatching(true);
  assert.equal(reloader.view().watch, 'refused');
  await reloader.apply(B, 'watcher');
  assert.equal(reloader.view().watch, 'watching');
  assert.equal(reloader.view().error, undefined);
  runtime.close();
});

/** A promise and its resolver. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('oneAtATime: requests during a run make it run once more, and all of them get that last answer', async () => {
  const gates = [deferred<void>(), deferred<void>()];
  let started = 0;
  let running = 0;
  const run = oneAtATime(async (by: string) => {
    const n = started++;
    running++;
    assert.equal(running, 1, 'never two at once');
    await gates[n]!.promise;
    running--;
    return `run ${n} by ${by}`;
  });
  const first = run('a');
  const second = run('b');
  const third = run('c');
  assert.equal(started, 1);
  gates[0]!.resolve();
  await new Promise((r) => setImmediate(r));
  assert.equal(started, 2, 'the requests during run 0 coalesced into one more run');
  gates[1]!.resolve();
  assert.deepEqual(await Promise.all([first, second, third]), ['run 1 by a', 'run 1 by a', 'run 1 by a']);
  assert.equal(started, 2);
  // Idle again: the next request starts a run of its own.
  const gate = deferred<void>();
  gates.push(gate);
  const fourth = run('d');
  gate.resolve();
  assert.equal(await fourth, 'run 2 by d');
});

test('reloadFile: a burst of requests reads the file twice, the second time after the first apply finished', async () => {
  const reads: string[] = [];
  let n = 0;
  const { runtime, reloader } = setup({
    load: async () => {
      reads.push(`read ${n} (config ${runtime.config === A ? 'A' : 'new'})`);
      n++;
      await new Promise((r) => setTimeout(r, 5));
      return { ok: true, config: B };
    },
  });
  const results = await Promise.all([reloader.reloadFile('watcher'), reloader.reloadFile('ctl'), reloader.reloadFile('signal')]);
  assert.deepEqual(reads, ['read 0 (config A)', 'read 1 (config new)']);
  assert.deepEqual(results.map((r) => r.message), ['reloaded: no changes', 'reloaded: no changes', 'reloaded: no changes']);
  runtime.close();
});
