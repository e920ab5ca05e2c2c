/**
 * One console or one ctl for several instances: the fleet file, ctl's
 * fan-out table and exit code, and the fleet source's merged picture and
 * fanned-out actions, against real control servers (fake actions behind).
 * The same with real tcplb processes: test/integration/fleet.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startControlServer } from '../../../src/control/server.js';
import { attachFleet, combine, mergeSnapshots } from '../../../src/control/fleet.js';
import { loadFleetFile, targetsFrom } from '../../../src/control/fleet-file.js';
import { runFanout } from '../../../src/control/fanout.js';
import { unixTarget } from '../../../src/control/target.js';
import type { BackendView, Snapshot } from '../../../src/runtime/snapshot.js';
import { waitFor } from '../../helpers/wait.js';
import { capture, fakeActions, KNOWN, SNAPSHOT, tmpDir } from './fake-actions.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const backend = (state: BackendView['state'], over: Partial<BackendView> = {}): BackendView =>
  ({ id: KNOWN, address: '10.0.0.2:143', state, reason: state === 'DOWN' ? 'timeout after 2000 ms' : '', since: 0, weight: 1, backup: false, active: 2, total: 10, connectFailures: 1, bytesIn: 100, bytesOut: 200, progress: '', ...over }) as BackendView;
const snapWith = (pid: number, b: BackendView, extra: BackendView[] = []): Snapshot =>
  ({ ...SNAPSHOT, pid, totals: { active: 2, accepted: 10, connPerSec: 1, bytesPerSec: 50 }, upstreams: [{ name: 'imap', balance: 'ip_hash', check: 'imap', backends: [b, ...extra] }] }) as Snapshot;

async function instance(name: string, snap: Snapshot): Promise<{ sock: string; fake: ReturnType<typeof fakeActions>; close(): Promise<void> }> {
  const dir = tmpDir();
  const sock = path.join(dir, `${name}.sock`);
  const fake = fakeActions();
  fake.snap = snap;
  const srv = await startControlServer(sock, fake, () => {});
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await srv.close();
  };
  cleanups.push(async () => {
    await close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sock, fake, close };
}

test('fleet file: addresses or { name, target }; every mistake names the file and the entry', async () => {
  const dir = tmpDir();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const ok = await loadFleetFile(file('ok.json5', `{ fleet: [ "ssh://lb1.example.net", { name: "lb2", target: "ssh://admin@lb2:2222/run/t.sock" }, "/run/tcplb/tcplb.sock", ] }`));
  assert.deepEqual(ok.map((t) => [t.name, t.kind, t.label]), [
    ['lb1.example.net', 'ssh', 'ssh://lb1.example.net'],
    ['lb2', 'ssh', 'ssh://admin@lb2:2222/run/t.sock'],
    ['/run/tcplb/tcplb.sock', 'unix', '/run/tcplb/tcplb.sock'],
  ]);
  await assert.rejects(loadFleetFile(file('syntax.json5', '{ fleet: [\n  "a",\n  oops ] }')), /syntax\.json5:3:\d+: /);
  await assert.rejects(loadFleetFile(file('scheme.json5', '{ fleet: ["/a", "ftp://x"] }')), /scheme\.json5: fleet\[1\]: "ftp:\/\/x": only ssh:\/\/ is supported/);
  await assert.rejects(loadFleetFile(file('key.json5', '{ fleet: [{ target: "/a", nmae: "x" }] }')), /key\.json5: fleet\[0\]: unknown key "nmae"/);
  await assert.rejects(loadFleetFile(file('dup.json5', '{ fleet: ["/a", "/b", "/a"] }')), /dup\.json5: fleet\[2\] repeats fleet\[0\] \(\/a\)/);
  await assert.rejects(loadFleetFile(file('empty.json5', '{ fleet: [] }')), /fleet lists no instance/);
  await assert.rejects(loadFleetFile(file('shape.json5', '[ "/a" ]')), /expected \{ fleet: \[/);
  await assert.rejects(loadFleetFile(path.join(dir, 'none.json5')), /none\.json5: cannot read the fleet file: ENOENT/);
  // A named pipe is refused at once, never waited on (core/read-regular.ts, as for the config).
  execFileSync('mkfifo', [path.join(dir, 'pipe.json5')]);
  await assert.rejects(loadFleetFile(path.join(dir, 'pipe.json5')), /pipe\.json5: cannot read the fleet file: not a regular file \(it is a named pipe \(FIFO\)\)/);
  await assert.rejects(loadFleetFile(dir), /cannot read the fleet file: not a regular file \(it is a directory\)/);
  assert.deepEqual(targetsFrom(['/x/tcplb.sock', '/x/tcplb.sock']).map((t) => t.name), ['/x/tcplb.sock', '/x/tcplb.sock#2']);
  assert.throws(() => targetsFrom(['/a', 'ssh://']), /command line: instance 2: /);
});

test('ctl fan-out: the command reaches every instance; a per-instance table; one instance down: exit 1, the others still acted', async () => {
  const a = await instance('lb1', snapWith(1, backend('UP')));
  const b = await instance('lb2', snapWith(2, backend('UP')));
  const c = await instance('lb3', snapWith(3, backend('UP')));
  const targets = [unixTarget(a.sock, 'lb1'), unixTarget(b.sock, 'lb2'), unixTarget(c.sock, 'lb3')];
  let out = capture();
  let err = capture();
  assert.equal(await runFanout(['drain', KNOWN], targets, out, err), 0, err.text);
  for (const f of [a, b, c]) assert.ok(f.fake.calls.some((x) => x.startsWith(`drain ${KNOWN}`)), 'every instance drained');
  assert.match(out.text, /^INSTANCE\s+RESULT\s+MESSAGE\nlb1\s+ok\s+imap\/10\.0\.0\.2:143 draining\nlb2\s+ok .*\nlb3\s+ok .*\n$/);

  await c.close();
  out = capture();
  err = capture();
  assert.equal(await runFanout(['enable', KNOWN], targets, out, err), 1);
  assert.match(out.text, /lb1\s+ok\s+imap\/10\.0\.0\.2:143 enabled/);
  assert.match(out.text, /lb3\s+FAILED\s+cannot reach tcplb at \S+lb3\.sock/);
  assert.match(err.text, /1 of 3 instances failed/);
  assert.ok(a.fake.calls.some((x) => x.startsWith(`enable ${KNOWN}`)) && b.fake.calls.some((x) => x.startsWith(`enable ${KNOWN}`)));

  out = capture();
  assert.equal(await runFanout(['status'], targets, out, capture()), 1);
  const all = JSON.parse(out.text) as Record<string, { pid?: number; error?: string }>;
  assert.equal(all.lb1!.pid, 1);
  assert.equal(all.lb2!.pid, 2);
  assert.match(all.lb3!.error!, /cannot reach/);
  err = capture();
  assert.equal(await runFanout(['watch'], targets, capture(), err), 2);
  assert.match(err.text, /"watch" talks to one instance/);
});

test('merge: states side by side, counts summed, a probe disagreement named; an unreachable instance is not counted', () => {
  const m = mergeSnapshots([
    { name: 'lb1', snapshot: snapWith(1, backend('UP')) },
    { name: 'lb2', snapshot: snapWith(2, backend('DOWN')) },
    { name: 'lb3', snapshot: snapWith(3, backend('UP')), lost: 'tcplb closed the connection' },
  ]);
  const b = m.upstreams[0]!.backends[0]!;
  assert.deepEqual(b.instances, [
    { name: 'lb1', state: 'UP' },
    { name: 'lb2', state: 'DOWN' },
    { name: 'lb3', state: 'UNREACHABLE' },
  ]);
  assert.equal(b.active, 4, 'active summed over the reachable two');
  assert.equal(b.total, 20);
  assert.equal(m.totals.active, 4);
  assert.match(b.reason, /^probes disagree: DOWN on lb2 \(timeout after 2000 ms\)/);
  assert.equal(b.state, 'DOWN');

  // A backend only one instance has (configs out of step) shows ABSENT on the others.
  const extra = backend('UP', { id: 'imap/10.0.0.9:143', address: '10.0.0.9:143' });
  const m2 = mergeSnapshots([
    { name: 'lb1', snapshot: snapWith(1, backend('DRAINING')) },
    { name: 'lb2', snapshot: snapWith(2, backend('DRAINING'), [extra]) },
  ]);
  assert.deepEqual(m2.upstreams[0]!.backends.map((x) => [x.id, x.instances!.map((i) => i.state).join(' ')]), [
    [KNOWN, 'DRAINING DRAINING'],
    ['imap/10.0.0.9:143', 'ABSENT UP'],
  ]);
});

test('combine: ok only when every instance is; failures first, then who succeeded', () => {
  assert.deepEqual(combine('drain x', [{ name: 'a', r: { ok: true, message: 'x draining' } }, { name: 'b', r: { ok: true, message: 'x draining' } }]), { ok: true, message: 'drain x: ok on a, b' });
  assert.deepEqual(combine('drain x', [{ name: 'a', r: { ok: true, message: '' } }, { name: 'b', r: { ok: false, message: 'unreachable: ENOENT' } }]), { ok: false, message: 'drain x: b FAILED: unreachable: ENOENT · ok on a' });
});

test('fleet source: attaches to all, one action reaches each; an instance down at start is shown unreachable and joins when it comes up', async () => {
  const a = await instance('lb1', snapWith(11, backend('UP')));
  const b = await instance('lb2', snapWith(12, backend('UP')));
  const lateDir = tmpDir();
  cleanups.push(() => fs.rmSync(lateDir, { recursive: true, force: true }));
  const lateSock = path.join(lateDir, 'lb3.sock');
  const src = await attachFleet([unixTarget(a.sock, 'lb1'), unixTarget(b.sock, 'lb2'), unixTarget(lateSock, 'lb3')], { intervalMs: 100, retryMs: 100 });
  cleanups.push(() => src.attachment.close());
  const members = src.attachment.members();
  assert.deepEqual(members.map((m) => [m.name, m.lost === undefined]), [['lb1', true], ['lb2', true], ['lb3', false]]);
  assert.match(members[2]!.lost!, /cannot reach tcplb at \S+lb3\.sock/);
  assert.deepEqual(src.snapshot().upstreams[0]!.backends[0]!.instances!.map((i) => i.state), ['UP', 'UP', 'UNREACHABLE']);

  const r = await src.drain(KNOWN, 'console');
  assert.equal(r.ok, false, 'partial failure is a failure');
  assert.match(r.message, /lb3 FAILED: unreachable: cannot reach/);
  assert.match(r.message, /ok on lb1, lb2$/);
  assert.ok(a.fake.calls.some((x) => x.startsWith(`drain ${KNOWN}`)) && b.fake.calls.some((x) => x.startsWith(`drain ${KNOWN}`)), 'the reachable two drained');

  // lb3 comes up: the fleet takes it in by itself.
  const fake3 = fakeActions();
  fake3.snap = snapWith(13, backend('UP'));
  const srv3 = await startControlServer(lateSock, fake3, () => {});
  cleanups.push(() => srv3.close());
  await waitFor(() => src.attachment.members()[2]!.lost === undefined, { what: 'lb3 to join the fleet', timeoutMs: 5000 });
  assert.equal(src.attachment.members()[2]!.link!.pid, 13);
  const r2 = await src.enable(KNOWN, 'console');
  assert.equal(r2.ok, true, r2.message);
  assert.ok(fake3.calls.some((x) => x.startsWith(`enable ${KNOWN}`)));
});

test('fleet source: refuses only when no instance answers at all, naming each', async () => {
  const dir = tmpDir();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(attachFleet([unixTarget(path.join(dir, 'a'), 'a'), unixTarget(path.join(dir, 'b'), 'b')], { retryMs: 50 }), /no instance of the fleet answers:\n  a: cannot reach .*\n  b: cannot reach/);
});
