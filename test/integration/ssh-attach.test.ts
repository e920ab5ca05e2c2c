/**
 * Remote instances over ssh, with a real OpenSSH server (private, on
 * 127.0.0.2, a throwaway host key and an authorized key made by the test)
 * in front of a headless tcplb: `ctl --socket ssh://…` and the attached
 * console's source reach the control socket through `ssh … ctl bridge`;
 * the event log names the ssh user and the bridge's pid (read from the
 * socket by tcplb, not claimed by the client); a key sshd does not know
 * fails with ssh's own words. No TCP port of tcplb's is involved.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { attachRemote } from '../../src/control/remote.js';
import { parseSshUrl, sshTarget } from '../../src/control/target.js';
import type { Snapshot } from '../../src/runtime/snapshot.js';
import { requireBinary, requireRoot } from '../fixtures/real/available.js';
import { startSshd } from '../fixtures/real/sshd.js';
import { BIN, runCli, startCli } from '../helpers/cli.js';
import { greetingVia, listen, namedEcho, reservePort, waitFor } from '../helpers/net.js';
import { Tmux } from '../helpers/tmux.js';

test('ssh://: ctl and an attached console steer a headless tcplb through a real sshd; the actor is the ssh user and the bridge pid', async (t) => {
  if (!requireRoot(t) || !requireBinary('sshd', t)) return;
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-ssh-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  const sock = path.join(dir, 'tcplb.sock');
  fs.writeFileSync(file, `{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
    control: { socket: "tcplb.sock" },
    log: { access: null },
  }`);
  const proxy = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => proxy.child.kill('SIGKILL'));

  const sshd = await startSshd({ host: '127.0.0.2', port: await reservePort('127.0.0.2') });
  t.after(() => sshd.stop());
  const url = `ssh://${sshd.user}@127.0.0.2:${sshd.port}${sock}`;
  const env = { ...process.env, TCPLB_SSH: sshd.clientSsh.join(' '), TCPLB_REMOTE_CONSOLE: `${process.execPath} ${BIN}` };
  const A = `u/127.0.0.1:${a.port}`;

  // ctl through ssh: drain, and status shows it with who did it.
  const drained = await runCli(['ctl', '--socket', url, 'drain', A], { env, timeoutMs: 20_000 });
  assert.equal(drained.code, 0, drained.stderr);
  assert.match(drained.stdout, /draining/);
  for (let i = 0; i < 4; i++) assert.equal(await greetingVia(port), 'B', 'a drained backend got a new connection');
  const st = await runCli(['ctl', '--socket', url, 'status'], { env, timeoutMs: 20_000 });
  assert.equal(st.code, 0, st.stderr);
  const snap = JSON.parse(st.stdout) as Snapshot;
  assert.equal(snap.pid, proxy.child.pid);
  const ev = snap.events.find((e) => e.kind === 'action' && e.backend === A && /drain/.test(e.text));
  assert.ok(ev, `no drain event in ${JSON.stringify(snap.events)}`);
  const m = /by ctl \(user (\w+), pid (\d+)\)/.exec(ev.text);
  assert.ok(m, `actor not named from the socket: ${ev.text}`);
  assert.equal(m[1], sshd.user);
  // The peer is the bridge sshd ran, not the local ctl (it never touched the socket).
  assert.notEqual(Number(m[2]), drained.pid);

  // The attached console's source, through the same ssh: sees DRAINING, enables, sees the event streamed.
  const parts = parseSshUrl(url);
  assert.ok(typeof parts !== 'string');
  const target = sshTarget(url, parts, { ssh: sshd.clientSsh, remoteConsole: [process.execPath, BIN] });
  const src = await attachRemote(target, { intervalMs: 200 });
  t.after(() => src.attachment.close());
  assert.equal(src.attachment.link().pid, proxy.child.pid);
  const stateOf = (): string | undefined => src.snapshot().upstreams[0]?.backends.find((x) => x.id === A)?.state;
  assert.equal(stateOf(), 'DRAINING');
  const r = await src.enable(A, 'console');
  assert.equal(r.ok, true, r.message);
  await waitFor(() => stateOf() === 'UP', { what: 'UP streamed back through ssh', timeoutMs: 10_000 });
  await waitFor(() => src.snapshot().events.some((e) => e.backend === A && /enable.*by ctl \(user \w+, pid \d+\)/.test(e.text)), { what: 'the enable event with its actor', timeoutMs: 10_000 });

  // The real command on a terminal: `tcplb-console attach ssh://…`, and a key acts through ssh.
  if (requireBinary('tmux', t)) {
    const tm = new Tmux(t, 'ssh');
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    tm.session('s', `TCPLB_SSH=${q(env.TCPLB_SSH)} TCPLB_REMOTE_CONSOLE=${q(env.TCPLB_REMOTE_CONSOLE)} ${process.execPath} ${BIN} attach ${url}`, 100, 30);
    await tm.waitScreen('s', new RegExp(`attached to pid ${proxy.child.pid} · started`), 'the attached header through ssh', 15_000);
    await tm.waitScreen('s', new RegExp(`^[› ] 127\\.0\\.0\\.1:${a.port}\\s+UP`, 'm'), 'A up');
    tm.keys('s', 'd');
    await tm.waitScreen('s', new RegExp(`^[› ] 127\\.0\\.0\\.1:${a.port}\\s+DRAINING`, 'm'), 'd drains through ssh', 15_000);
    await waitFor(() => stateOf() === 'DRAINING', { what: 'the drain seen by the other attached source', timeoutMs: 10_000 });
    tm.keys('s', 'e');
    await waitFor(() => stateOf() === 'UP', { what: 'enabled again', timeoutMs: 10_000 });
    tm.keys('s', 'q');
    await tm.waitScreen('s', new RegExp(`detached; tcplb \\(pid ${proxy.child.pid}\\) goes on serving[\\s\\S]*EXITED 0`), 'q detaches');
  }

  // A key sshd does not know: ssh's own refusal, exit 1, nothing changed.
  const refused = await runCli(['ctl', '--socket', url, 'drain', A], { env: { ...env, TCPLB_SSH: sshd.wrongKeySsh.join(' ') }, timeoutMs: 20_000 });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  assert.equal(stateOf(), 'UP');
});
