/**
 * Live reload: the file watcher, apply-as-a-diff, refused bad edits, and no
 * open connection dropped by any of it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import { watchConfig } from '../../src/cli/watch.js';
import { startTestApp } from '../helpers/app.js';
import { connect, reservePort, greetingVia, listen, namedEcho, readAll, sha256 } from '../helpers/net.js';
import { sleep, waitFor, waitForSteady, waitUntil } from '../helpers/wait.js';

function cfg(parts: { listeners: string; upstreams: string; extra?: string }): string {
  return `{
  listeners: [${parts.listeners}],
  upstreams: {${parts.upstreams}},
  log: { access: null },
  ${parts.extra ?? ''}
}
`;
}

/** Save like vim: write a temp file, rename it over the config. */
function saveByRename(file: string, text: string): void {
  fs.writeFileSync(file + '.swp', text);
  fs.renameSync(file + '.swp', file);
}

test('a 50 MB transfer survives five live edits (add listener, remove backend, balance, broken file, fix)', async (t) => {
  const SIZE = 50 * 1024 * 1024;
  const payload = crypto.randomBytes(SIZE);
  // The bulk backend streams slowly enough that the edits land mid-transfer.
  const bulk = await listen((s) => {
    let off = 0;
    const pump = (): void => {
      while (off < SIZE) {
        const end = Math.min(off + 256 * 1024, SIZE);
        const ok = s.write(payload.subarray(off, end));
        off = end;
        if (!ok) return void s.once('drain', () => setTimeout(pump, 5)); // pacing: a slow writer
      }
      s.end();
    };
    pump();
  });
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([bulk.close(), a.close(), b.close()]));
  const p1 = await reservePort();
  const p2 = await reservePort();
  const base = {
    listeners: `{ name: "bulk", listen: "127.0.0.1:${p1}", upstream: "bulk" }`,
    upstreams: `bulk: { servers: ["127.0.0.1:${bulk.port}"] }, echo: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] }`,
  };
  const app = await startTestApp(cfg(base));
  t.after(() => app.stopNow());
  const w = watchConfig(app.file, () => void app.actions.reload('watcher'));
  t.after(() => w.close());
  app.setWatching(true);
  await w.ready; // chokidar's first scan: a save before it would be the initial state

  const c = await connect(p1);
  c.pause();
  const got = readAll(c);
  setTimeout(() => c.resume(), 0);
  const slowRead = setInterval(() => (c.isPaused() ? c.resume() : c.pause()), 50);
  t.after(() => clearInterval(slowRead));

  // 1. add a listener (by rename, as vim saves)
  let t0 = Date.now();
  saveByRename(app.file, cfg({ ...base, listeners: base.listeners + `, { name: "echo", listen: "127.0.0.1:${p2}", upstream: "echo" }` }));
  await waitFor(() => app.engine.boundAddresses().has('echo'), { timeoutMs: 2000, what: 'new listener' });
  assert.ok(Date.now() - t0 < 2000);
  assert.match(await greetingVia(p2), /^[AB]$/);
  // 2. remove backend B (in-place write)
  t0 = Date.now();
  const withEcho = { ...base, listeners: base.listeners + `, { name: "echo", listen: "127.0.0.1:${p2}", upstream: "echo" }` };
  fs.writeFileSync(app.file, cfg({ ...withEcho, upstreams: `bulk: { servers: ["127.0.0.1:${bulk.port}"] }, echo: { servers: ["127.0.0.1:${a.port}"] }` }));
  await waitFor(() => app.runtime.backend(`echo/127.0.0.1:${b.port}`) === undefined, { timeoutMs: 2000, what: 'B removed' });
  for (let i = 0; i < 4; i++) assert.equal(await greetingVia(p2), 'A');
  // 3. change balance
  const three = { ...withEcho, upstreams: `bulk: { servers: ["127.0.0.1:${bulk.port}"] }, echo: { balance: "ip_hash", servers: ["127.0.0.1:${a.port}"] }` };
  fs.writeFileSync(app.file, cfg(three));
  await waitFor(() => app.runtime.config.upstreams['echo']!.balance === 'ip_hash', { timeoutMs: 2000, what: 'balance change' });
  // 4. a broken file changes nothing and is reported with file:line:col
  const before = app.runtime.config;
  fs.writeFileSync(app.file, cfg(three).replace('balance:', 'balanse:'));
  await waitFor(() => app.actions.snapshot().config.watch === 'refused', { timeoutMs: 2000, what: 'refusal' });
  const snap = app.actions.snapshot();
  assert.ok(snap.config.error!.includes(`${app.file}:`), snap.config.error);
  assert.match(snap.config.error!, /unknown key "balanse" \(did you mean "balance"\?\)/);
  assert.equal(app.runtime.config, before, 'a refused reload must not touch the running config');
  assert.ok(app.lines.some((l) => /reload refused: .*still serving the previous config/.test(l)));
  // 5. the fix applies
  t0 = Date.now();
  fs.writeFileSync(app.file, cfg({ ...three, extra: 'shutdownTimeout: "3s",' }));
  await waitFor(() => app.runtime.config.shutdownTimeoutMs === 3000, { timeoutMs: 5000, what: 'fixed file applied' });
  assert.ok(Date.now() - t0 < 2000, `the fix took ${Date.now() - t0} ms to apply`);
  assert.equal(app.actions.snapshot().config.watch, 'watching');

  clearInterval(slowRead);
  c.resume();
  const r = await got;
  assert.equal(r.data.length, SIZE, 'transfer truncated');
  assert.equal(sha256(r.data), sha256(payload));
  assert.ok(app.lines.some((l) => /reload: \+listener echo 127\.0\.0\.1:\d+/.test(l)), 'reload log lines');
  assert.ok(app.lines.some((l) => /reload: -server echo\/127\.0\.0\.1:\d+/.test(l)));
  assert.ok(app.lines.some((l) => /reload: ~upstream echo balance round_robin->ip_hash/.test(l)));
});

