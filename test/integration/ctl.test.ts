/**
 * `tcplb-console ctl` against a running headless instance: every command, a
 * wrong backend name, a malformed request, and the state file across restarts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, runCli, startCli } from '../helpers/cli.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readLine, waitFor } from '../helpers/net.js';

async function setup(t: import('node:test').TestContext) {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-ctl-'));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(
    file,
    `{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: "10s" }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
    stateFile: "tcplb.state",
  }`,
  );
  const idA = `u/127.0.0.1:${a.port}`;
  const idB = `u/127.0.0.1:${b.port}`;
  return { a, b, port, dir, file, idA, idB };
}

test('ctl: status, drain, enable, disable, check, kill, reload; errors for bad names and usage', async (t) => {
  const s = await setup(t);
  const run = await startCli(['--headless', '-c', s.file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const ctl = (...args: string[]) => runCli(['ctl', '-c', s.file, ...args]);
  await waitFor(() => fs.existsSync(path.join(s.dir, 'tcplb.sock')), { timeoutMs: 3000, what: 'socket' });
  assert.equal(fs.statSync(path.join(s.dir, 'tcplb.sock')).mode & 0o777, 0o600);

  const st = await ctl('status');
  assert.equal(st.code, 0, st.stderr);
  const snap = JSON.parse(st.stdout);
  assert.deepEqual(snap.upstreams[0].backends.map((x: { id: string }) => x.id), [s.idA, s.idB]);

  // drain A: new connections avoid it, an open one keeps relaying
  const open = await connect(s.port, '127.0.0.1');
  const first = await readLine(open);
  const openId = first === 'A' ? s.idA : s.idB;
  const d = await ctl('drain', openId);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /draining: no new connections; 1 open continue/);
  for (let i = 0; i < 4; i++) assert.notEqual(await greetingVia(s.port), first);
  open.write('still\n');
  assert.equal(await readLine(open), 'still');
  const st2 = JSON.parse((await ctl('status')).stdout);
  assert.equal(st2.upstreams[0].backends.find((x: { id: string }) => x.id === openId).state, 'DRAINING');
  assert.ok(st2.events.some((e: { text: string }) => /drain by ctl/.test(e.text)));

  // kill closes the open one
  const k = await ctl('kill', openId);
  assert.equal(k.code, 0);
  assert.match(k.stdout, /closed 1 open connection/);
  await waitFor(() => open.destroyed || open.readableEnded, { timeoutMs: 2000, what: 'killed connection closed' });

  assert.equal((await ctl('enable', openId)).code, 0);
  assert.equal((await ctl('disable', openId)).code, 0);
  const c = await ctl('check', s.idA);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /pass L4_OK/);
  const r = await ctl('reload');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /reloaded: no changes/);

  const bad = await ctl('drain', 'u/127.0.0.1:1');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no backend "u\/127\.0\.0\.1:1"/);
  assert.equal((await ctl('frobnicate')).code, 2);
  assert.equal((await ctl('drain')).code, 2);

  // a malformed request gets an error reply; the server carries on
  const raw = net.connect(path.join(s.dir, 'tcplb.sock'));
  raw.write('this is not json\n');
  const reply = JSON.parse(await readLine(raw));
  assert.equal(reply.ok, false);
  raw.destroy();
  assert.equal((await ctl('status')).code, 0);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
  assert.equal(fs.existsSync(path.join(s.dir, 'tcplb.sock')), false, 'socket removed on exit');
});

test('state file: a drained backend stays drained across a restart', async (t) => {
  const s = await setup(t);
  let run = await startCli(['--headless', '-c', s.file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  assert.equal((await runCli(['ctl', '-c', s.file, 'drain', s.idA])).code, 0);
  await waitFor(() => fs.existsSync(path.join(s.dir, 'tcplb.state')), { timeoutMs: 2000, what: 'state file written' });
  run.child.kill('SIGTERM');
  await run.exited;
  run = await startCli(['--headless', '-c', s.file], /serving/);
  assert.match(run.stderr(), /state file: .*draining/);
  for (let i = 0; i < 4; i++) assert.equal(await greetingVia(s.port), 'B');
  const snap = JSON.parse((await runCli(['ctl', '-c', s.file, 'status'])).stdout);
  assert.equal(snap.upstreams[0].backends[0].state, 'DRAINING');
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

/** `ctl watch ARGS` as its own process; stdout collected. */
function spawnWatch(file: string, args: string[]): { child: ChildProcess; out(): string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'ctl', '-c', file, 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, out: () => out, exited };
}

test('ctl watch (--json and human) shows a drain made by ctl drain from another process', async (t) => {
  const s = await setup(t);
  const run = await startCli(['--headless', '-c', s.file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const ctl = (...args: string[]) => runCli(['ctl', '-c', s.file, ...args]);
  await waitFor(() => fs.existsSync(path.join(s.dir, 'tcplb.sock')), { timeoutMs: 3000, what: 'socket' });
  const json = spawnWatch(s.file, ['--json']);
  const human = spawnWatch(s.file, []);
  t.after(() => {
    json.child.kill('SIGKILL');
    human.child.kill('SIGKILL');
  });
  // Attached once a `check` (an event) shows in both; the watch prints nothing before an event.
  await waitFor(
    async () => {
      if (json.out().includes('check by ctl') && human.out().includes('check by ctl')) return true;
      await ctl('check', s.idB);
      return false;
    },
    { what: 'both watches attached (a check event shown)', timeoutMs: 8000, intervalMs: 100 },
  );
  assert.equal((await ctl('drain', s.idA)).code, 0);
  await waitFor(() => json.out().includes('drain by ctl') && human.out().includes('drain by ctl'), { what: 'the drain event in both watches', timeoutMs: 3000 });
  const lines = json
    .out()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
  assert.ok(lines.every((l) => l.type === 'event'), 'events only, one JSON object a line');
  // The actor names the ctl process when the addon reads its peer credentials (h-peer): `ctl (user NAME, pid N)`.
  const actor = 'ctl(?: \\((?:user \\S+|uid \\d+)(?:, pid \\d+)?\\)| \\(peer unknown\\))?';
  assert.ok(
    lines.some((l) => l.data.kind === 'action' && l.data.backend === s.idA && new RegExp(`^drain by ${actor}$`).test(l.data.text)),
    json.out(),
  );
  assert.ok(lines.some((l) => l.data.kind === 'transition' && new RegExp(`^UP -> DRAINING \\(operator: drain by ${actor}\\)$`).test(l.data.text)), json.out());
  assert.match(human.out(), new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${s.idA.replace(/[./]/g, '\\$&')} drain by ${actor}$`, 'm'));
  // Interrupted: exit 0 (SIGTERM and SIGINT end a watch as the way to stop it).
  json.child.kill('SIGTERM');
  human.child.kill('SIGINT');
  assert.deepEqual(await Promise.all([json.exited, human.exited]), [0, 0]);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});
