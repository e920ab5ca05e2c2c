/**
 * The control socket's `watch` stream against a fake Actions: order, interval
 * clamping, events, requests after a watch, slow and stuck readers, and
 * attach/detach leaks.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startControlServer, type ControlServer } from '../../../src/control/server.js';
import { PROTOCOL_VERSION, WATCH_CONNECTIONS } from '../../../src/control/protocol.js';
import { runCtl } from '../../../src/control/client.js';
import type { WatchLimits } from '../../../src/control/watch.js';
import type { EventView, Snapshot } from '../../../src/runtime/snapshot.js';
import { sleep, waitFor, waitForSteady } from '../../helpers/wait.js';
import { capture, fakeActions, KNOWN, raw, SNAPSHOT, tmpDir, type FakeActions } from './fake-actions.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function withServer(
  fn: (ctx: { sock: string; fake: FakeActions; logs: string[]; srv: ControlServer }) => Promise<void>,
  limits: Partial<WatchLimits> = {},
): Promise<void> {
  const dir = tmpDir();
  dirs.push(dir);
  const sock = path.join(dir, 'c.sock');
  const fake = fakeActions();
  const logs: string[] = [];
  const srv = await startControlServer(sock, fake, (m) => logs.push(m), { limits });
  try {
    await fn({ sock, fake, logs, srv });
  } finally {
    await srv.close();
  }
}

/** A watching client that reads and parses every line it gets. */
interface Watching {
  lines: Record<string, unknown>[];
  sock: net.Socket;
  closed: Promise<void>;
}
function watch(sockPath: string, req: Record<string, unknown> = {}): Watching {
  const sock = net.connect(sockPath);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  sock.on('connect', () => sock.write(`${JSON.stringify({ cmd: 'watch', ...req })}\n`));
  sock.on('data', (d) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  return { lines, sock, closed };
}

const ev = (i: number, text = `event ${i}`): EventView => ({ time: 1_700_000_000_000 + i, kind: 'action', backend: KNOWN, ok: true, text });

/** Round-trip time of one `status` on a fresh connection, ms. */
async function statusRtt(sock: string): Promise<number> {
  const t0 = performance.now();
  const { lines } = await raw(sock, '{"cmd":"status"}\n', { want: 1 });
  assert.equal(JSON.parse(lines[0]!).ok, true);
  return performance.now() - t0;
}

test('watch: the reply (protocol, pid, started, config, interval) comes first, then a snapshot, then events in order', () =>
  withServer(async ({ sock, fake, srv }) => {
    const w = watch(sock, { id: 'w1' });
    await waitFor(() => w.lines.length, { what: 'reply and first snapshot', until: (n) => n >= 2 });
    const [reply, first] = w.lines;
    assert.equal(reply!.ok, true);
    assert.equal(reply!.id, 'w1');
    assert.equal(reply!.protocol, PROTOCOL_VERSION);
    assert.equal(reply!.pid, 42);
    assert.equal(typeof reply!.started, 'number');
    assert.ok((reply!.started as number) <= Date.now() && (reply!.started as number) > Date.now() - 3600_000 * 24);
    assert.deepEqual(reply!.config, SNAPSHOT.config);
    assert.deepEqual([reply!.interval, reply!.events, reply!.snapshots], [1000, true, true]);
    assert.deepEqual(first, { type: 'snapshot', data: JSON.parse(JSON.stringify(SNAPSHOT)) });
    assert.ok(fake.calls.includes(`snapshot ${WATCH_CONNECTIONS}`), `a watch snapshot lists as many connections as the console (${fake.calls.join(', ')})`);
    assert.equal(srv.stats().watchers, 1);
    for (let i = 0; i < 5; i++) fake.emit(ev(i));
    await waitFor(() => w.lines.filter((l) => l.type === 'event').length, { what: '5 events', until: (n) => n === 5 });
    assert.deepEqual(
      w.lines.filter((l) => l.type === 'event').map((l) => (l.data as EventView).text),
      ['event 0', 'event 1', 'event 2', 'event 3', 'event 4'],
    );
    // status says the protocol version too
    const st = await raw(sock, '{"cmd":"status"}\n');
    assert.equal(JSON.parse(st.lines[0]!).protocol, PROTOCOL_VERSION);
    w.sock.destroy();
    await waitFor(() => srv.stats().watchers, { what: 'watcher gone', until: (n) => n === 0 });
    assert.equal(fake.listeners.size, 0, 'event listener removed on detach');
  }));

test('watch: the interval is clamped to 100 ms..60 s; snapshots or events can be left out; bad fields get an error reply', () =>
  withServer(async ({ sock, fake }) => {
    const fast = watch(sock, { interval: 1, events: false });
    await waitFor(() => fast.lines.length, { what: 'reply', until: (n) => n >= 1 });
    assert.deepEqual([fast.lines[0]!.interval, fast.lines[0]!.events], [100, false]);
    await sleep(1000); // the scenario: count the snapshots of one second
    const snaps = fast.lines.filter((l) => l.type === 'snapshot').length;
    assert.ok(snaps >= 5 && snaps <= 12, `~10 snapshots in 1 s at the 100 ms floor (got ${snaps})`);
    assert.equal(fake.listeners.size, 0, 'events: false subscribes to nothing');
    fast.sock.destroy();

    const slow = watch(sock, { interval: 1e9, snapshots: false });
    await waitFor(() => slow.lines.length, { what: 'reply', until: (n) => n >= 1 });
    assert.deepEqual([slow.lines[0]!.interval, slow.lines[0]!.snapshots], [60_000, false]);
    fake.emit(ev(1));
    await waitFor(() => slow.lines.length, { what: 'the event', until: (n) => n >= 2 });
    assert.deepEqual(slow.lines.slice(1).map((l) => l.type), ['event'], 'no snapshot line when snapshots: false');
    slow.sock.destroy();

    const bad: [string, RegExp][] = [
      ['{"cmd":"watch","interval":"fast"}', /"interval" must be a number of ms \(100-60000\)/],
      ['{"cmd":"watch","events":"yes"}', /"events" must be true or false/],
      ['{"cmd":"watch","events":false,"snapshots":false}', /would send nothing/],
    ];
    const { lines } = await raw(sock, bad.map(([l]) => l).join('\n') + '\n{"cmd":"status"}\n');
    lines.slice(0, bad.length).forEach((l, i) => {
      assert.equal(JSON.parse(l).ok, false);
      assert.match(JSON.parse(l).error, bad[i]![1]);
    });
    assert.equal(JSON.parse(lines[bad.length]!).ok, true, 'a refused watch leaves a normal connection');
  }));

test('watch: after the watch the connection is a stream; requests sent on it are refused, not run', () =>
  withServer(async ({ sock, fake }) => {
    const w = watch(sock, { snapshots: false });
    await waitFor(() => w.lines.length, { what: 'reply', until: (n) => n >= 1 });
    w.sock.write(`{"cmd":"drain","backend":"${KNOWN}"}\n{"cmd":"watch"}\n`);
    await waitFor(() => w.lines.length, { what: 'two refusals', until: (n) => n >= 3 });
    for (const l of w.lines.slice(1)) assert.match(l.error as string, /this connection is watching; send other commands on another connection/);
    assert.ok(!fake.calls.some((c) => c.startsWith('drain')), 'the drain was not run');
    // pipelined before the watch: answered first, in order
    const { lines } = await raw(sock, '{"cmd":"status","id":1}\n{"cmd":"watch","id":2,"snapshots":false}\n', { want: 2, keepOpen: true });
    assert.deepEqual(lines.map((l) => JSON.parse(l).id), [1, 2]);
    w.sock.destroy();
  }));

test('watch: a half-close detaches; close() ends every watcher', () =>
  withServer(async ({ sock, srv }) => {
    const w = watch(sock, { snapshots: false });
    await waitFor(() => w.lines.length, { what: 'reply', until: (n) => n >= 1 });
    w.sock.end();
    await w.closed;
    await waitFor(() => srv.stats(), { what: 'no clients', until: (s) => s.clients === 0 && s.watchers === 0 });
    const a = watch(sock);
    const b = watch(sock);
    await waitFor(() => srv.stats().watchers, { what: 'two watchers', until: (n) => n === 2 });
    await srv.close();
    await Promise.all([a.closed, b.closed]);
    await waitFor(() => srv.stats(), { what: 'all gone after close()', until: (s) => s.clients === 0 && s.watchers === 0 });
  }));

test('a stuck subscriber (never reads) is dropped at the backlog bound; other clients stay prompt', () =>
  withServer(
    async ({ sock, fake, logs, srv }) => {
      // The stuck reader: sends watch, then never reads (paused: the kernel buffers fill).
      const stuck = net.connect(sock);
      stuck.on('error', () => {});
      stuck.pause();
      stuck.write('{"cmd":"watch","snapshots":false}\n');
      await waitFor(() => srv.stats().watchers, { what: 'the stuck watcher attached', until: (n) => n === 1 });
      const text = 'x'.repeat(1000);
      const line = JSON.stringify({ type: 'event', data: ev(0, text) }).length + 1;
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      let emitted = 0;
      let worstRtt = 0;
      const t0 = performance.now();
      // Bounded: at most 20 MB of events; stops as soon as the watcher is dropped.
      while (srv.stats().watchers > 0 && emitted < 20_000) {
        for (let i = 0; i < 50; i++, emitted++) fake.emit(ev(emitted, text));
        if (emitted % 500 === 0) worstRtt = Math.max(worstRtt, await statusRtt(sock));
        await new Promise((r) => setImmediate(r));
      }
      const dropMs = performance.now() - t0;
      loop.disable();
      const bytes = emitted * line;
      assert.equal(srv.stats().watchers, 0, `dropped (emitted ${bytes} bytes)`);
      assert.equal(fake.listeners.size, 0, 'its event listener is gone: later events cost nothing');
      // What it could hold: the 1 MiB bound plus the kernel's socket buffers and the reader's 16-64 KiB.
      assert.ok(bytes < 3 * 1024 * 1024, `dropped after ${bytes} bytes of events`);
      assert.ok(bytes > 1024 * 1024, `not before the bound (${bytes} bytes)`);
      assert.ok(logs.some((l) => /dropped a watcher: \d+ bytes unsent, over the 1048576-byte bound/.test(l)), logs.join('\n'));
      worstRtt = Math.max(worstRtt, await statusRtt(sock));
      assert.ok(worstRtt < 500, `status answered in ${worstRtt.toFixed(1)} ms while the stuck reader filled`);
      const t1 = performance.now();
      await waitFor(() => srv.stats().clients, { what: 'the stuck socket closed by the server', timeoutMs: 3000, until: (n) => n === 0 });
      const closeMs = performance.now() - t1;
      process.stdout.write(
        `# stuck reader: dropped after ${emitted} events (${(bytes / 1024).toFixed(0)} KiB) in ${dropMs.toFixed(0)} ms, socket closed ${closeMs.toFixed(0)} ms later; ` +
          `status RTT worst ${worstRtt.toFixed(1)} ms; event loop delay max ${(loop.max / 1e6).toFixed(1)} ms\n`,
      );
      stuck.destroy();
    },
    { dropGraceMs: 300 },
  ));

test('a stuck subscriber on a quiet proxy is dropped after stallMs; a slow reader of snapshots larger than the bound is kept', () =>
  withServer(
    async ({ sock, fake, logs, srv }) => {
      // Snapshots of ~512 KiB, 8x the bound: only what piles up beside one counts.
      fake.snap = { ...SNAPSHOT, pad: 'y'.repeat(512 * 1024) } as unknown as Snapshot;
      const reader = watch(sock, { interval: 100 });
      const stuck = net.connect(sock);
      stuck.on('error', () => {});
      stuck.pause();
      stuck.write('{"cmd":"watch","interval":100}\n');
      const t0 = performance.now();
      await waitFor(() => logs.some((l) => /dropped a watcher: nothing read for/.test(l)), { what: 'the stall drop', timeoutMs: 5000 });
      const ms = performance.now() - t0;
      assert.ok(ms >= 400, `not before stallMs (${ms.toFixed(0)} ms)`);
      await waitFor(() => reader.lines.filter((l) => l.type === 'snapshot').length, { what: 'the reader keeps getting snapshots', until: (n) => n >= 5 });
      assert.equal(srv.stats().watchers, 1, 'the reader is still attached');
      reader.sock.destroy();
      stuck.destroy();
    },
    { maxBacklogBytes: 64 * 1024, stallMs: 400, dropGraceMs: 300 },
  ));

test('100 watch/close cycles leave no watchers, listeners, timers or sockets behind', () =>
  withServer(async ({ sock, fake, srv }) => {
    const kinds = (): Record<string, number> => {
      const n: Record<string, number> = {};
      for (const k of process.getActiveResourcesInfo()) n[k] = (n[k] ?? 0) + 1;
      return { Timeout: n.Timeout ?? 0, PipeWrap: n.PipeWrap ?? 0, PipeConnectWrap: n.PipeConnectWrap ?? 0 };
    };
    const before = kinds();
    for (let i = 0; i < 100; i++) {
      const w = watch(sock, { interval: 100 });
      await waitFor(() => w.lines.length, { what: `cycle ${i}: reply and snapshot`, until: (n) => n >= 2 });
      if (i % 2 === 0) w.sock.destroy();
      else w.sock.end(); // half-close: the server ends the stream
      await w.closed;
    }
    await waitFor(() => srv.stats(), { what: 'all detached', until: (s) => s.clients === 0 && s.watchers === 0 });
    assert.equal(fake.listeners.size, 0);
    const steady = await waitForSteady(kinds, { what: 'active handles', quietMs: 300 });
    // At most as many as before (sockets of the earlier tests may still be closing then).
    for (const k of Object.keys(before)) assert.ok(steady[k]! <= before[k]!, `${k}: ${steady[k]} after 100 cycles, ${before[k]} before`);
  }));

async function ctlWatch(sock: string, args: string[], during: (out: { text: string }) => Promise<void>): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const ac = new AbortController();
  const running = runCtl(['watch', ...args], sock, out, err, 5000, ac.signal);
  await during(out);
  ac.abort();
  return { code: await running, out: out.text, err: err.text };
}