test('a reload whose new port is in use is refused as a whole; nothing else changes', async (t) => {
  const a = await listen(namedEcho('A'));
  const busy = await listen(() => {});
  t.after(() => Promise.all([a.close(), busy.close()]));
  const p1 = await reservePort();
  const p3 = await reservePort();
  const base = { listeners: `{ name: "one", listen: "127.0.0.1:${p1}", upstream: "u" }`, upstreams: `u: { servers: ["127.0.0.1:${a.port}"] }` };
  const app = await startTestApp(cfg(base));
  t.after(() => app.stopNow());
  fs.writeFileSync(
    app.file,
    cfg({
      listeners: `{ name: "one", listen: "127.0.0.1:${p1}", upstream: "u", idleTimeout: "1s" }, { name: "two", listen: "127.0.0.1:${busy.port}", upstream: "u" }, { name: "three", listen: "127.0.0.1:${p3}", upstream: "u" }`,
      upstreams: base.upstreams,
    }),
  );
  const res = await app.actions.reload('ctl');
  assert.equal(res.ok, false);
  assert.match(res.message, /listener "two": 127\.0\.0\.1:\d+ is already in use/);
  assert.deepEqual([...app.engine.boundAddresses().keys()], ['one'], 'listener three must not be half-applied');
  await assert.rejects(connect(p3));
  assert.equal(app.runtime.config.listeners[0]!.idleTimeoutMs, 600000);
  assert.equal(await greetingVia(p1), 'A');
});

test('operator state and check history survive an unrelated reload', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const p1 = await reservePort();
  const base = {
    listeners: `{ name: "one", listen: "127.0.0.1:${p1}", upstream: "u" }`,
    upstreams: `u: { check: { type: "tcp", interval: "10s", rise: 2, fall: 3 }, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] }`,
  };
  const app = await startTestApp(cfg(base));
  t.after(() => app.stopNow());
  const idA = `u/127.0.0.1:${a.port}`;
  await waitFor(() => app.runtime.backends().every((x) => x.op === 'up'), { timeoutMs: 2000, what: 'first probes' });
  assert.equal(app.actions.drain(idA, 'ctl').ok, true);
  const probedAt = app.runtime.backend(idA)!.lastProbe!.at;
  fs.writeFileSync(app.file, cfg({ ...base, extra: 'shutdownTimeout: "5s",' }));
  const res = await app.actions.reload('ctl');
  assert.equal(res.ok, true, res.message);
  assert.deepEqual(res.changes, ['~shutdownTimeout 30s->5s']);
  assert.equal(app.runtime.backend(idA)!.admin, 'drain');
  assert.equal(app.runtime.backend(idA)!.op, 'up', 'no re-probe, no unknown phase after a reload');
  assert.equal(app.runtime.backend(idA)!.lastProbe!.at, probedAt, 'check loop must not restart on an unrelated edit');
  for (let i = 0; i < 3; i++) assert.equal(await greetingVia(p1), 'B');
});

