/**
 * The console attached to a headless tcplb, in real terminals (tmux 120x30):
 * a plain background `tcplb-console --headless`, then `tcplb-console -c
 * CONFIG` on a terminal attaches to it (its control socket answers) and shows
 * the table; `d` drains (new connections avoid the backend, an open one keeps
 * relaying); `q` detaches and the proxy still serves; `attach --socket`
 * shows DRAINING, `e` restores it; two consoles at once both show an action
 * made in either, each with its actor. Every process is killed by PID.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { requireBinary } from '../fixtures/real/available.js';
import { BIN } from '../helpers/cli.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readLine, waitFor } from '../helpers/net.js';

const SOCK = `tcplb-attach-${process.pid}`; // a private tmux server: nothing else of the user's is touched
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCK, ...args], { encoding: 'utf8' });
const screen = (win: string): string => tmux('capture-pane', '-p', '-t', win);

/** The children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function waitScreen(win: string, re: RegExp, what: string, ms = 10_000): Promise<string> {
  let last = '';
  try {
    await waitFor(() => re.test((last = screen(win))), { timeoutMs: ms, what: `${win}: ${what}` });
  } catch (err) {
    throw new Error(`${(err as Error).message}; screen:\n${last}`);
  }
  return last;
}

const killed = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

/** A console in its own tmux session; returns the console process's pid (the pane's shell's child). */
async function openConsole(t: TestContext, name: string, args: string[]): Promise<number> {
  const cmd = `${process.execPath} ${BIN} ${args.join(' ')}; echo EXITED $?; sleep 30`;
  if (tmuxStarted) tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '30', cmd);
  else {
    tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '30', cmd);
    tmuxStarted = true;
    t.after(() => {
      try {
        tmux('kill-server');
      } catch {
        /* already gone */
      }
    });
  }
  const pane = Number(tmux('display-message', '-p', '-t', name, '#{pane_pid}').trim());
  let pid: number | undefined;
  await waitFor(() => (pid = childrenOf(pane)[0]), { what: `${name}'s console process` });
  t.after(() => {
    for (const p of [...childrenOf(pane), pane]) killed(p);
  });
  return pid!;
}
let tmuxStarted = false;

test('attached consoles in tmux: d drains, q detaches (tcplb serves on), a second attach shows DRAINING and e restores, two consoles see each other\'s actions', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-att-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  const sock = path.join(dir, 'tcplb.sock');
  fs.writeFileSync(file, `{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: "2s" }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
    control: { socket: "tcplb.sock" },
    log: { access: null },
  }`);

  // The proxy: a plain background process, no terminal.
  const proxy = spawn(process.execPath, [BIN, '--headless', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proxy.stderr.on('data', (d) => (log += d));
  t.after(() => killed(proxy.pid!));
  await waitFor(() => /serving/.test(log), { what: 'the headless tcplb serving', timeoutMs: 8000 });
  // A table row (`› 127.0.0.1:P  UP`), not an event line (`… u/127.0.0.1:P UP -> DRAINING`).
  const rowA = (state: string): RegExp => new RegExp(`^[› ] 127\\.0\\.0\\.1:${a.port}\\s+${state}`, 'm');

  // A plain start on a terminal finds the config's control socket answering: it attaches.
  await openConsole(t, 'c1', ['-c', file]);
  const first = await waitScreen('c1', rowA('UP'), 'the table');
  assert.match(first, new RegExp(`attached to pid ${proxy.pid} · started \\d\\d:\\d\\d · config ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

  let open;
  for (let i = 0; i < 6 && open === undefined; i++) {
    const c = await connect(port);
    if ((await readLine(c)) === 'A') open = c;
    else c.destroy();
  }
  assert.ok(open, 'round robin never reached A');
  t.after(() => open.destroy());

  tmux('send-keys', '-t', 'c1', 'd'); // A is first: selected at start
  await waitScreen('c1', rowA('DRAINING'), 'DRAINING');
  await waitScreen('c1', /draining: no new connections; 1 open continue/, 'the reply in the status line');
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), 'B', 'a drained backend got a new connection');
  open.write('still relaying\n');
  assert.equal(await readLine(open), 'still relaying');

  tmux('send-keys', '-t', 'c1', 'q');
  await waitScreen('c1', new RegExp(`detached; tcplb \\(pid ${proxy.pid}\\) goes on serving[\\s\\S]*EXITED 0`), 'detached at once, exit 0');
  assert.equal(proxy.exitCode, null, 'the proxy still runs');
  assert.equal(await greetingVia(port), 'B', 'the proxy still serves');
  open.write('after detach\n');
  assert.equal(await readLine(open), 'after detach');

  // Two consoles at once, by `attach`: both see the drain, and each action lands in both logs with its actor.
  const p2 = await openConsole(t, 'c2', ['attach', '--socket', sock]);
  const p3 = await openConsole(t, 'c3', ['attach', '-c', file]);
  await waitScreen('c2', rowA('DRAINING'), 'DRAINING on a second attach');
  await waitScreen('c3', rowA('DRAINING'), 'DRAINING on a third');
  tmux('send-keys', '-t', 'c2', 'e');
  await waitScreen('c2', rowA('UP'), 'UP again');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await greetingVia(port));
  assert.ok(seen.has('A'), 'enabled backend gets traffic again');
  // The actor is the console's process, from the kernel (`ctl (peer unknown)` without the addon).
  const actor = (pid: number): string => `by ctl \\((?:user \\S+, pid ${pid}|peer unknown)\\)`;
  const enabled = new RegExp(`u/127\\.0\\.0\\.1:${a.port}\\s+enable ${actor(p2)}`);
  await waitScreen('c2', enabled, 'the enable in its own log');
  await waitScreen('c3', enabled, 'the enable in the other console\'s log');
  tmux('send-keys', '-t', 'c3', 'x');
  const disabled = new RegExp(`u/127\\.0\\.0\\.1:${a.port}\\s+disable ${actor(p3)}`);
  await waitScreen('c3', disabled, 'the disable in its own log');
  await waitScreen('c2', disabled, 'the disable in the other console\'s log');
  await waitScreen('c2', rowA('DISABLED'), 'DISABLED in the other console');

  // The proxy stops (SIGTERM, as systemctl stop would; nothing open, so at once): the consoles say the link is lost, they do not crash.
  open.destroy();
  proxy.kill('SIGTERM');
  await waitScreen('c2', /connection to tcplb lost/, 'the lost link said');
  assert.doesNotMatch(screen('c2'), /EXITED/, 'the console runs on, retrying');
  tmux('send-keys', '-t', 'c2', 'q');
  await waitScreen('c2', /detached[\s\S]*EXITED 0/, 'detach while lost');
});
