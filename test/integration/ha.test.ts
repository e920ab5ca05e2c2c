/**
 * A balancer as a member of an HA pair or a BGP set, with real tcplb
 * processes: `tcplb-console health` (what keepalived and ExaBGP run) is not
 * ready until the backends answered, `ctl standby on` makes it not ready
 * while connections are still served and survives a restart, SIGTERM with
 * `leaveDelay` reports not ready while still accepting, then stops; three
 * instances of one config send the same client to the same backend (real
 * connections from 120 client addresses, and `ctl explain`), and after a
 * drain on all three only the drained backend's clients move, alike.
 * The same in network namespaces with keepalived and BGP: test/fleet/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli, startCli, type Running } from '../helpers/cli.js';
import { greetingVia, listen, namedEcho, reservePort, sleep, waitFor } from '../helpers/net.js';

function tmp(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-ha-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function health(sock: string): Promise<{ code: number | null; line: string }> {
  const r = await runCli(['health', '--socket', sock]);
  return { code: r.code, line: r.stdout.trim() };
}

test('health, standby and a graceful leave, on a real tcplb', async (t) => {
  const a = await listen(namedEcho('A'));
  t.after(() => a.close());
  const dir = tmp(t);
  const port = await reservePort();
  const file = path.join(dir, 'config.json5');
  const sock = path.join(dir, 'tcplb.sock');
  fs.writeFileSync(file, `{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: "200ms", rise: 1 }, servers: ["127.0.0.1:${a.port}"] } },
    control: { socket: "tcplb.sock" }, stateFile: "state.json", leaveDelay: "1500ms", instance: "lb1",
    log: { access: null },
  }`);
  let proxy: Running = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => proxy.child.kill('SIGKILL'));

  await waitFor(async () => (await health(sock)).code === 0, { what: 'ready once the backend answered', timeoutMs: 5000 });
  assert.equal((await health(sock)).line, 'ready: u 1/1 usable');

  // Planned handover: not ready, still serving, kept across a restart.
  const on = await runCli(['ctl', '--socket', sock, 'standby', 'on']);
  assert.equal(on.code, 0, on.stderr);
  const sb = await health(sock);
  assert.equal(sb.code, 1);
  assert.match(sb.line, /^not ready: standby since \d\d:\d\d:\d\d by ctl \(user \w+, pid \d+\)$/);
  assert.equal(await greetingVia(port), 'A', 'standby still serves new connections');
  proxy.child.kill('SIGKILL');
  await proxy.exited;
  proxy = await startCli(['--headless', '-c', file], /serving/);
  assert.match(proxy.stderr(), /state file: in standby since .* reporting not ready until ctl standby off/);
  await sleep(500); // the backend is seen up again: only the standby keeps it not ready
  assert.match((await health(sock)).line, /^not ready: standby since/);
  const off = await runCli(['ctl', '--socket', sock, 'standby', 'off']);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /^standby off: ready: u 1\/1 usable/);
  assert.equal((await health(sock)).code, 0);

  // SIGTERM with leaveDelay: not ready at once, still accepting for the delay, then gone.
  const t0 = Date.now();
  proxy.child.kill('SIGTERM');
  await waitFor(async () => /^not ready: leaving \(SIGTERM\)/.test((await health(sock)).line), { what: 'not ready while leaving', timeoutMs: 1000 });
  assert.equal(await greetingVia(port), 'A', 'still accepting during the leave delay');
  const code = await proxy.exited;
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 >= 1400, `stopped after ${Date.now() - t0} ms, before the 1.5 s leave delay`);
  assert.match(proxy.stderr(), /SIGTERM: leaving: reporting not ready now; accepting stops in 1500 ms[\s\S]*stopped accepting/);
  const gone = await health(sock);
  assert.equal(gone.code, 1);
  assert.match(gone.line, /^not ready: cannot reach tcplb at /);
});

const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;
/** 120 client addresses in 127.1.0.0/16 (all of 127/8 is loopback on Linux). */
const CLIENTS = Array.from({ length: 120 }, (_, i) => `127.1.${i >> 6}.${(i & 63) + 1}`);

test('three instances of one config: the same backend for each of 120 clients, by real connections and ctl explain; a drain on all moves only its clients', async (t) => {
  const backs = await Promise.all(['A', 'B', 'C'].map((n) => listen(namedEcho(n))));
  t.after(() => Promise.all(backs.map((b) => b.close())));
  const dir = tmp(t);
  const port = await reservePort([...HOSTS]);
  const socks: string[] = [];
  for (const [i, host] of HOSTS.entries()) {
    const file = path.join(dir, `lb${i + 1}.json5`);
    fs.writeFileSync(file, `{
      listeners: [{ name: "front", listen: "${host}:${port}", upstream: "u" }],
      upstreams: { u: { balance: "ip_hash", servers: [${backs.map((b) => `"127.0.0.1:${b.port}"`).join(', ')}] } },
      control: { socket: "lb${i + 1}.sock" }, log: { access: null },
    }`);
    const p = await startCli(['--headless', '-c', file], /serving/);
    t.after(() => p.child.kill('SIGKILL'));
    socks.push(path.join(dir, `lb${i + 1}.sock`));
  }
  const name = new Map(backs.map((b, i) => [`u/127.0.0.1:${b.port}`, 'ABC'[i]!]));
  const choices = async (): Promise<string[][]> =>
    Promise.all(HOSTS.map(async (host) => {
      const out: string[] = [];
      for (const c of CLIENTS) out.push(await greetingVia(port, host, c));
      return out;
    }));

  const before = await choices();
  assert.deepEqual(before[1], before[0], 'lb2 chose differently from lb1');
  assert.deepEqual(before[2], before[0], 'lb3 chose differently from lb1');
  assert.equal(new Set(before[0]).size, 3, 'every backend gets clients');
  // ctl explain says what the connections did, with one digest everywhere.
  const digests = new Set<string>();
  for (const [i, c] of CLIENTS.slice(0, 10).entries()) {
    for (const sock of socks) {
      const r = await runCli(['ctl', '--socket', sock, 'explain', c, 'front']);
      assert.equal(r.code, 0, r.stderr);
      const chosen = /goes to (\S+)/.exec(r.stdout)?.[1];
      assert.equal(name.get(chosen!), before[0]![i], `explain on ${sock} for ${c}:\n${r.stdout}`);
      digests.add(/digest ([0-9a-f]{8})/.exec(r.stdout)![1]!);
    }
  }
  assert.equal(digests.size, 1);

  const drained = `u/127.0.0.1:${backs[1]!.port}`;
  const r = await runCli(['ctl', ...socks.flatMap((s) => ['--socket', s]), 'drain', drained]);
  assert.equal(r.code, 0, r.stderr);
  const after = await choices();
  assert.deepEqual(after[1], after[0]);
  assert.deepEqual(after[2], after[0]);
  before[0]!.forEach((b, k) => {
    if (b === 'B') assert.notEqual(after[0]![k], 'B', `${CLIENTS[k]} still sent to the drained backend`);
    else assert.equal(after[0]![k], b, `${CLIENTS[k]} moved from ${b} although ${b} was not drained`);
  });
});
