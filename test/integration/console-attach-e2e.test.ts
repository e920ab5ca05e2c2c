/**
 * The console attached to a headless tcplb, in real terminals (tmux 120x30):
 * a plain background `tcplb-console --headless`, then `tcplb-console -c
 * CONFIG` on a terminal attaches to it (its control socket answers) and shows
 * the table; `d` drains (new connections avoid the backend, an open one keeps
 * relaying); `q` detaches and the proxy still serves; `attach --socket`
 * shows DRAINING, `e` restores it; two consoles at once both show an action
 * made in either, each with its actor. And a restart under an attached
 * console (SIGTERM, then the same config again): the lost link in red while
 * tcplb is down, back by itself with the new pid, keys acting on the new
 * instance. Every process is killed by PID.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { requireBinary } from '../fixtures/real/available.js';
import { BIN, runCli } from '../helpers/cli.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readLine, waitFor } from '../helpers/net.js';
import { Tmux } from '../helpers/tmux.js';

const killed = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

/** A console in its own tmux session (120x30); returns the console process's pid (the pane's shell's child). */
function openConsole(tmux: Tmux, name: string, args: string[]): Promise<number> {
  const pane = tmux.session(name, `${process.execPath} ${BIN} ${args.join(' ')}`, 120, 30);
  return tmux.commandPid(pane, `${name}'s console process`);
}

/** Two echo backends A and B, and a config with one listener over them and a control socket next to it. */
async function setup(t: TestContext): Promise<{ a: { port: number }; port: number; file: string; sock: string }> {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-att-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, `{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: "2s" }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
    control: { socket: "tcplb.sock" },
    log: { access: null },
  }`);
  return { a, port, file, sock: path.join(dir, 'tcplb.sock') };
}