test('ctl watch prints events as lines until interrupted (exit 0); --json prints the raw lines', () =>
  withServer(async ({ sock, fake, srv }) => {
    const e = { ...ev(0, 'drain by ctl'), time: new Date(2026, 0, 2, 12, 1, 3).getTime() };
    const human = await ctlWatch(sock, [], async (out) => {
      await waitFor(() => fake.listeners.size, { what: 'subscribed', until: (n) => n === 1 });
      fake.emit(e);
      fake.emit({ time: e.time, kind: 'reload', ok: true, text: 'reloaded: no changes' });
      await waitFor(() => out.text.split('\n').length, { what: 'two lines', until: (n) => n >= 3 });
    });
    assert.deepEqual(human, { code: 0, out: `12:01:03 ${KNOWN} drain by ctl\n12:01:03 - reloaded: no changes\n`, err: '' });
    await waitFor(() => fake.listeners.size, { what: 'the first watch detached', until: (n) => n === 0 });
    const json = await ctlWatch(sock, ['--json'], async (out) => {
      await waitFor(() => fake.listeners.size, { what: 'subscribed', until: (n) => n === 1 });
      fake.emit(e);
      await waitFor(() => out.text, { what: 'a line' });
    });
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.out), { type: 'event', data: e });
    await waitFor(() => srv.stats().watchers, { what: 'detached', until: (n) => n === 0 });
  }));

test('ctl watch exits 1 saying why when the server drops it or stops', () =>
  withServer(
    async ({ sock, fake, srv }) => {
      const out = capture();
      const err = capture();
      const running = runCtl(['watch'], sock, out, err, 5000);
      await waitFor(() => fake.listeners.size, { what: 'subscribed', until: (n) => n === 1 });
      await srv.close();
      assert.equal(await running, 1);
      assert.match(err.text, /^tcplb at .* closed the watch \(stopped or restarting\?\)\n$/);
    },
  ));
