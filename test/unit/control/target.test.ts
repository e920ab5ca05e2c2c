/**
 * Instance addresses: ssh:// parsing, and the ssh transport end to end with a
 * stand-in for ssh (a script that runs the remote command here, as ssh would
 * on the far host): a request goes through `ctl bridge` to a real control
 * server and back; ssh's own failures reach the operator with ssh's words.
 * The same through a real sshd: test/integration/ssh-attach.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlServer } from '../../../src/control/server.js';
import { loadNative } from '../../../src/proxy/native-binding.js';
import { request, runCtl } from '../../../src/control/client.js';
import { attachRemote } from '../../../src/control/remote.js';
import { DEFAULT_REMOTE_SOCKET, parseSshUrl, parseTarget, sshTarget } from '../../../src/control/target.js';
import { waitFor } from '../../helpers/wait.js';
import { capture, fakeActions, KNOWN, tmpDir } from './fake-actions.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('ssh:// addresses: user, host, port and socket path; the default path is the systemd unit\'s; malformed ones are named', () => {
  assert.deepEqual(parseSshUrl('ssh://lb2.example.net'), { host: 'lb2.example.net', socket: DEFAULT_REMOTE_SOCKET });
  assert.deepEqual(parseSshUrl('ssh://admin@lb2:2222/var/run/t.sock'), { host: 'lb2', user: 'admin', port: 2222, socket: '/var/run/t.sock' });
  assert.deepEqual(parseSshUrl('ssh://[::1]:22/'), { host: '::1', port: 22, socket: DEFAULT_REMOTE_SOCKET });
  assert.match(parseSshUrl('ssh://a:pw@lb2') as string, /password in the address is not supported/);
  assert.match(parseSshUrl('ssh:///x') as string, /names no host|not a valid/);
  assert.match(parseTarget('http://lb2') as string, /only ssh:\/\/ is supported/);
  const unix = parseTarget('/run/tcplb/tcplb.sock');
  assert.ok(typeof unix !== 'string' && unix.kind === 'unix' && unix.label === '/run/tcplb/tcplb.sock');
});

/** A stand-in for ssh: skips options up to `--` and the destination, runs the remote command here, as sshd would on the far host. */
function fakeSsh(dir: string): string {
  const file = path.join(dir, 'fake-ssh');
  fs.writeFileSync(
    file,
    `#!/bin/sh
echo "$@" > "${dir}/args"
while [ "$1" != "--" ]; do shift; done
shift; dest="$1"; shift
case "$dest" in unreachable*) echo "ssh: connect to host $dest port 22: Connection refused" >&2; exit 255;; esac
exec sh -c "$1"
`,
    { mode: 0o755 },
  );
  return file;
}

async function serve(): Promise<{ dir: string; sock: string; fake: ReturnType<typeof fakeActions>; close(): Promise<void> }> {
  const dir = tmpDir();
  dirs.push(dir);
  const sock = path.join(dir, 'c.sock');
  const fake = fakeActions();
  // The kernel's record of the peer, as tcplb reads it (the native addon; the native test suite checks it is built).
  const native = loadNative();
  const peerCredentials = native.ok ? (native.binding.peerCredentials ?? null) : null;
  const srv = await startControlServer(sock, fake, () => {}, { peerCredentials });
  return { dir, sock, fake, close: () => srv.close() };
}

test('ssh target: a request travels through ssh and `ctl bridge` to the socket and back; the actor is the bridge process', async (t) => {
  const s = await serve();
  t.after(() => s.close());
  const ssh = fakeSsh(s.dir);
  const target = sshTarget(`ssh://lb9${s.sock}`, { host: 'lb9', socket: s.sock }, { ssh: [ssh], remoteConsole: [process.execPath, MAIN] });
  const reply = await request(target, { cmd: 'drain', backend: KNOWN }, 10_000);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const args = fs.readFileSync(path.join(s.dir, 'args'), 'utf8');
  assert.match(args, /-T -o BatchMode=yes -- lb9 .* ctl --socket \S+c\.sock bridge/);
  // The server names the peer from the kernel: the bridge (a child of the fake ssh), never this process.
  const call = s.fake.calls.find((c) => c.startsWith(`drain ${KNOWN}`))!;
  if (loadNative().ok) {
    assert.match(call, /ctl \(user \w+, pid \d+\)$/);
    assert.doesNotMatch(call, new RegExp(`pid ${process.pid}\\)`));
  }

  // runCtl takes the same target: output as for a local socket.
  const out = capture();
  const err = capture();
  assert.equal(await runCtl(['enable', KNOWN], target, out, err), 0, err.text);
  assert.match(out.text, /enabled/);
});

test('ssh target: ssh\'s own failure and a missing remote socket reach the operator in their words, exit 1', async (t) => {
  const s = await serve();
  t.after(() => s.close());
  const ssh = fakeSsh(s.dir);
  const down = sshTarget('ssh://unreachable.test', { host: 'unreachable.test', socket: DEFAULT_REMOTE_SOCKET }, { ssh: [ssh], remoteConsole: [process.execPath, MAIN] });
  await assert.rejects(request(down, { cmd: 'status' }, 10_000), /ssh:\/\/unreachable\.test: ssh: connect to host unreachable\.test port 22: Connection refused/);
  const noSock = sshTarget('ssh://lb9/nowhere.sock', { host: 'lb9', socket: path.join(s.dir, 'nowhere.sock') }, { ssh: [ssh], remoteConsole: [process.execPath, MAIN] });
  const err = capture();
  assert.equal(await runCtl(['status'], noSock, capture(), err), 1);
  assert.match(err.text, /cannot reach tcplb at \S+nowhere\.sock: ENOENT/);
  const noProgram = sshTarget('ssh://lb9', { host: 'lb9', socket: s.sock }, { ssh: [path.join(s.dir, 'no-such-ssh')], remoteConsole: ['x'] });
  await assert.rejects(request(noProgram, { cmd: 'status' }, 10_000), /cannot run \S+no-such-ssh to reach ssh:\/\/lb9: ENOENT/);
});

test('ssh target: an attached console watches through ssh, and closing it ends the ssh child', async (t) => {
  const s = await serve();
  t.after(() => s.close());
  const ssh = fakeSsh(s.dir);
  const target = sshTarget('ssh://lb9', { host: 'lb9', socket: s.sock }, { ssh: [ssh], remoteConsole: [process.execPath, MAIN] });
  const src = await attachRemote(target, { intervalMs: 100 });
  assert.equal(src.snapshot().pid, 42);
  assert.equal(src.attachment.link().socket, 'ssh://lb9');
  s.fake.emit({ time: 7, kind: 'action', text: 'streamed through ssh' });
  await waitFor(() => src.snapshot().events.some((e) => e.text === 'streamed through ssh'), { what: 'the event through the bridge', timeoutMs: 5000 });
  const r = await src.drain(KNOWN, 'console');
  assert.equal(r.ok, true, r.message);
  src.attachment.close();
  await waitFor(() => s.fake.listeners.size === 0, { what: 'the watch to end on the server once the console closed', timeoutMs: 5000 });
});
