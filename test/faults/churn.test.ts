/**
 * Fault 6: churn. 100 config reloads (a third backend added and removed,
 * weights and timeouts changed) and 200 drain/enable actions while 50
 * clients loop connect-send-receive: no client may see an error, and the
 * app must not leak timers or sockets (process.getActiveResourcesInfo()
 * before and after, in-process).
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor, waitForSteady, waitUntil } from '../helpers/wait.js';
import { listenOn, lo, sleep } from './helpers.js';

const HOST = lo(63);
const CLIENTS = 50;
const RELOADS = 100;
const ACTIONS = 200;

/** Resource counts by type, as getActiveResourcesInfo reports them. */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

/**
 * Live async resources by type, unref'd timers included (which
 * getActiveResourcesInfo leaves out: the app unrefs its sweep and timers).
 */
const live = new Map<number, string>();
createHook({
  init(id, type) {
    if (type === 'Timeout' || type === 'TCPWRAP' || type === 'TCPSERVERWRAP' || type === 'Immediate') live.set(id, type);
  },
  destroy(id) {
    live.delete(id);
  },
}).enable();
function liveCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const type of live.values()) out[type] = (out[type] ?? 0) + 1;
  return out;
}

/** A backend that greets with its name, then echoes lines. */
function echo(name: string) {
  return (s: net.Socket): void => {
    s.write(`${name}\n`);
    s.pipe(s);
  };
}

/** One connect-greet-send-receive-close round; throws on any deviation. */
function round(port: number, local: string, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST, localAddress: local });
    let buf = '';
    let greeted = false;
    const msg = `ping ${n} ${'x'.repeat(n % 200)}`;
    const t = setTimeout(() => fail(new Error(`round ${n} timed out (got ${JSON.stringify(buf)})`)), 5000);
    function fail(e: Error): void {
      clearTimeout(t);
      s.destroy();
      reject(e);
    }
    s.on('error', fail);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!greeted) {
        const i = buf.indexOf('\n');
        if (i < 0) return;
        if (!/^[ABC]$/.test(buf.slice(0, i))) return fail(new Error(`bad greeting ${JSON.stringify(buf.slice(0, i))}`));
        greeted = true;
        buf = buf.slice(i + 1);
        s.write(`${msg}\n`);
      }
      if (buf === `${msg}\n`) {
        clearTimeout(t);
        s.end();
        s.once('close', () => resolve());
      }
    });
    s.on('close', () => {
      if (buf !== `${msg}\n`) fail(new Error(`round ${n}: closed early (got ${JSON.stringify(buf)})`));
    });
  });
}