/** The proxy: a plain background process, no terminal; resolves once it serves. */
async function startHeadless(t: TestContext, file: string): Promise<ChildProcess> {
  const proxy = spawn(process.execPath, [BIN, '--headless', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proxy.stderr!.on('data', (d) => (log += d));
  t.after(() => killed(proxy.pid!));
  await waitFor(() => /serving/.test(log), { what: `the headless tcplb (pid ${proxy.pid}) serving`, timeoutMs: 8000 });
  return proxy;
}

/** A process's niceness (`ps -o ni`), from /proc/PID/stat. */
function niceOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** A table row (`› 127.0.0.1:P  UP`), not an event line (`… u/127.0.0.1:P UP -> DRAINING`). */
const row = (port: number, state: string): RegExp => new RegExp(`^[› ] 127\\.0\\.0\\.1:${port}\\s+${state}`, 'm');

test('attached consoles in tmux: d drains, q detaches (tcplb serves on), a second attach shows DRAINING and e restores, two consoles see each other\'s actions', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const { a, port, file, sock } = await setup(t);
  const proxy = await startHeadless(t, file);
  const tmux = new Tmux(t, 'attach');
  const screen = (win: string): string => tmux.screen(win);
  const waitScreen = (win: string, re: RegExp, what: string): Promise<string> => tmux.waitScreen(win, re, what);
  const rowA = (state: string): RegExp => row(a.port, state);

  // A plain start on a terminal finds the config's control socket answering: it attaches.
  const consolePid = await openConsole(tmux, 'c1', ['-c', file]);
  const first = await waitScreen('c1', rowA('UP'), 'the table');
  assert.match(first, new RegExp(`attached to pid ${proxy.pid} · started \\d\\d:\\d\\d · config ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  // An observer yields the cores to the balancer: the attached console runs at niceness 10, tcplb at 0.
  assert.equal(niceOf(consolePid), 10, 'the attached console\'s niceness');
  assert.equal(niceOf(proxy.pid!), 0, 'tcplb\'s niceness');

  let open;
  for (let i = 0; i < 6 && open === undefined; i++) {
    const c = await connect(port);
    if ((await readLine(c)) === 'A') open = c;
    else c.destroy();
  }
  assert.ok(open, 'round robin never reached A');
  t.after(() => open.destroy());

  tmux.keys('c1', 'd'); // A is first: selected at start
  await waitScreen('c1', rowA('DRAINING'), 'DRAINING');
  await waitScreen('c1', /draining: no new connections; 1 open continue/, 'the reply in the status line');
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), 'B', 'a drained backend got a new connection');
  open.write('still relaying\n');
  assert.equal(await readLine(open), 'still relaying');

  tmux.keys('c1', 'q');
  await waitScreen('c1', new RegExp(`detached; tcplb \\(pid ${proxy.pid}\\) goes on serving[\\s\\S]*EXITED 0`), 'detached at once, exit 0');
  assert.equal(proxy.exitCode, null, 'the proxy still runs');
  assert.equal(await greetingVia(port), 'B', 'the proxy still serves');
  open.write('after detach\n');
  assert.equal(await readLine(open), 'after detach');

  // Two consoles at once, by `attach`: both see the drain, and each action lands in both logs with its actor.
  const p2 = await openConsole(tmux, 'c2', ['attach', '--socket', sock]);
  const p3 = await openConsole(tmux, 'c3', ['attach', '-c', file]);
  await waitScreen('c2', rowA('DRAINING'), 'DRAINING on a second attach');
  await waitScreen('c3', rowA('DRAINING'), 'DRAINING on a third');
  tmux.keys('c2', 'e');
  await waitScreen('c2', rowA('UP'), 'UP again');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await greetingVia(port));
  assert.ok(seen.has('A'), 'enabled backend gets traffic again');
  // The actor is the console's process, from the kernel (`ctl (peer unknown)` without the addon).
  const actor = (pid: number): string => `by ctl \\((?:user \\S+, pid ${pid}|peer unknown)\\)`;
  const enabled = new RegExp(`u/127\\.0\\.0\\.1:${a.port}\\s+enable ${actor(p2)}`);
  await waitScreen('c2', enabled, 'the enable in its own log');
  await waitScreen('c3', enabled, 'the enable in the other console\'s log');
  tmux.keys('c3', 'x');
  const disabled = new RegExp(`u/127\\.0\\.0\\.1:${a.port}\\s+disable ${actor(p3)}`);
  await waitScreen('c3', disabled, 'the disable in its own log');
  await waitScreen('c2', disabled, 'the disable in the other console\'s log');
  await waitScreen('c2', rowA('DISABLED'), 'DISABLED in the other console');

  // The proxy stops (SIGTERM, as systemctl stop would; nothing open, so at once): the consoles say the link is lost, they do not crash.
  open.destroy();
  proxy.kill('SIGTERM');
  await waitScreen('c2', /connection to tcplb lost/, 'the lost link said');
  assert.doesNotMatch(screen('c2'), /EXITED/, 'the console runs on, retrying');
  tmux.keys('c2', 'q');
  await waitScreen('c2', /detached[\s\S]*EXITED 0/, 'detach while lost');
});

test('attached console across a restart: the lost link in red while tcplb is down, back by itself with the new pid, and d drains on the new instance', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const { a, port, file, sock } = await setup(t);
  const first = await startHeadless(t, file);
  const tmux = new Tmux(t, 'restart');
  await openConsole(tmux, 'c', ['attach', '--socket', sock]);
  await tmux.waitScreen('c', new RegExp(`attached to pid ${first.pid} · [\\s\\S]*${row(a.port, 'UP').source}`, 'm'), 'the first instance and its table');

  // Stopped as systemctl stop would stop it (SIGTERM), then started again with the same config.
  const exited = new Promise((resolve) => first.once('exit', resolve));
  first.kill('SIGTERM');
  await exited;
  const down = await tmux.waitScreen('c', /connection to tcplb lost/, 'the lost link said while tcplb is down');
  assert.doesNotMatch(down, /EXITED/, 'the console runs on, retrying');
  // Red: the header line carries a foreground-red SGR (31, or 91 bright) before its text.
  const lostLine = tmux.colours('c').split('\n').find((l) => l.includes('connection to tcplb lost')) ?? '';
  assert.match(lostLine, /\x1b\[(?:[0-9;]*;)?(?:31|91)(?:;[0-9;]*)?m[^\n]*connection to tcplb lost/, `the lost-link line in red: ${JSON.stringify(lostLine)}`);

  const second = await startHeadless(t, file);
  assert.notEqual(second.pid, first.pid);
  const back = await tmux.waitScreen('c', new RegExp(`attached to pid ${second.pid} · `), 'the new pid in the header, with no key pressed');
  assert.doesNotMatch(back, /connection to tcplb lost/, 'the lost line is gone once the link is back');
  await tmux.waitScreen('c', row(a.port, 'UP'), 'the new instance\'s table');

  // A key acts on the new instance: A (selected at start) is drained there.
  tmux.keys('c', 'd');
  await tmux.waitScreen('c', row(a.port, 'DRAINING'), 'DRAINING after the restart');
  const st = await runCli(['ctl', '--socket', sock, 'status']);
  assert.equal(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout) as { pid?: number; upstreams: { backends: { id: string; state: string }[] }[] };
  assert.equal(status.upstreams[0]!.backends.find((x) => x.id === `u/127.0.0.1:${a.port}`)?.state, 'DRAINING', st.stdout);
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), 'B', 'the drained backend got a new connection from the new instance');
  tmux.keys('c', 'q');
  await tmux.waitScreen('c', new RegExp(`detached; tcplb \\(pid ${second.pid}\\) goes on serving[\\s\\S]*EXITED 0`), 'detached from the new instance');
  assert.equal(second.exitCode, null, 'the new instance runs on');
});
