/**
 * One console steering a fleet, in a real terminal (tmux, 80x24): three
 * headless tcplb instances with one config (each on its own loopback
 * address), `tcplb-console attach --fleet fleet.json5`: the table shows the
 * backend's state on each instance side by side; one `d` drains it on all
 * three (real connections to each instance avoid it); one instance is killed
 * mid-way: the header and the row say it is unreachable, and `e` still
 * restores the other two (the status line names the failure); `ctl --fleet`
 * exits 1 with the per-instance table. Every process is killed by PID.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { requireBinary } from '../fixtures/real/available.js';
import { BIN, runCli, startCli } from '../helpers/cli.js';
import { greetingVia, listen, namedEcho, reservePort } from '../helpers/net.js';
import { Tmux } from '../helpers/tmux.js';

const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;

test('fleet console in tmux: d drains on every instance, a killed instance shows unreachable and the others are still steered; ctl --fleet exits 1 with a table', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort([...HOSTS]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-fleet-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const pids: number[] = [];
  for (const [i, host] of HOSTS.entries()) {
    const file = path.join(dir, `lb${i + 1}.json5`);
    fs.writeFileSync(file, `{
      listeners: [{ name: "front", listen: "${host}:${port}", upstream: "u" }],
      upstreams: { u: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
      control: { socket: "lb${i + 1}.sock" },
      log: { access: null },
    }`);
    const p = await startCli(['--headless', '-c', file], /serving/);
    t.after(() => p.child.kill('SIGKILL'));
    pids.push(p.child.pid!);
  }
  const fleet = path.join(dir, 'fleet.json5');
  fs.writeFileSync(fleet, `{ fleet: [${HOSTS.map((_, i) => `{ name: "lb${i + 1}", target: "${path.join(dir, `lb${i + 1}.sock`)}" }`).join(', ')}] }`);

  const tm = new Tmux(t, 'fleet');
  tm.session('f', `${process.execPath} ${BIN} attach --fleet ${fleet}`, 80, 24);
  const row = (cells: string): RegExp => new RegExp(`^[› ] 127\\.0\\.0\\.1:${a.port}\\s+${cells}`, 'm');
  const first = await tm.waitScreen('f', row('UP +UP +UP '), 'A up on all three');
  assert.match(first, new RegExp(`fleet of 3: lb1 pid ${pids[0]} · lb2 pid ${pids[1]} · lb3 pid ${pids[2]}`));
  assert.match(first, /^ +BACKEND +lb1 +lb2 +lb3 /m, 'the instances title their state columns');

  // One key, three instances: A is first, selected at start.
  tm.keys('f', 'd');
  await tm.waitScreen('f', row('DRN +DRN +DRN '), 'A draining on all three');
  for (const host of HOSTS) for (let i = 0; i < 3; i++) assert.equal(await greetingVia(port, host), 'B', `${host}: a drained backend got a new connection`);

  // lb3 dies: shown, not hidden; the other two still answer to keys.
  process.kill(pids[2]!, 'SIGKILL');
  await tm.waitScreen('f', /fleet of 3 \(1 unreachable\): lb1 pid \d+ · lb2 pid \d+ · lb3 unreachable/, 'lb3 unreachable in the header');
  await tm.waitScreen('f', row('DRN +DRN +\\? '), 'lb3 as ? in the row');
  tm.keys('f', 'e');
  await tm.waitScreen('f', row('UP +UP +\\? '), 'A enabled on lb1 and lb2');
  await tm.waitScreen('f', /enable u\/127\.0\.0\.1:\d+: lb3 FAILED/, 'the status line names the instance that failed');
  for (const host of HOSTS.slice(0, 2)) {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await greetingVia(port, host));
    assert.ok(seen.has('A'), `${host}: A takes connections again`);
  }

  // ctl --fleet: the same fan-out from a script, exit 1 with the table.
  const r = await runCli(['ctl', '--fleet', fleet, 'drain', `u/127.0.0.1:${a.port}`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^INSTANCE +RESULT +MESSAGE\nlb1 +ok +u\/127\.0\.0\.1:\d+ draining.*\nlb2 +ok .*\nlb3 +FAILED +cannot reach tcplb at \S+lb3\.sock/);
  assert.match(r.stderr, /1 of 3 instances failed/);

  tm.keys('f', 'q');
  await tm.waitScreen('f', /detached; the 3 tcplb instances go on serving[\s\S]*EXITED 0/, 'q detaches at once');
  assert.equal(await greetingVia(port, HOSTS[0]), 'B', 'lb1 serves on (A drained again by ctl)');
});