test(`churn: ${RELOADS} reloads and ${ACTIONS} drain/enable actions under ${CLIENTS} looping clients; no client error, no leaked timers or sockets`, { timeout: 60_000 }, async (t) => {
  const a = await listenOn(HOST, echo('A'));
  const b = await listenOn(HOST, echo('B'));
  const c = await listenOn(HOST, echo('C'));
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const port = await reservePort(HOST);
  const config = (i: number): string => `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u", idleTimeout: ${i % 2 === 0 ? '"1m"' : '"2m"'}, connectTimeout: "2s" }],
    upstreams: { u: { balance: ${i % 3 === 0 ? '"least_conn"' : '"round_robin"'}, servers: [
      { address: "${HOST}:${a.port}", weight: ${1 + (i % 3)} },
      "${HOST}:${b.port}",
      ${i % 2 === 1 ? `"${HOST}:${c.port}",` : ''}
    ] } },
    log: { access: null },
  }`;
  const app = await startTestApp(config(0));
  t.after(() => app.stopNow());
  // The baseline once start-up's handles and timers have settled (no event says so: the counts stop moving).
  await waitForSteady(() => [resources(), liveCounts()], { what: 'handle and timer counts after start', quietMs: 100 });
  const before = resources();
  const liveBefore = liveCounts();

  let stop = false;
  const stats = { rounds: 0, errors: [] as string[] };
  const loops = Array.from({ length: CLIENTS }, async (_, k) => {
    let n = 0;
    while (!stop) {
      try {
        await round(port, lo(64 + (k % 4)), k * 100000 + n++);
        stats.rounds++;
      } catch (e) {
        stats.errors.push((e as Error).message);
      }
    }
  });

  const idA = `u/${HOST}:${a.port}`;
  const idB = `u/${HOST}:${b.port}`;
  const t0 = Date.now();
  const reloads = (async () => {
    const out = { ok: 0, changed: 0, failed: [] as string[] };
    for (let i = 1; i <= RELOADS; i++) {
      fs.writeFileSync(app.file, config(i));
      const r = await app.actions.reload('ctl');
      if (!r.ok) out.failed.push(r.message);
      else {
        out.ok++;
        if (r.changes.length > 0) out.changed++;
      }
      await sleep(40); // pacing: a reload every ~40 ms while clients loop
    }
    return out;
  })();
  const actions = (async () => {
    const fails: string[] = [];
    // Never both drained at once: A and B take turns.
    for (let i = 0; i < ACTIONS / 2; i++) {
      const id = i % 2 === 0 ? idA : idB;
      const d = app.actions.drain(id, 'ctl');
      if (!d.ok) fails.push(d.message);
      await sleep(10); // pacing of the admin actions
      const e = app.actions.enable(id, 'ctl');
      if (!e.ok) fails.push(e.message);
      await sleep(10);
    }
    return fails;
  })();
  const [rel, actFails] = await Promise.all([reloads, actions]);
  const churnMs = Date.now() - t0;
  await sleep(300); // the scenario: clients keep looping a moment on the final config
  stop = true;
  await Promise.all(loops);
  await waitFor(() => app.engine.sessions(0).total === 0, { timeoutMs: 3000, what: 'sessions to end' });
  // Sockets and timers are destroyed asynchronously: wait (up to 3 s) for the counts the assertions below check.
  const keys = ['Timeout', 'TCPSocketWrap', 'TCPServerWrap'];
  const back = (): boolean => {
    const r = resources();
    const l = liveCounts();
    return keys.every((k) => (r[k] ?? 0) <= (before[k] ?? 0)) && ['Timeout', 'TCPWRAP', 'TCPSERVERWRAP'].every((k) => (l[k] ?? 0) <= (liveBefore[k] ?? 0) + 2);
  };
  await waitUntil(back, { what: 'handles and timers back to the baseline', timeoutMs: 3000 });
  const after = resources();
  const liveAfter = liveCounts();
  const fmt = (r: Record<string, number>): string => keys.map((k) => `${k} ${r[k] ?? 0}`).join(', ');
  console.log(
    `churn: ${RELOADS} reloads (${rel.ok} ok, ${rel.changed} with changes) and ${ACTIONS} drain/enable actions in ${(churnMs / 1000).toFixed(1)} s; ` +
      `${stats.rounds} client rounds, ${stats.errors.length} errors; resources before: ${fmt(before)}; after: ${fmt(after)}; ` +
      `live incl. unref'd (async_hooks): before ${JSON.stringify(liveBefore)}, after ${JSON.stringify(liveAfter)}`,
  );
  for (const e of stats.errors.slice(0, 5)) console.log(`  client error: ${e}`);
  assert.deepEqual(rel.failed, [], 'reloads refused');
  assert.deepEqual(actFails, [], 'actions failed');
  assert.equal(stats.errors.length, 0, `client errors: ${stats.errors.slice(0, 5).join('; ')}`);
  assert.ok(stats.rounds >= CLIENTS * 5, `only ${stats.rounds} client rounds`);
  for (const k of keys) assert.ok((after[k] ?? 0) <= (before[k] ?? 0), `${k}: ${before[k] ?? 0} before, ${after[k] ?? 0} after the churn`);
  for (const k of ['Timeout', 'TCPWRAP', 'TCPSERVERWRAP']) {
    assert.ok((liveAfter[k] ?? 0) <= (liveBefore[k] ?? 0) + 2, `${k} (async_hooks, unref'd included): ${liveBefore[k] ?? 0} before, ${liveAfter[k] ?? 0} after the churn`);
  }
  assert.equal(app.runtime.backends().length, 2, 'backends after the last reload');
});
