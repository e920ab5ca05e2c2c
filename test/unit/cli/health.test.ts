/**
 * `tcplb-console health`: the one-shot check (exit code and line) and the
 * ExaBGP process mode, against a real control server: announce when ready,
 * withdraw as soon as standby is on (within an interval or two), announce
 * again; a tcplb that goes away is withdrawn; the process ends when ExaBGP
 * closes its stdin. Arguments are checked.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { parseCommand } from '../../../src/cli/args.js';
import { exabgpSink, fileSink, followReadiness, healthCheck } from '../../../src/cli/health.js';
import { startControlServer } from '../../../src/control/server.js';
import { waitFor } from '../../helpers/wait.js';
import { capture, fakeActions, tmpDir } from '../control/fake-actions.js';

/** A control server over fake actions in a fresh folder, closed and removed after `t`. */
async function serve(t: TestContext): Promise<{ dir: string; sock: string; fake: ReturnType<typeof fakeActions>; srv: Awaited<ReturnType<typeof startControlServer>> }> {
  const dir = tmpDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'c.sock');
  const fake = fakeActions();
  const srv = await startControlServer(sock, fake, () => {});
  t.after(() => srv.close());
  return { dir, sock, fake, srv };
}

test('health: exit 0 with the line when ready, 1 when not, 1 when nobody answers', async (t) => {
  const { dir, sock, fake } = await serve(t);
  const out = capture();
  assert.equal(await healthCheck(sock, out), 0);
  assert.equal(out.text, 'ready: imap 1/1 usable\n');
  fake.standbyOn = true;
  const out2 = capture();
  assert.equal(await healthCheck(sock, out2), 1);
  assert.equal(out2.text, 'not ready: standby\n');
  const out3 = capture();
  assert.equal(await healthCheck(path.join(dir, 'none.sock'), out3), 1);
  assert.match(out3.text, /^not ready: cannot reach tcplb at \S+none\.sock: ENOENT/);
});

test('health --exabgp: announce, withdraw on standby within two intervals, announce again, withdraw when tcplb goes; ends with stdin', async (t) => {
  const first = await serve(t);
  const { sock, fake } = first;
  let srv = first.srv;
  const out = capture();
  const err = capture();
  const stdin = new PassThrough();
  const running = followReadiness(sock, 50, exabgpSink('10.96.100.1/32', out), { err, stdin });
  const lines = (): string[] => out.text.split('\n').filter((l) => l !== '');
  await waitFor(() => lines().length, { until: (n) => n === 1, what: 'the first announce', timeoutMs: 2000 });
  assert.deepEqual(lines(), ['announce route 10.96.100.1/32 next-hop self']);

  const t0 = Date.now();
  fake.standbyOn = true;
  await waitFor(() => lines().length, { until: (n) => n === 2, what: 'the withdraw', timeoutMs: 2000 });
  assert.ok(Date.now() - t0 < 500, `withdrawn ${Date.now() - t0} ms after standby (interval 50 ms)`);
  assert.equal(lines()[1], 'withdraw route 10.96.100.1/32 next-hop self');
  assert.match(err.text, /tcplb health: not ready: standby/);
  fake.standbyOn = false;
  await waitFor(() => lines().length, { until: (n) => n === 3, what: 'announced again', timeoutMs: 2000 });
  // Nothing is repeated while the state holds.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(lines().length, 3);

  await srv.close();
  await waitFor(() => lines().length, { until: (n) => n === 4, what: 'withdrawn when tcplb is gone', timeoutMs: 3000 });
  assert.equal(lines()[3], 'withdraw route 10.96.100.1/32 next-hop self');
  srv = await startControlServer(sock, fake, () => {});
  const again = srv;
  t.after(() => again.close());
  await waitFor(() => lines().length, { until: (n) => n === 5, what: 'announced when tcplb is back', timeoutMs: 3000 });

  stdin.end();
  assert.equal(await running, 0);
});

test('health arguments: --exabgp needs a prefix, --interval a duration from 50ms, neither goes elsewhere', () => {
  assert.deepEqual(parseCommand(['health', '--socket', '/s', '--exabgp', '10.96.100.1/32']), { kind: 'health', socket: '/s', config: 'config.json5', follow: { to: { exabgp: '10.96.100.1/32' }, intervalMs: 200 } });
  assert.deepEqual(parseCommand(['health', '--socket', '/s', '--file', '/run/tcplb/ready', '--interval', '100ms']), { kind: 'health', socket: '/s', config: 'config.json5', follow: { to: { file: '/run/tcplb/ready' }, intervalMs: 100 } });
  assert.throws(() => parseCommand(['health', '--exabgp', '10.0.0.1/32', '--file', 'x']), /--exabgp or --file, not both/);
  assert.deepEqual(parseCommand(['health', '--exabgp', '2001:db8::1/128', '--interval', '1s']).kind, 'health');
  assert.throws(() => parseCommand(['health', '--exabgp', 'lb.example.net']), /--exabgp needs the service prefix to announce, like 10\.96\.100\.1\/32/);
  assert.throws(() => parseCommand(['health', '--exabgp', '10.0.0.1/33']), /--exabgp needs/);
  assert.throws(() => parseCommand(['health', '--exabgp', '10.0.0.1/32', '--interval', '10ms']), /--interval must be a duration from 50ms to 60s/);
  assert.throws(() => parseCommand(['health', '--interval', '1s']), /--interval goes with health --exabgp or --file/);
  assert.throws(() => parseCommand(['ctl', 'status', '--exabgp', '10.0.0.1/32']), /--exabgp, --file and --interval go with health/);
});

test('health --file: keepalived\'s track_file gets 0 while ready and 1 while not, rewritten on every change', async (t) => {
  const { dir, sock, fake } = await serve(t);
  const file = path.join(dir, 'ready');
  const stop = new AbortController();
  const err = capture();
  const running = followReadiness(sock, 50, fileSink(file, err), { err, stop: stop.signal });
  const content = (): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  await waitFor(content, { until: (c) => c === '0\n', what: 'ready written', timeoutMs: 2000 });
  fake.standbyOn = true;
  await waitFor(content, { until: (c) => c === '1\n', what: 'not ready written', timeoutMs: 2000 });
  fake.standbyOn = false;
  await waitFor(content, { until: (c) => c === '0\n', what: 'ready again', timeoutMs: 2000 });
  stop.abort();
  assert.equal(await running, 0);
  // An unwritable path is said, not thrown.
  const bad = capture();
  fileSink(path.join(dir, 'no/such/dir/ready'), bad).changed(true, 'ready');
  assert.match(bad.text, /cannot write \S+ready: ENOENT/);
});
