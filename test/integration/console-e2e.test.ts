/**
 * The real `tcplb-console` in a real terminal (tmux, 80x24) against real
 * backends: wait for the table, drain a backend with `d`, see DRAINING, check
 * that new connections avoid it while an open one keeps relaying, restore it
 * with `e`, then quit with `q` `y`. And keys typed ahead, arriving in one
 * read (`tmux send-keys -l`, as over a slow ssh link), each act in order.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { requireBinary } from '../fixtures/real/available.js';
import { BIN, runCli } from '../helpers/cli.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readLine, waitFor } from '../helpers/net.js';
import { Tmux } from '../helpers/tmux.js';

/**
 * The binary in a private tmux server (80x24) with one listener over
 * `servers`, a control socket for `ctl`, and cleanup by PID.
 */
function startInTmux(t: TestContext, port: number, servers: number[]): { file: string; waitScreen: (re: RegExp, what: string) => Promise<string>; keys: (...k: string[]) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-e2e-'));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, `{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: "2s" }, servers: [${servers.map((p) => `"127.0.0.1:${p}"`).join(', ')}] } },
    control: { socket: "tcplb.sock" },
    log: { access: null },
  }`);
  const tmux = new Tmux(t, 'e2e');
  tmux.session('lb', `${process.execPath} ${BIN} -c ${file}`, 80, 24);
  return { file, waitScreen: (re, what) => tmux.waitScreen('lb', re, what, 8000), keys: (...k) => tmux.keys('lb', ...k) };
}

test('console e2e in tmux: d drains (open connection keeps relaying), e enables, q y quits', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const { waitScreen, keys } = startInTmux(t, port, [a.port, b.port]);
  const first = await waitScreen(new RegExp(`127\\.0\\.0\\.1:${a.port}\\s+UP`), 'the upstream table');
  for (const line of first.split('\n')) assert.ok(line.length <= 80, `line wider than 80: ${line}`);

  // An open connection on A, made before the drain.
  let open;
  for (let i = 0; i < 6 && open === undefined; i++) {
    const c = await connect(port);
    if ((await readLine(c)) === 'A') open = c;
    else c.destroy();
  }
  assert.ok(open, 'round robin never reached A');

  // A is the first backend: selected at start. Drain it.
  keys('d');
  await waitScreen(new RegExp(`127\\.0\\.0\\.1:${a.port}\\s+DRAINING`), 'DRAINING');
  await waitScreen(/draining: no new connections; 1 open continue/, 'the status line');
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), 'B', 'a drained backend got a new connection');
  open.write('still relaying\n');
  assert.equal(await readLine(open), 'still relaying');

  keys('e');
  await waitScreen(new RegExp(`127\\.0\\.0\\.1:${a.port}\\s+UP`), 'UP again');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await greetingVia(port));
  assert.ok(seen.has('A'), 'enabled backend gets traffic again');
  await waitScreen(/drain by console/, 'the action in the event log');

  keys('q');
  await waitScreen(/Quit\? \d+ open connections? will be closed/, 'the quit question with the open connection count');
  keys('y');
  await waitScreen(/EXITED 0/, 'exit 0');
  await waitFor(() => open.destroyed || open.readableEnded, { timeoutMs: 2000, what: 'open connection closed by quit' });
});

test('console e2e in tmux: keys in one read (send-keys -l jjd) move twice and drain the third row; qy quits', async (t) => {
  if (!requireBinary('tmux', t)) return;
  const servers = await Promise.all(['A', 'B', 'C', 'D'].map((n) => listen(namedEcho(n))));
  t.after(() => Promise.all(servers.map((s) => s.close())));
  const port = await reservePort();
  const { file, waitScreen, keys } = startInTmux(t, port, servers.map((s) => s.port));
  const row = (p: number, state: string): RegExp => new RegExp(`127\\.0\\.0\\.1:${p}\\s+${state}`);
  await waitScreen(new RegExp(servers.map((s) => row(s.port, 'UP').source).join('[\\s\\S]*')), 'four UP rows');

  keys('-l', 'jjd'); // one write to the terminal: the console reads the three keys at once
  const third = servers[2]!.port;
  const pane = await waitScreen(new RegExp(`› ${row(third, 'DRAINING').source}`), 'the third row selected and DRAINING');
  assert.match(pane, /draining: no new connections/);
  for (const s of [servers[0]!, servers[1]!, servers[3]!]) assert.match(pane, row(s.port, 'UP'), `127.0.0.1:${s.port} still UP`);

  const st = await runCli(['ctl', '-c', file, 'status']);
  assert.equal(st.code, 0, st.stderr);
  const states = (JSON.parse(st.stdout) as { upstreams: { backends: { id: string; state: string }[] }[] }).upstreams[0]!.backends.map((x) => [x.id, x.state]);
  assert.deepEqual(states, servers.map((s) => [`u/127.0.0.1:${s.port}`, s.port === third ? 'DRAINING' : 'UP']));

  keys('-l', 'qy'); // the y answers the quit prompt in the same read
  await waitScreen(/EXITED 0/, 'exit 0');
});
