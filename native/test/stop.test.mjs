// listen() results, stop() semantics, and that the engine never keeps a
// process alive (checked in child processes that must exit on their own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import {
  HOW, Harness, addonPath, collect, connectClient, startEchoServer, withTimeout,
} from './helpers.mjs';


/** Runs an ES module snippet in a fresh node; resolves {code, stdout, stderr, ms}. */
function runChild(source, timeoutMs = 8000, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', source],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ADDON: addonPath } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const PRELUDE = `
import { createRequire } from 'node:module';
import net from 'node:net';
const b = createRequire(import.meta.url)(process.env.ADDON);
`;

test('listen: EADDRINUSE, EINVAL, EEXIST, port 0', { timeout: 5000 }, async () => {
  const busy = net.createServer();
  await new Promise((r) => busy.listen(0, '127.0.0.76', r));
  const h = new Harness();
  try {
    const r = h.engine.listen(1, '127.0.0.76', busy.address().port, 16);
    assert.deepEqual(r, { ok: false, errno: 98, code: 'EADDRINUSE' });
    assert.equal(h.engine.listen(2, 'localhost', 0, 16).code, 'EINVAL');  // literals only
    assert.equal(h.engine.listen(3, '127.0.0.76', 70000, 16).code, 'EINVAL');
    assert.equal(h.engine.listen(5, '1'.repeat(300), 0, 16).code, 'EINVAL');  // never "all interfaces"
    const ok = h.engine.listen(4, '127.0.0.76', 0, 16);
    assert.equal(ok.ok, true);
    assert.ok(ok.port > 0);
    assert.equal(h.engine.listen(4, '127.0.0.76', 0, 16).code, 'EEXIST');
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
    h.engine.closeListener(4);
    assert.equal(h.engine.listen(4, '127.0.0.76', 0, 16).ok, true);  // id reusable
  } finally {
    h.stop();
    busy.close();
  }
});

test('a listener is not polled before activate(): clients wait in the backlog', { timeout: 5000 }, async () => {
  const h = new Harness({ onAccept: (ev, hh) => hh.engine.reject(ev.connId) });
  try {
    const r = h.engine.listen(1, '127.0.0.76', 0, 16);
    const c = await connectClient(r.port, '127.0.0.76');  // completes in the kernel
    const got = collect(c);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(h.events.length, 0);
    h.engine.activate(1);
    await got;
    assert.equal((await h.waitFor((e) => e.type === 'CLOSED')).how, HOW.REJECTED);
  } finally {
    h.stop();
  }
});

test('stop(): live connections end with CLOSED how=2, then every call is a no-op', { timeout: 5000 }, async () => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({
    onAccept: (ev, hh) => hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 1000, 0, undefined),
  });
  try {
    const port = h.listen(1, '127.0.0.76');
    const c = await connectClient(port, '127.0.0.76');
    const got = collect(c);
    const conn = await h.waitFor((e) => e.type === 'CONNECTED');
    h.stop();
    h.stop();  // idempotent
    await got;
    const closed = await h.closedFor(conn.connId);  // delivered after stop()
    assert.equal(closed.how, HOW.KILLED);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 0, fds: 0 });
    assert.equal(h.engine.listen(9, '127.0.0.76', 0, 1).code, 'ESHUTDOWN');
    assert.equal(h.engine.stats().length, 0);
    h.engine.connect(conn.connId, '127.0.0.71', echo.port, 1, 0, undefined);
    h.engine.kill(1);
    h.engine.closeAll();
  } finally {
    await echo.close();
  }
});

test('an engine that is never stopped does not keep the process alive', { timeout: 10000 }, async () => {
  const r = await runChild(`${PRELUDE}
    const e = new b.Engine(() => {});
    const l = e.listen(1, '127.0.0.77', 0, 16);
    e.activate(1);
    console.log(JSON.stringify(l));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).ok, true);
});

test('stop() with live relays lets the process exit; onEvents errors are reported', { timeout: 10000 }, async () => {
  const r = await runChild(`${PRELUDE}
    const echo = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.77');
    await new Promise((res) => echo.once('listening', res));
    let closed = 0;
    const e = new b.Engine((ev) => {
      for (let i = 0; i < ev.length;) {
        if (ev[i] === 1) { e.connect(ev[i + 1], '127.0.0.77', echo.address().port, 1000, 0, undefined); i += 7; }
        else if (ev[i] === 4) { closed++; i += 7; }
        else i += ev[i] === 2 ? 2 : 3;
      }
      throw new Error('thrown from onEvents');
    });
    const port = e.listen(1, '127.0.0.77', 0, 16).port;
    e.activate(1);
    const clients = [];
    for (let i = 0; i < 5; i++) {
      const c = net.connect(port, '127.0.0.77');
      c.on('error', () => {});
      c.on('close', () => { if (clients.every((x) => x.destroyed)) echo.close(); });
      clients.push(c);
      await new Promise((res) => c.once('data', res).write('x'));
    }
    e.stop();
    process.on('exit', () => console.log('closed=' + closed));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /closed=5/);
  assert.match(r.stderr, /tcplb-native: onEvents threw: Error: thrown from onEvents/);
});

test('stopped engines are garbage collected cleanly (finalizer)', { timeout: 10000 }, async () => {
  const r = await runChild(`${PRELUDE}
    import { readdirSync } from 'node:fs';
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 50; i++) {
      const e = new b.Engine(() => {});
      e.listen(1, '127.0.0.77', 0, 16);
      e.stop();  // releases the self-reference once the last events are out
    }
    for (let i = 0; i < 10; i++) { await new Promise((res) => setTimeout(res, 10)); globalThis.gc(); }
    console.log(JSON.stringify({ before, after: fds() }));
  `, 8000, ['--expose-gc']);
  assert.equal(r.code, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout);
  assert.ok(after <= before, `fds before ${before}, after ${after}`);
});

test('a worker thread that exits with a running engine is torn down cleanly', { timeout: 10000 }, async () => {
  const r = await runChild(`
    import { Worker } from 'node:worker_threads';
    const src = \`
      const b = require(process.env.ADDON);
      const e = new b.Engine(() => {});
      e.listen(1, '127.0.0.77', 0, 16);
      e.activate(1);
      require('node:worker_threads').parentPort.postMessage('up');
    \`;
    for (let i = 0; i < 3; i++) {
      const w = new Worker(src, { eval: true, execArgv: [] });
      await new Promise((res) => w.once('message', res));
      await w.terminate();
    }
    console.log('workers done');
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /workers done/);
});