test('100 reloads while 10 clients loop: no client error, no leaked handles or timers', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const p1 = await reservePort();
  const p2 = await reservePort();
  const one = { listeners: `{ name: "one", listen: "127.0.0.1:${p1}", upstream: "u" }`, upstreams: `u: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] }` };
  const two = {
    listeners: one.listeners + `, { name: "two", listen: "127.0.0.1:${p2}", upstream: "u" }`,
    upstreams: `u: { balance: "least_conn", check: { type: "tcp", interval: "5s" }, servers: ["127.0.0.1:${a.port}", { address: "127.0.0.1:${b.port}", weight: 3 }] }`,
  };
  const app = await startTestApp(cfg(one));
  t.after(() => app.stopNow());
  const count = () => {
    const r = process.getActiveResourcesInfo();
    return { timers: r.filter((x) => x === 'Timeout').length, tcp: r.filter((x) => x === 'TCPServerWrap' || x === 'TCPSocketWrap').length };
  };
  const before = await waitForSteady(count, { what: 'handle and timer counts after start', quietMs: 50 });
  let errors = 0;
  let done = 0;
  let stop = false;
  const clients = Array.from({ length: 10 }, async () => {
    while (!stop) {
      try {
        const g = await greetingVia(p1);
        if (g !== 'A' && g !== 'B') errors++;
        done++;
      } catch {
        errors++;
      }
    }
  });
  for (let i = 0; i < 100; i++) {
    fs.writeFileSync(app.file, cfg(i % 2 === 0 ? two : one));
    const r = await app.actions.reload('ctl');
    assert.equal(r.ok, true, r.message);
  }
  stop = true;
  await Promise.all(clients);
  assert.equal(errors, 0, `${errors} client errors during reloads`);
  assert.ok(done > 50, `only ${done} client round trips`);
  assert.equal(app.engine.boundAddresses().size, 1, 'the last config has one listener');
  // Closed sockets and cleared timers leave the counts asynchronously: wait for what the assertions check.
  await waitUntil(count, { what: 'handles and timers back to the baseline', timeoutMs: 2000, until: (c) => c.tcp <= before.tcp && c.timers <= before.timers + 1 });
  const after = count();
  assert.ok(after.tcp <= before.tcp, `TCP handles ${before.tcp} -> ${after.tcp}`);
  assert.ok(after.timers <= before.timers + 1, `timers ${before.timers} -> ${after.timers}`);
});

test('renaming a listener keeps its socket; a down: edit is a logged state change', async (t) => {
  const a = await listen(namedEcho('A'));
  const b = await listen(namedEcho('B'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const p1 = await reservePort();
  const servers = (down: boolean) => `u: { servers: ["127.0.0.1:${a.port}", { address: "127.0.0.1:${b.port}", down: ${down} }] }`;
  const app = await startTestApp(cfg({ listeners: `{ name: "old", listen: "127.0.0.1:${p1}", upstream: "u" }`, upstreams: servers(false) }));
  t.after(() => app.stopNow());
  const transitions: string[] = [];
  app.runtime.bus.on('transition', (e) => transitions.push(`${e.from}->${e.to} ${e.reason}`));
  fs.writeFileSync(app.file, cfg({ listeners: `{ name: "new", listen: "127.0.0.1:${p1}", upstream: "u" }`, upstreams: servers(true) }));
  const r = await app.actions.reload('ctl');
  assert.equal(r.ok, true, r.message);
  assert.deepEqual([...app.engine.boundAddresses().keys()], ['new']);
  assert.deepEqual(transitions, ['UP->DOWN down: true in config']);
  for (let i = 0; i < 4; i++) assert.equal(await greetingVia(p1), 'A');
});
