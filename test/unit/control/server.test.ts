import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startControlServer } from '../../../src/control/server.js';
import { runCtl } from '../../../src/control/client.js';
import { waitFor } from '../../helpers/wait.js';
import { capture, fakeActions, KNOWN, raw, tmpDir } from './fake-actions.js';

/** Servers opened by tests: closed at the end even when an assertion failed mid-test. */
const opened: { close(): Promise<void> }[] = [];
after(() => Promise.all(opened.map((s) => s.close())));
async function start(sock: string): Promise<Awaited<ReturnType<typeof startControlServer>>> {
  const srv = await startControlServer(sock, fakeActions(), () => {});
  opened.push(srv);
  return srv;
}

async function withServer(fn: (sock: string, fake: ReturnType<typeof fakeActions>, logs: string[]) => Promise<void>): Promise<void> {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const fake = fakeActions();
  const logs: string[] = [];
  const srv = await startControlServer(sock, fake, (m) => logs.push(m));
  try {
    await fn(sock, fake, logs);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function ctl(sock: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCtl(args, sock, out, err);
  return { code, out: out.text, err: err.text };
}

test('socket is created with mode 0600 and close() removes it', async () => {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const srv = await start(sock);
  assert.equal(srv.path, sock);
  const st = fs.statSync(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  await srv.close();
  assert.equal(fs.existsSync(sock), false);
  await srv.close(); // idempotent
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the socket is born 0600 (umask), not only chmodded after, and the umask is restored', async (t) => {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const before = process.umask();
  t.mock.method(fs, 'chmodSync', () => {});
  const srv = await start(sock);
  t.mock.restoreAll();
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  assert.equal(process.umask(), before);
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('every command round-trips through runCtl with actor ctl', () =>
  withServer(async (sock, fake) => {
    const st = await ctl(sock, 'status');
    assert.equal(st.code, 0);
    assert.equal(JSON.parse(st.out).pid, 42);
    assert.match(st.out, /\n {2}"version": "0.1.0"/); // pretty
    for (const verb of ['drain', 'disable', 'enable', 'kill']) {
      const r = await ctl(sock, verb, KNOWN);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^${KNOWN} `));
      assert.equal(r.err, '');
    }
    const c = await ctl(sock, 'check', KNOWN);
    assert.deepEqual([c.code, c.out], [0, `${KNOWN}: pass L7_OK\n`]);
    const rl = await ctl(sock, 'reload');
    assert.equal(rl.code, 0);
    assert.equal(rl.out, 'reloaded config.json5: 2 changes\n  +listener smtps 0.0.0.0:465\n  -backend imap/10.0.0.3:143\n');
    assert.deepEqual(fake.calls, [
      'snapshot',
      `drain ${KNOWN} ctl`,
      `disable ${KNOWN} ctl`,
      `enable ${KNOWN} ctl`,
      `kill ${KNOWN} ctl`,
      `check ${KNOWN} ctl`,
      'reload ctl',
    ]);
  }));

test('failed commands exit 1 with the runtime message on stderr', () =>
  withServer(async (sock, fake) => {
    const r = await ctl(sock, 'drain', 'imap/10.9.9.9:143');
    assert.deepEqual([r.code, r.out], [1, '']);
    assert.match(r.err, /no backend "imap\/10\.9\.9\.9:143"/);
    fake.probe = { ok: false, status: 'L4_REFUSED', latencyMs: 1, detail: 'refused' };
    const c = await ctl(sock, 'check', KNOWN);
    assert.deepEqual([c.code, c.out], [1, `${KNOWN}: FAIL L4_REFUSED\n`]);
    fake.reloadResult = { ok: false, message: 'config.json5:3:5: unknown key "wieght"', changes: [] };
    const rl = await ctl(sock, 'reload');
    assert.equal(rl.code, 1);
    assert.match(rl.err, /unknown key "wieght"/);
  }));

test('drain/disable/enable: the reply waits for the save; a failed save says "applied, not persisted" and ctl exits 1', () =>
  withServer(async (sock, fake) => {
    let release!: (error: string | undefined) => void;
    const plain = fake.drain;
    fake.drain = (id, by) => ({ ...plain(id, by), persisted: new Promise<string | undefined>((r) => (release = r)) });
    let answered = false;
    const pending = ctl(sock, 'drain', KNOWN).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 100)); // proving a negative: a reply that did not wait for the save would be here by now
    assert.equal(answered, false, 'no reply before the state file has the change');
    release('cannot save state file /var/lib/tcplb/tcplb.state: ENOSPC: no space left on device, write');
    const r = await pending;
    assert.equal(r.code, 1, 'exit 1: the drain applies but would be lost at the next restart');
    assert.equal(r.out, `${KNOWN} draining — applied, not persisted: cannot save state file /var/lib/tcplb/tcplb.state: ENOSPC: no space left on device, write\n`);
    fake.drain = (id, by) => ({ ...plain(id, by), persisted: Promise.resolve(undefined) });
    const ok = await ctl(sock, 'drain', KNOWN);
    assert.deepEqual([ok.code, ok.out], [0, `${KNOWN} draining\n`]);
    const { lines } = await raw(sock, `{"cmd":"drain","backend":"${KNOWN}"}\n{"cmd":"enable","backend":"${KNOWN}"}\n`);
    assert.deepEqual(JSON.parse(lines[0]!).data, { persisted: true });
    assert.equal(JSON.parse(lines[1]!).data, undefined, 'no state file: nothing said about persistence');
  }));

test('pipelined drains run without waiting for each save; replies keep the request order', () =>
  withServer(async (sock, fake) => {
    const releases: (() => void)[] = [];
    const plain = fake.drain;
    fake.drain = (id, by) => ({ ...plain(id, by), persisted: new Promise<string | undefined>((r) => releases.push(() => r(undefined))) });
    const got = raw(sock, [1, 2, 3].map((i) => `{"cmd":"drain","backend":"${KNOWN}","id":${i}}\n`).join('') + '{"cmd":"status","id":4}\n', { want: 4 });
    await waitFor(() => fake.calls.length, { what: 'the 4 pipelined requests applied', timeoutMs: 2000, until: (n) => n >= 4 });
    assert.deepEqual(fake.calls, [`drain ${KNOWN} ctl`, `drain ${KNOWN} ctl`, `drain ${KNOWN} ctl`, 'snapshot'], 'all applied while the first save is pending');
    for (const release of releases.reverse()) release(); // saves finishing out of order
    const { lines } = await got;
    assert.deepEqual(lines.map((l) => JSON.parse(l).id), [1, 2, 3, 4]);
  }));

test('raw protocol: replies carry data and echo ids', () =>
  withServer(async (sock) => {
    const { lines } = await raw(sock, '{"cmd":"status","id":"a"}\n{"cmd":"check","backend":"imap/10.0.0.2:143","id":7}\n{"cmd":"reload"}\n');
    const [a, b, c] = lines.map((l) => JSON.parse(l));
    assert.equal(a.id, 'a');
    assert.equal(a.ok, true);
    assert.equal(a.data.engine, 'js');
    assert.deepEqual([b.id, b.data.status], [7, 'L7_OK']);
    assert.deepEqual(c.data.changes.length, 2);
  }));

test('bad requests get error replies and the server keeps serving', () =>
  withServer(async (sock) => {
    const bad: [string, RegExp][] = [
      ['{"cmd":', /malformed JSON/],
      ['[1,2]', /JSON object/],
      ['{"cmd":"explode","id":3}', /unknown cmd "explode"/],
      ['{"nocmd":1}', /missing "cmd"/],
      ['{"cmd":"drain"}', /needs "backend"/],
      ['{"cmd":"kill","backend":""}', /needs "backend"/],
      ['{"cmd":"disable","backend":"nope/1.2.3.4:5"}', /no backend "nope\/1\.2\.3\.4:5"/],
      ['{"cmd":"status","id":{"x":1}}', /"id" must be/],
    ];
    const { lines } = await raw(sock, bad.map(([l]) => l).join('\n') + '\n');
    assert.equal(lines.length, bad.length);
    lines.forEach((l, i) => {
      const r = JSON.parse(l);
      assert.equal(r.ok, false, l);
      assert.match(r.error, bad[i]![1]);
    });
    assert.equal(JSON.parse(lines[2]!).id, 3);
    assert.equal((await ctl(sock, 'status')).code, 0);
  }));

test('partial lines are joined; a last line without newline is answered at EOF', () =>
  withServer(async (sock) => {
    const one = await new Promise<string>((resolve, reject) => {
      import('node:net').then(({ default: net }) => {
        const c = net.connect(sock);
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('close', () => resolve(got));
        c.on('error', reject);
        c.write('{"cmd":"dra');
        // The scenario: a request split over two writes, then a half-close.
        setTimeout(() => c.write('in","backend":"imap/10.0.0.2:143"}\r\n{"cmd":"status"}'), 30);
        setTimeout(() => c.end(), 60);
      }, reject);
    });
    const lines = one.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.match(lines[0].message, /draining/);
    assert.equal(lines[1].data.pid, 42);
    const half = await raw(sock, '{"cmd":"stat');
    assert.match(JSON.parse(half.lines[0]!).error, /malformed JSON/);
  }));

test('a 2 MiB line is refused with an error and the client dropped; server lives', () =>
  withServer(async (sock, _fake, logs) => {
    const big = `{"cmd":"status","pad":"${'x'.repeat(2 * 1024 * 1024)}"}\n`;
    const r = await raw(sock, big, { keepOpen: true });
    assert.equal(r.closed, true);
    assert.match(JSON.parse(r.lines[0]!).error, /too long/);
    assert.ok(logs.some((l) => /over 1048576 bytes/.test(l)));
    // multi-byte characters split over chunks still decode
    const u = await raw(sock, `{"cmd":"drain","backend":"${'é'.repeat(100_000)}"}\n`);
    assert.match(JSON.parse(u.lines[0]!).error, /^no backend "é+"/);
    assert.equal((await ctl(sock, 'status')).code, 0);
  }));

test('200 concurrent clients are all answered', () =>
  withServer(async (sock, fake) => {
    fake.checkDelay = 20;
    const runs = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? ctl(sock, 'check', KNOWN) : ctl(sock, 'status'))));
    for (const r of runs) assert.equal(r.code, 0, r.err);
    assert.equal(fake.calls.length, 200);
  }));

test('a stale socket from a crashed process is replaced', async () => {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout!.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(fs.lstatSync(sock).isSocket(), 'the crashed process left its socket');
  const srv = await start(sock);
  assert.equal((await ctl(sock, 'status')).code, 0);
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a live socket is refused and keeps working', () =>
  withServer(async (sock) => {
    await assert.rejects(startControlServer(sock, fakeActions(), () => {}), { message: `control socket ${sock} is in use by another tcplb` });
    assert.equal((await ctl(sock, 'status')).code, 0);
  }));

test('a regular file (or folder) at the path is refused and left intact', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.sock');
  fs.writeFileSync(file, 'precious');
  await assert.rejects(startControlServer(file, fakeActions(), () => {}), /exists and is not a socket; refusing/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
  fs.mkdirSync(path.join(dir, 'd'));
  await assert.rejects(startControlServer(path.join(dir, 'd'), fakeActions(), () => {}), /is not a socket/);
  assert.ok(fs.statSync(path.join(dir, 'd')).isDirectory());
  const long = path.join(dir, 'x'.repeat(120));
  await assert.rejects(startControlServer(long, fakeActions(), () => {}), /too long \(\d+ bytes, at most 107\)/);
  await assert.rejects(startControlServer(path.join(dir, 'no', 'such', 's'), fakeActions(), () => {}), /control socket .*: folder .*no\/such does not exist$/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('close() drops connected clients', async () => {
  const dir = tmpDir();
  const sock = path.join(dir, 'c.sock');
  const srv = await start(sock);
  const pending = raw(sock, '', { keepOpen: true });
  await new Promise((r) => setTimeout(r, 30)); // the server's accept: ControlServer exposes no client count to wait on
  await srv.close();
  assert.equal((await pending).closed, true);
  assert.equal(fs.existsSync(sock), false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('certs: the report as text (exit 0), --json as JSON, exit 1 when a renewal was refused; a tcplb without a report says so', () =>
  withServer(async (sock, fake) => {
    const none = await ctl(sock, 'certs');
    assert.deepEqual([none.code, none.err], [1, 'this tcplb keeps no certificate report\n']);
    const cert = { certFile: '/etc/c.pem', keyFile: '/etc/k.pem', names: ['mail.a.test'], subject: 'mail.a.test', issuer: 'R11', serial: '0A', fingerprint: 'AB', notAfter: Date.UTC(2030, 0, 1), daysLeft: 900, loadedAt: Date.UTC(2025, 0, 1), default: true };
    let lastReload: { at: number; ok: boolean; error?: string } = { at: Date.UTC(2025, 0, 1), ok: true };
    fake.certs = () => ({ time: Date.UTC(2027, 6, 1), listeners: [{ listener: 'imaps', listen: '0.0.0.0:993', certificates: [cert], lastReload }] });
    const ok = await ctl(sock, 'certs');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^imaps 0\.0\.0\.0:993 · last reload \S+ \S+ ok\n {2}mail\.a\.test \(default\)\n {4}issuer R11 · expires \S+ \S+ \(900 days left\) · serving since /);
    const j = await ctl(sock, 'certs', '--json');
    assert.equal(JSON.parse(j.out).listeners[0].certificates[0].issuer, 'R11');
    lastReload = { at: Date.UTC(2027, 6, 1), ok: false, error: 'the key does not match' };
    const bad = await ctl(sock, 'certs');
    assert.equal(bad.code, 1);
    assert.match(bad.out, /REFUSED: the key does not match \(the certificates below keep serving\)/);
  }));
