/**
 * Fault 8: a flapping backend. It alternates accepting and refusing every
 * 300 ms; checks run every 100 ms with rise 2, fall 3. Over 5 s the number
 * of UP/DOWN transitions must be what rise/fall allow for the probe results
 * seen (replayed through a reference counter), bounded by the flips, and the
 * log must stay at a few lines per transition.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';
import { listenOn, lo, sleep } from './helpers.js';

const HOST = lo(66);
const FLIP_MS = 300;
const WINDOW_MS = 5000;
const RISE = 2;
const FALL = 3;
const INTERVAL = 100;

/** A server on a fixed port that listens for FLIP_MS, then is closed (refusing) for FLIP_MS, and so on. */
async function flapper(): Promise<{ port: number; flips: () => number; stop: () => Promise<void> }> {
  const port = await reservePort(HOST);
  let srv: net.Server | undefined;
  let flips = 0;
  let stopped = false;
  const socks = new Set<net.Socket>();
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.createServer((c) => {
        socks.add(c);
        c.on('close', () => socks.delete(c));
        c.on('error', () => {});
        c.resume();
      });
      s.once('error', () => resolve()); // port briefly unavailable: stay closed this phase
      s.listen({ port, host: HOST }, () => {
        srv = s;
        resolve();
      });
    });
  const close = (): void => {
    srv?.close();
    srv = undefined;
    for (const c of socks) c.destroy();
  };
  await open();
  const timer = setInterval(() => {
    if (stopped) return;
    flips++;
    if (srv !== undefined) close();
    else void open();
  }, FLIP_MS);
  return {
    port,
    flips: () => flips,
    async stop() {
      stopped = true;
      clearInterval(timer);
      close();
    },
  };
}

/** The reference rise/fall counter: transitions a result sequence allows, from `state` with its counters. */
function replay(results: boolean[], state: 'up' | 'down', passes: number, fails: number): number {
  let n = 0;
  for (const ok of results) {
    if (ok) {
      fails = 0;
      passes++;
      if (state === 'down' && passes >= RISE) {
        state = 'up';
        passes = 0;
        n++;
      }
    } else {
      passes = 0;
      fails++;
      if (state === 'up' && fails >= FALL) {
        state = 'down';
        fails = 0;
        n++;
      }
    }
  }
  return n;
}

test(`flapping backend (${FLIP_MS} ms on/off), tcp check every ${INTERVAL} ms rise ${RISE} fall ${FALL}: transitions bounded by rise/fall, log bounded`, { timeout: 30_000 }, async (t) => {
  const be = await flapper();
  t.after(() => be.stop());
  const steady = await listenOn(HOST, (s) => s.resume());
  t.after(() => steady.close());
  const port = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u" }],
    upstreams: { u: { check: { type: "tcp", interval: ${INTERVAL}, timeout: 80, rise: ${RISE}, fall: ${FALL} },
      servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }, "${HOST}:${steady.port}"] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  const id = `u/${HOST}:${be.port}`;
  // Wait for the first verdict, then watch a 5 s window.
  await waitFor(() => app.runtime.backend(id)?.op, { what: 'the first verdict on the flapping backend', timeoutMs: 2000, intervalMs: 5, until: (op) => op !== 'unknown' });
  // The verdict and its counters where the window starts (registered in the same turn as the listeners below).
  const b0 = app.runtime.backend(id)!;
  const start = { state: b0.op as 'up' | 'down', passes: b0.passes, fails: b0.fails };
  const results: boolean[] = [];
  const transitions: string[] = [];
  app.runtime.bus.on('probe', (e) => e.backend === id && results.push(e.result.ok));
  app.runtime.bus.on('transition', (e) => e.backend === id && transitions.push(`${e.from}->${e.to}`));
  const linesBefore = app.lines.length;
  const flipsBefore = be.flips();
  await sleep(WINDOW_MS); // the observation window itself
  const flips = be.flips() - flipsBefore;
  const lines = app.lines.slice(linesBefore);
  const loud = lines.filter((l) => !/^\S+ debug /.test(l));
  const allowed = replay(results, start.state, start.passes, start.fails);
  // Transitions alternate, and a down-and-up pair needs at least fall + rise results.
  const bound = 2 * Math.ceil(results.length / (RISE + FALL)) + 1;
  console.log(
    `flapping: ${flips} flips in ${WINDOW_MS / 1000} s, ${results.length} probes (${results.filter((x) => x).length} passed), ` +
      `${transitions.length} transitions [${transitions.join(' ')}] (rise/fall allow exactly ${allowed} for these results; upper bound ${bound}, flips ${flips}); ` +
      `log: ${loud.length} info/warn/error lines, ${lines.length} with debug (${(loud.length / Math.max(1, transitions.length)).toFixed(1)} per transition)`,
  );
  assert.equal(transitions.length, allowed, 'transitions differ from what rise/fall allow for the probe results');
  assert.ok(transitions.length <= bound, `${transitions.length} transitions for ${results.length} probes (bound ${bound})`);
  assert.ok(transitions.length <= flips + 1, `${transitions.length} transitions for ${flips} flips`);
  assert.ok(results.length >= (WINDOW_MS / INTERVAL) * 0.7, `only ${results.length} probes in ${WINDOW_MS} ms at interval ${INTERVAL} ms`);
  assert.ok(loud.length <= 3 * transitions.length + 2, `${loud.length} log lines for ${transitions.length} transitions`);
  assert.ok(lines.length <= 3 * transitions.length + results.length + 2, `${lines.length} log lines (debug included) for ${results.length} probes`);
});
