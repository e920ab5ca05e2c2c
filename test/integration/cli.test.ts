/** The headless CLI as a user (or systemd) runs it: flags, exit codes, errors, signals. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, startCli } from '../helpers/cli.js';
import { connect, greetingVia, reservePort, listen, namedEcho, readAll, readLine, waitFor } from '../helpers/net.js';

function tmpConfig(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-cli-'));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, text);
  return file;
}

test('--help and --version exit 0; an unknown flag is a usage error (exit 2)', async () => {
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage:/);
  assert.match(h.stdout, /--check/);
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^tcplb-console \d+\.\d+\.\d+/);
  const bad = await runCli(['--frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /frobnicate/);
});

test('--check on the shipped config.json5 prints a summary and exits 0', async () => {
  const r = await runCli(['--check', '-c', 'config.json5']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /imap/);
  assert.match(r.stdout, /127\.0\.0\.1:2143/);
  assert.match(r.stdout, /ip_hash/);
});

test('--check reports a typo with file:line:col and a suggestion, exit 1', async () => {
  const file = tmpConfig(`{
  listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }],
  upstreams: {
    u: { servers: [{ address: "127.0.0.2:143", wieght: 3 }] },
  },
}
`);
  const r = await runCli(['--check', '--config', file]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`${file}:4:48: `), r.stderr);
  assert.match(r.stderr, /unknown key "wieght".*did you mean "weight"/);
});

test('a bad config never starts a listener (exit 1)', async () => {
  const port = await reservePort();
  const file = tmpConfig(`{ listeners: [{ listen: "127.0.0.1:${port}", upstream: "nope" }], upstreams: { u: { servers: ["127.0.0.1:1"] } } }`);
  const r = await runCli(['--headless', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nope/);
  // Nothing listens there.
  await assert.rejects(connect(port));
});

test('headless: relays to two real backends, access log on stdout, SIGTERM exits 0', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ name: "front", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
    log: { access: "-", format: "json" },
  }`);
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const c = await connect(port);
    seen.add(await readLine(c));
    c.end();
    await readAll(c);
  }
  assert.deepEqual([...seen].sort(), ['A', 'B']);
  await waitFor(() => run.stdout().split('\n').filter(Boolean).length >= 4, { timeoutMs: 3000, what: 'access log lines' });
  const rec = JSON.parse(run.stdout().split('\n')[0]!);
  assert.equal(rec.listener, 'front');
  assert.equal(rec.client, '127.0.0.1');
  assert.equal(rec.reason, 'closed');
  assert.equal(rec.bytesOut, 2);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('SIGTERM waits for an open connection (up to shutdownTimeout), then exits 0', async (t) => {
  const be = await listen(namedEcho('E'));
  t.after(() => be.close());
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
    log: { access: "-" },
    shutdownTimeout: "600ms",
  }`);
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const c = await connect(port);
  assert.equal(await readLine(c), 'E');
  const t0 = Date.now();
  run.child.kill('SIGTERM');
  await waitFor(() => /SIGTERM: stopped accepting/.test(run.stderr()), { what: 'the SIGTERM line', timeoutMs: 2000 });
  c.write('still here\n');
  assert.equal(await readLine(c), 'still here', 'open connection must keep relaying during shutdown');
  // The listener is closed right after that line (by the engine's thread with the native engine): within 150 ms, as before.
  const refused = (): Promise<boolean> =>
    connect(port).then(
      (s) => (s.destroy(), false),
      () => true,
    );
  await waitFor(refused, { what: 'new connections refused once stopping', timeoutMs: 150, intervalMs: 10 });
  await assert.rejects(connect(port), 'no new connections once stopping');
  assert.equal(await run.exited, 0);
  const took = Date.now() - t0;
  assert.ok(took >= 550 && took < 3000, `exit after ${took} ms`);
  await waitFor(() => /\bshutdown\b/.test(run.stdout()), { timeoutMs: 2000, what: 'access line with reason shutdown' });
});

test('a listen address in use: one clear line naming the listener, exit 1', async (t) => {
  const busy = await listen(() => {});
  t.after(() => busy.close());
  const file = tmpConfig(`{
    listeners: [{ name: "imaps", listen: "127.0.0.1:${busy.port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:1"] } },
  }`);
  const r = await runCli(['--headless', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`listener "imaps": 127\\.0\\.0\\.1:${busy.port} is already in use`));
});

test('an unresolvable backend host: one clear line naming the server, exit 1', async () => {
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "mail" }],
    upstreams: { mail: { servers: ["no-such-host.invalid:143"] } },
  }`);
  const r = await runCli(['--headless', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server mail\/no-such-host\.invalid:143: cannot resolve host "no-such-host\.invalid"/);
});

test('SIGTERM with a transfer in flight: it completes, then exit 0; a second SIGTERM closes at once', async (t) => {
  const SIZE = 8 * 1024 * 1024;
  const data = Buffer.alloc(SIZE, 1);
  const be = await listen((s) => {
    // Send slowly: 8 chunks, 100 ms apart.
    let i = 0;
    const step = (): void => {
      if (i === 8) return void s.end();
      s.write(data.subarray(i * (SIZE / 8), ++i * (SIZE / 8)));
      setTimeout(step, 100); // the scenario: a slow transfer
    };
    step();
  });
  t.after(() => be.close());
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
    log: { access: null }, shutdownTimeout: "10s",
  }`);
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const c = await connect(port);
  let first = 0;
  c.on('data', (d: Buffer) => (first += d.length));
  const got = readAll(c);
  await waitFor(() => first, { what: 'the transfer under way', timeoutMs: 3000 });
  run.child.kill('SIGTERM');
  assert.equal((await got).data.length, SIZE, 'the transfer must complete during a graceful stop');
  assert.equal(await run.exited, 0);

  // A second signal does not wait for shutdownTimeout.
  const run2 = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run2.child.kill('SIGKILL'));
  const c2 = await connect(port);
  c2.on('error', () => {});
  let got2 = 0;
  c2.on('data', (d: Buffer) => (got2 += d.length));
  await waitFor(() => got2, { what: 'the second transfer under way', timeoutMs: 3000 });
  const t0 = Date.now();
  run2.child.kill('SIGTERM');
  await waitFor(() => /SIGTERM: stopped accepting/.test(run2.stderr()), { what: 'the first SIGTERM handled', timeoutMs: 2000 });
  run2.child.kill('SIGTERM');
  assert.equal(await run2.exited, 0);
  assert.ok(Date.now() - t0 < 2000, `second SIGTERM took ${Date.now() - t0} ms`);
  assert.match(run2.stderr(), /SIGTERM again: closing every connection now/);
});

test('SIGHUP reloads the config file; a bad edit is refused with file:line:col and service continues', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const text = (addr: number, extra = '') => `{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${addr}"] ${extra} } },
    log: { access: null },
  }`;
  const file = tmpConfig(text(a.port));
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const greet = () => greetingVia(port);
  assert.equal(await greet(), 'A');
  fs.writeFileSync(file, text(a.port, ', wieght: 2'));
  run.child.kill('SIGHUP');
  await waitFor(() => /reload refused: .*config\.json5:3:\d+: .*unknown key "wieght"/.test(run.stderr()), { timeoutMs: 3000, what: 'refusal in the log' });
  assert.equal(await greet(), 'A');
  fs.writeFileSync(file, text(b.port));
  run.child.kill('SIGHUP');
  await waitFor(() => /reload: \+server u\/127\.0\.0\.1:\d+/.test(run.stderr()), { timeoutMs: 3000, what: 'reload lines' });
  assert.equal(await greet(), 'B');
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('import-nginx: the seed tcp-module config prints a config that --check accepts; broken input names file:line', async () => {
  const r = await runCli(['import-nginx', 'test/fixtures/nginx/tcp-mail.conf']);
  assert.equal(r.code, 0, r.stderr);
  const file = tmpConfig(r.stdout);
  const c = await runCli(['--check', '-c', file]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /6 listeners, 6 upstreams, 12 servers/);
  const s = await runCli(['import-nginx', 'test/fixtures/nginx/stream.conf']);
  assert.equal(s.code, 0);
  assert.match(s.stderr, /import-nginx: \d+ directives not translated/);
  assert.match(s.stdout, /\/\/ not translated: listen 53 udp;/);
  const b = await runCli(['import-nginx', 'test/fixtures/nginx/broken-quote.conf']);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /broken-quote\.conf:\d+: /);
  assert.equal((await runCli(['import-nginx'])).code, 2);
});

test('SIGUSR1 reopens the access log file after logrotate moved it', async (t) => {
  const be = await listen(namedEcho('E'));
  t.after(() => be.close());
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ name: "l", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
    log: { access: "access.log" },
  }`);
  const log = path.join(path.dirname(file), 'access.log');
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const once = async () => {
    const c = await connect(port);
    await readLine(c);
    c.end();
    await readAll(c);
  };
  await once();
  await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').split('\n').length === 2, { timeoutMs: 3000, what: 'first line' });
  fs.renameSync(log, log + '.1');
  run.child.kill('SIGUSR1');
  await waitFor(() => fs.existsSync(log), { timeoutMs: 3000, what: 'a new file after SIGUSR1' });
  await once();
  await waitFor(() => fs.readFileSync(log, 'utf8').split('\n').length === 2, { timeoutMs: 3000, what: 'line in the new file' });
  assert.equal(fs.readFileSync(log + '.1', 'utf8').split('\n').length, 2, 'the rotated file keeps only the old line');
  assert.match(fs.readFileSync(log, 'utf8'), / l 127\.0\.0\.1:\d+ u\/127\.0\.0\.1:\d+ \d+ 2 \d+\.\d{3}s closed/);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('--check names the engine that would run; engine "native" without the addon is refused with the reason', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-engine-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  const text = (engine: string): string => `{ engine: "${engine}", listeners: [{ listen: "127.0.0.1:1", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:2"] } } }`;
  const env = { ...process.env, TCPLB_NO_NATIVE: '1', TCPLB_ENGINE: '' };
  fs.writeFileSync(file, text('auto'));
  const auto = await runCli(['--check', '-c', file], { env });
  assert.equal(auto.code, 0);
  assert.match(auto.stdout, /^engine: +would run js \(auto: native engine not available: disabled by TCPLB_NO_NATIVE=1\)$/m);
  fs.writeFileSync(file, text('native'));
  const native = await runCli(['--check', '-c', file], { env });
  assert.equal(native.code, 1);
  assert.equal(native.stdout, '', 'no summary for a config that would not start');
  assert.match(native.stderr, /engine: "native" is set but the native engine is not available: disabled by TCPLB_NO_NATIVE=1; set engine to "auto" or "js"/);
});

test('--check on a FIFO or a device config returns at once with a clear error (it used to block forever / read without end)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-fifo-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'config.json5');
  execFileSync('mkfifo', [fifo]);
  const t0 = Date.now();
  const r = await runCli(['--check', '-c', fifo], { timeoutMs: 5000 });
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(`${fifo}:1:1: cannot read config: not a regular file: it is a named pipe (FIFO)`), r.stderr);
  const zero = path.join(dir, 'zero.json5');
  fs.symlinkSync('/dev/zero', zero);
  const z = await runCli(['--check', '-c', zero], { timeoutMs: 5000 });
  assert.equal(z.code, 1, z.stderr);
  assert.match(z.stderr, /zero\.json5:1:1: cannot read config: not a regular file: it is a character device/);
});

test('a reload that finds a FIFO is refused at once; a later good reload still applies', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const text = (be: number) => `{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${be}"] } },
    log: { access: null },
  }`;
  const file = tmpConfig(text(a.port));
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const greet = () => greetingVia(port);
  assert.equal(await greet(), 'A');
  fs.rmSync(file);
  execFileSync('mkfifo', [file]);
  run.child.kill('SIGHUP');
  await waitFor(() => /reload refused: .*config\.json5:1:1: cannot read config: not a regular file: it is a named pipe \(FIFO\)/.test(run.stderr()), { timeoutMs: 3000, what: 'refusal in the log' });
  assert.equal(await greet(), 'A');
  fs.rmSync(file);
  fs.writeFileSync(file, text(b.port));
  run.child.kill('SIGHUP');
  await waitFor(() => /reload: \+server u\/127\.0\.0\.1:\d+/.test(run.stderr()), { timeoutMs: 3000, what: 'the good reload applied' });
  assert.equal(await greet(), 'B');
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

for (const engine of ['native', 'js']) {
  test(`listen "localhost:P" starts and relays on the ${engine} engine (resolved at load to 127.0.0.1)`, async (t) => {
    const be = await listen(namedEcho('L'));
    t.after(() => be.close());
    const port = await reservePort();
    const file = tmpConfig(`{
      listeners: [{ name: "loc", listen: "localhost:${port}", upstream: "u" }],
      upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
      log: { access: null },
    }`);
    const check = await runCli(['--check', '-c', file]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`loc +localhost:${port} \\(127\\.0\\.0\\.1\\) -> u`));
    const run = await startCli(['--headless', '-c', file], /serving/, { env: { ...process.env, TCPLB_ENGINE: engine } });
    t.after(() => run.child.kill('SIGKILL'));
    assert.match(run.stderr(), new RegExp(`engine: ${engine}`));
    assert.match(run.stderr(), new RegExp(`serving .*loc=127\\.0\\.0\\.1:${port}`));
    const c = await connect(port);
    assert.equal(await readLine(c), 'L');
    c.destroy();
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0);
  });
}

test('--check finds listeners that clash through address forms, naming both as written', async () => {
  const port = await reservePort();
  const file = tmpConfig(`{
  listeners: [
    { name: "a", listen: "127.0.0.1:${port}", upstream: "u" },
    { name: "b", listen: "[::ffff:127.0.0.1]:${port}", upstream: "u" },
    { name: "c", listen: "localhost:${port}", upstream: "u" },
  ],
  upstreams: { u: { servers: ["127.0.0.1:1"] } },
}
`);
  const r = await runCli(['--check', '-c', file]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`${file}:4:26: listeners[1].listen: address "[::ffff:127.0.0.1]:${port}" is the same address as listeners[0] ("127.0.0.1:${port}")`), r.stderr);
  assert.ok(r.stderr.includes(`${file}:5:26: listeners[2].listen: address "localhost:${port}" (localhost is 127.0.0.1) is the same address as listeners[0] ("127.0.0.1:${port}")`), r.stderr);
  assert.doesNotMatch(r.stderr, /7f00/);
});

test('SIGUSR1 with the log folder gone: reported as a failure, lines go on to the old file, logging resumes when the folder is back', async (t) => {
  const be = await listen(namedEcho('E'));
  t.after(() => be.close());
  const port = await reservePort();
  const file = tmpConfig(`{
    listeners: [{ name: "l", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } },
    log: { access: "logs/access.log" },
  }`);
  const logs = path.join(path.dirname(file), 'logs');
  const moved = logs + '.1';
  fs.mkdirSync(logs);
  const log = path.join(logs, 'access.log');
  const run = await startCli(['--headless', '-c', file], /serving/);
  t.after(() => run.child.kill('SIGKILL'));
  const once = async () => {
    const c = await connect(port);
    await readLine(c);
    c.end();
    await readAll(c);
  };
  const lines = (f: string): number => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').length - 1 : 0);
  await once();
  await waitFor(() => lines(log) === 1, { timeoutMs: 3000, what: 'first line' });
  fs.renameSync(logs, moved);
  run.child.kill('SIGUSR1');
  await waitFor(() => /error cannot open access log .*logs\/access\.log: ENOENT.*still writing to the file open before; retrying every 2 s/.test(run.stderr()), { timeoutMs: 3000, what: 'the failure reported' });
  assert.doesNotMatch(run.stderr(), /access log reopened/);
  await once();
  await waitFor(() => lines(path.join(moved, 'access.log')) === 2, { timeoutMs: 3000, what: 'a line in the moved file' });
  fs.mkdirSync(logs);
  await waitFor(() => /info  access log .*logs\/access\.log open again after [\d.]+ s of failed attempts: logging to it resumes/.test(run.stderr()), { timeoutMs: 5000, what: 'logging resumes' });
  await once();
  await waitFor(() => lines(log) === 1, { timeoutMs: 3000, what: 'a line in the new file' });
  assert.equal(lines(path.join(moved, 'access.log')), 2);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});
