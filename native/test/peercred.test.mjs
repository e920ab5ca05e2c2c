// peerCredentials(fd): the kernel's record (SO_PEERCRED) of who is at the
// other end of a Unix socket: this process for a same-process peer, the
// child's pid for a child; null where there is no such record (TCP, not a socket).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { addon, withTimeout } from './helpers.mjs';

/** A Unix socket server in a fresh folder; `accepted` resolves with the first accepted socket. */
async function unixServer(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-peercred-'));
  const sockPath = path.join(dir, 's.sock');
  let onConn;
  const accepted = new Promise((resolve) => { onConn = resolve; });
  const srv = net.createServer((s) => onConn(s));
  await new Promise((resolve) => srv.listen(sockPath, resolve));
  t.after(() => {
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sockPath, accepted };
}

test('a same-process peer: pid, uid and gid of this process, on both ends', { timeout: 10000 }, async (t) => {
  const { sockPath, accepted } = await unixServer(t);
  const client = net.connect(sockPath);
  t.after(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  const server = await withTimeout(accepted, 5000, 'accept');
  t.after(() => server.destroy());
  const want = { pid: process.pid, uid: process.getuid(), gid: process.getgid() };
  assert.deepEqual(addon.peerCredentials(server._handle.fd), want);
  assert.deepEqual(addon.peerCredentials(client._handle.fd), want);
});

test('a child process peer: the child\'s pid', { timeout: 10000 }, async (t) => {
  const { sockPath, accepted } = await unixServer(t);
  // The child connects and waits for the parent to close the connection.
  const child = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sockPath)}).on('end', () => process.exit(0)).resume()`], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const server = await withTimeout(accepted, 5000, 'accept');
  const cred = addon.peerCredentials(server._handle.fd);
  assert.notEqual(child.pid, process.pid);
  assert.deepEqual(cred, { pid: child.pid, uid: process.getuid(), gid: process.getgid() });
  server.end();
  await new Promise((resolve) => child.once('exit', resolve));
});

test('no credentials: a TCP socket and a file give null; a bad fd argument throws', { timeout: 10000 }, async (t) => {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.70', resolve));
  t.after(() => srv.close());
  const client = net.connect(srv.address().port, '127.0.0.70');
  t.after(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  assert.equal(addon.peerCredentials(client._handle.fd), null);
  const fd = fs.openSync(process.execPath, 'r');
  try {
    assert.equal(addon.peerCredentials(fd), null);
  } finally {
    fs.closeSync(fd);
  }
  assert.throws(() => addon.peerCredentials(-1), TypeError);
  assert.throws(() => addon.peerCredentials(1.5), TypeError);
  assert.throws(() => addon.peerCredentials('3'), TypeError);
  assert.throws(() => addon.peerCredentials(), TypeError);
});
