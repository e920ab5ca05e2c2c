/**
 * `workers: 2`: the JS engine in two cluster worker processes on the same
 * listening sockets, the control plane in this process. Relay, reload,
 * operator kills and a worker crash, seen from outside.
 */
import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import fs from 'node:fs';
import { test } from 'node:test';
import { connect, reservePort, listen, namedEcho, readAll, readLine, waitFor } from '../helpers/net.js';
import { startTestApp } from '../helpers/app.js';

// `workers` is a setting of the JavaScript engine: these tests run it in
// every pass of the suite, also when TCPLB_ENGINE selects the native engine.
process.env.TCPLB_ENGINE = 'js';

const workerPids = (): number[] => Object.values(cluster.workers ?? {}).flatMap((w) => (w !== undefined && !w.isDead() ? [w.process.pid!] : []));
const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

/** One exchange through the proxy: `<backend name>: <echoed text>`. */
async function ask(port: number, text: string): Promise<string> {
  const c = await connect(port);
  const name = await readLine(c);
  const echo = readLine(c);
  c.write(`${text}\n`);
  const got = `${name}: ${await echo}`;
  c.end();
  return got;
}

test('workers: 2 relays through two worker processes and reports every session to the primary', { timeout: 30_000 }, async (t) => {
  const a = await listen(namedEcho('a'), '127.0.0.1');
  const b = await listen(namedEcho('b'), '127.0.0.1');
  t.after(() => (a.close(), b.close()));
  const port = await reservePort();
  const app = await startTestApp(`{
    workers: 2, engine: "js",
    listeners: [{ name: "echo", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] } },
  }`);
  t.after(() => app.stopNow());
  assert.equal(app.engine.name, 'js x2 workers');
  const pids = workerPids();
  assert.equal(pids.length, 2, 'two worker processes');
  assert.ok(!pids.includes(process.pid));

  const N = 200;
  const replies = await Promise.all(Array.from({ length: N }, (_, i) => ask(port, `hello ${i}`)));
  replies.forEach((r, i) => assert.match(r, new RegExp(`^[ab]: hello ${i}$`)));
  const names = new Set(replies.map((r) => r[0]));
  assert.deepEqual([...names].sort(), ['a', 'b'], 'both backends served');
  await waitFor(() => app.records.length, { until: (n) => n === N, timeoutMs: 5000, what: `${N} access records in the primary` });
  assert.ok(app.records.every((r) => r.reason === 'closed' && r.listener === 'echo' && r.bytesIn > 0));
  const snap = app.actions.snapshot();
  const total = snap.upstreams.flatMap((u) => u.backends).reduce((n, x) => n + x.total, 0);
  assert.equal(total, N, 'per-backend totals counted in the primary');
  assert.equal(app.engine.boundAddresses().get('echo')?.port, port);
});

test('workers: a live session shows in the primary, an operator kill reaches it, a reload adds a listener in every worker', { timeout: 30_000 }, async (t) => {
  const a = await listen(namedEcho('a'), '127.0.0.1');
  t.after(() => a.close());
  const port = await reservePort();
  const port2 = await reservePort();
  const text = (extra: string): string => `{
    workers: 2, engine: "js",
    listeners: [{ name: "one", listen: "127.0.0.1:${port}", upstream: "u" }${extra}],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}"] } },
  }`;
  const app = await startTestApp(text(''));
  t.after(() => app.stopNow());
  const c = await connect(port);
  assert.equal(await readLine(c), 'a');
  await waitFor(() => app.engine.sessions(10).list.length === 1, { timeoutMs: 3000, what: 'the open session mirrored in the primary' });
  assert.equal(app.engine.sessions(10).list[0]!.backend, `u/127.0.0.1:${a.port}`);
  const ended = readAll(c);
  const r = app.actions.kill(`u/127.0.0.1:${a.port}`, 'console');
  assert.ok(r.ok, r.message);
  await ended;
  await waitFor(() => app.records.some((x) => x.reason === 'killed'), { timeoutMs: 3000, what: 'a killed record' });

  fs.writeFileSync(app.file, text(`, { name: "two", listen: "127.0.0.1:${port2}", upstream: "u" }`));
  const res = await app.actions.reload('ctl');
  assert.ok(res.ok, res.message);
  // Several connections, so both workers' accept paths are exercised.
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(port2, `x${i}`)));
  assert.ok(replies.every((x, i) => x === `a: x${i}`));
});

test('workers: a worker that dies is replaced and the listener keeps serving; stop ends every worker', { timeout: 30_000 }, async (t) => {
  const a = await listen(namedEcho('a'), '127.0.0.1');
  t.after(() => a.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    workers: 2, engine: "js",
    listeners: [{ name: "one", listen: "127.0.0.1:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${a.port}"] } },
  }`);
  let stopped = false;
  t.after(() => (stopped ? undefined : app.stopNow()));
  const [victim] = workerPids();
  process.kill(victim!, 'SIGKILL');
  await waitFor(() => app.lines.some((l) => l.includes(`relay worker ${victim} died`)), { timeoutMs: 5000, what: 'the death logged' });
  await waitFor(() => workerPids().length === 2 && !workerPids().includes(victim!), { timeoutMs: 5000, what: 'a replacement worker' });
  // The replacement binds the same listener: many connections all succeed.
  const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(port, `y${i}`)));
  assert.ok(replies.every((x, i) => x === `a: y${i}`));
  const pids = workerPids();
  stopped = true;
  await app.stop(2000);
  await waitFor(() => pids.every((p) => !alive(p)), { timeoutMs: 5000, what: 'every worker process gone' });
});
