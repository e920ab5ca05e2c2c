/**
 * How a control socket client is named in the event log: from the peer
 * lookup (the kernel's record), with the user name from the passwd file,
 * and `ctl (peer unknown)` whenever the lookup has no answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { peerActor, userName, type PeerLookup } from '../../../src/control/peer.js';
import { startControlServer } from '../../../src/control/server.js';
import { runCtl } from '../../../src/control/client.js';
import { capture, fakeActions, KNOWN, tmpDir } from './fake-actions.js';

function passwd(lines: string[]): string {
  const file = path.join(tmpDir(), 'passwd');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

test('userName: the passwd entry of the uid, else "uid N"', () => {
  const file = passwd(['root:x:0:0:root:/root:/bin/bash', 'alice:x:1000:1000:Alice:/home/alice:/bin/sh', 'bad name:x:1001:1001::/:/bin/sh']);
  assert.equal(userName(0, file), 'user root');
  assert.equal(userName(1000, file), 'user alice');
  assert.equal(userName(1001, file), 'uid 1001', 'a name with a space would garble the log line');
  assert.equal(userName(4242, file), 'uid 4242');
  assert.equal(userName(1000, path.join(tmpDir(), 'missing')), 'uid 1000');
});

test('peerActor: names user and pid; unknown when the lookup has no answer; plain ctl without a lookup', () => {
  const file = passwd(['alice:x:1000:1000::/home/alice:/bin/sh']);
  const sock = { _handle: { fd: 7 } } as unknown as net.Socket;
  const seen: number[] = [];
  const found: PeerLookup = (fd) => {
    seen.push(fd);
    return { pid: 4242, uid: 1000, gid: 1000 };
  };
  assert.equal(peerActor(sock, found, file), 'ctl (user alice, pid 4242)');
  assert.deepEqual(seen, [7], 'the accepted socket\'s own fd is asked about');
  assert.equal(peerActor(sock, () => ({ pid: 0, uid: 1000, gid: 1000 }), file), 'ctl (user alice)', 'pid 0: peer in another pid namespace');
  assert.equal(peerActor(sock, () => null, file), 'ctl (peer unknown)');
  assert.equal(
    peerActor(sock, () => {
      throw new TypeError('fd must be a number');
    }, file),
    'ctl (peer unknown)',
  );
  assert.equal(peerActor({} as net.Socket, found, file), 'ctl (peer unknown)', 'no handle: no fd to ask about');
  assert.equal(peerActor(sock, null, file), 'ctl (peer unknown)');
  assert.equal(peerActor(sock, undefined, file), 'ctl');
});

test('server: every request of a connection runs as that connection\'s peer; a request cannot name itself', async () => {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const fake = fakeActions();
  let pid = 5000;
  // A fresh pid per connection: the lookup runs once per accepted client.
  const lookup: PeerLookup = () => ({ pid: pid++, uid: 0, gid: 0 });
  const srv = await startControlServer(sock, fake, () => {}, { peerCredentials: lookup });
  try {
    const out = capture();
    assert.equal(await runCtl(['drain', KNOWN], sock, out, capture()), 0);
    assert.equal(await runCtl(['reload'], sock, out, capture()), 0);
    // A raw client that claims another actor in its request is still named by the lookup.
    const c = net.connect(sock);
    c.write(`${JSON.stringify({ cmd: 'kill', backend: KNOWN, by: 'console' })}\n${JSON.stringify({ cmd: 'enable', backend: KNOWN })}\n`);
    c.end();
    await new Promise((r) => c.on('close', r).resume());
    // uid 0 is root on every Linux passwd file.
    assert.deepEqual(fake.calls, [
      `drain ${KNOWN} ctl (user root, pid 5000)`,
      'reload ctl (user root, pid 5001)',
      `kill ${KNOWN} ctl (user root, pid 5002)`,
      `enable ${KNOWN} ctl (user root, pid 5002)`,
    ]);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
