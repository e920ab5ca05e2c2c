/**
 * Who ran a `ctl` command: the event log and the log line name the user and
 * pid of the process at the other end of the control socket, as the kernel
 * recorded them (SO_PEERCRED through the addon), whichever engine relays.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT, runCli, startCli, type RunResult } from '../helpers/cli.js';
import { listen, namedEcho, reservePort, waitFor } from '../helpers/net.js';

async function setup(t: import('node:test').TestContext) {
  const a = await listen(namedEcho('A'));
  t.after(() => a.close());
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-ctlpeer-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(
    file,
    `{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}"] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
  }`,
  );
  return { dir, file, id: `u/127.0.0.1:${a.port}` };
}

/** `tcplb-console ctl ARGS` as a child process; its pid comes back with the result. */
function ctlChild(args: string[]): { pid: number; done: Promise<RunResult> } {
  const child = spawn(process.execPath, [BIN, 'ctl', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const t = setTimeout(() => child.kill('SIGKILL'), 15000);
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, pid: child.pid! });
    }),
  );
  return { pid: child.pid!, done };
}

const events = async (file: string): Promise<string[]> => {
  const st = await runCli(['ctl', '-c', file, 'status']);
  assert.equal(st.code, 0, st.stderr);
  return (JSON.parse(st.stdout) as { events: { text: string }[] }).events.map((e) => e.text);
};

test('ctl drain from a child process: the event log and the log line name its user and pid', async (t) => {
  const s = await setup(t);
  const run = await startCli(['--headless', '-c', s.file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  await waitFor(() => fs.existsSync(path.join(s.dir, 'tcplb.sock')), { timeoutMs: 3000, what: 'socket' });

  const c = ctlChild(['-c', s.file, 'drain', s.id]);
  const r = await c.done;
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(c.pid, process.pid);
  const actor = `ctl (user ${os.userInfo().username}, pid ${c.pid})`;
  const texts = await events(s.file);
  assert.ok(texts.includes(`drain by ${actor}`), `no "drain by ${actor}" in:\n${texts.join('\n')}`);
  await waitFor(() => run.stderr().includes(`drain by ${actor}`), { timeoutMs: 3000, what: `log line naming ${actor}` });

  // Each connection is named by its own process: a second ctl has another pid.
  const k = ctlChild(['-c', s.file, 'enable', s.id]);
  assert.equal((await k.done).code, 0);
  assert.ok((await events(s.file)).includes(`enable by ctl (user ${os.userInfo().username}, pid ${k.pid})`));
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('without the addon a ctl caller is "ctl (peer unknown)", never a name it could claim', async (t) => {
  const s = await setup(t);
  // TCPLB_NO_NATIVE hides the addon from the server; the js engine relays.
  const env = { ...process.env, TCPLB_NO_NATIVE: '1', TCPLB_ENGINE: 'js' };
  const run = await startCli(['--headless', '-c', s.file], /serving/, { env });
  t.after(() => run.child.kill('SIGKILL'));
  await waitFor(() => fs.existsSync(path.join(s.dir, 'tcplb.sock')), { timeoutMs: 3000, what: 'socket' });
  const r = await runCli(['ctl', '-c', s.file, 'drain', s.id]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await events(s.file)).includes('drain by ctl (peer unknown)'));
  await waitFor(() => run.stderr().includes('drain by ctl (peer unknown)'), { timeoutMs: 3000, what: 'log line' });
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});
