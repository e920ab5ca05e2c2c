/**
 * One count per backend. Clients loop through a listener while reloads remove
 * and re-add a backend, the operator drains and kills; at quiet points (held
 * connections open, nothing moving) the open connections per backend must be
 * the same in the engine, in `ctl status`, in the metrics endpoint and at the
 * backends themselves (their open sockets); at the end every count is 0, and
 * the connections made to each backend (its accepted sockets) equal its
 * total in `ctl status` and the metrics, as the listener total equals what
 * the clients opened. Bounded: ROUNDS rounds of CHURN_MS each.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { runCtl } from '../../src/control/client.js';
import type { Snapshot } from '../../src/runtime/snapshot.js';
import { startTestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/net.js';
import { reservePort } from '../helpers/ports.js';
import { listenOn, lo, rng, seedFromEnv, sleep, tmpDir } from './helpers.js';

const HOST = lo(68);
const CLIENTS = 16;
const ROUNDS = 5;
const CHURN_MS = 700;
/** Connections held open at each quiet point. */
const HELD = 9;

/** A backend that greets with its name, then echoes. */
function echo(name: string) {
  return (s: net.Socket): void => {
    s.write(`${name}\n`);
    s.pipe(s);
  };
}

/** Prometheus text -> `name{labels}` -> value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** One short client connection: greeting, a line echoed, close. Resolves whether it connected; never rejects. */
function shortConn(port: number, holdMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: HOST });
    let connected = false;
    let buf = '';
    const t = setTimeout(() => s.destroy(), 5000);
    s.once('connect', () => (connected = true));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n') && !buf.includes('ping')) {
        buf += ' ';
        setTimeout(() => s.writable && s.write('ping\n'), holdMs);
      } else if (buf.endsWith('ping\n')) s.end();
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(connected);
    });
  });
}

/** A connection held open until closed by the test (or a kill): resolves once greeted. */
function heldConn(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST });
    s.on('error', () => {});
    s.once('data', () => resolve(s));
    s.once('close', () => reject(new Error('held connection closed before its greeting')));
  });
}

for (const workers of [1, 2]) {
  const what = workers === 1 ? 'one engine' : 'js x2 workers, counts reported in batches';
  test(`counts (${what}): engine, ctl status, metrics and the backends agree on open connections per backend through reloads (remove + re-add), kills and drains under load; totals match`, { timeout: 90_000 }, (t) => run(t, workers));
}

async function run(t: { after(fn: () => unknown): void }, workers: number): Promise<void> {
  const seed = seedFromEnv();
  const rand = rng(seed);
  const names = ['A', 'B', 'C'] as const;
  const be = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await listenOn(HOST, echo(n))] as const))) as Record<(typeof names)[number], Awaited<ReturnType<typeof listenOn>>>;
  t.after(() => Promise.all(Object.values(be).map((b) => b.close())));
  const id = (n: (typeof names)[number]): string => `u/${HOST}:${be[n].port}`;
  const port = await reservePort(HOST);
  const mport = await reservePort(HOST);
  const sock = path.join(tmpDir('counts'), 'ctl.sock');
  const config = (withC: boolean, i: number): string => `{
    workers: ${workers},
    listeners: [{ name: "front", listen: "${HOST}:${port}", upstream: "u", connectTimeout: "2s" }],
    upstreams: { u: { balance: ${i % 2 === 0 ? '"round_robin"' : '"least_conn"'}, servers: [
      "${HOST}:${be.A.port}", "${HOST}:${be.B.port}", ${withC ? `"${HOST}:${be.C.port}",` : ''}
    ] } },
    metrics: { listen: "${HOST}:${mport}" },
    control: { socket: "${sock}" },
  }`;
  // `workers` is a setting of the JS engine: that variant runs it in every pass of the suite.
  const forced = process.env.TCPLB_ENGINE;
  if (workers > 1) process.env.TCPLB_ENGINE = 'js';
  const app = await startTestApp(config(true, 0)).finally(() => {
    if (forced === undefined) delete process.env.TCPLB_ENGINE;
    else process.env.TCPLB_ENGINE = forced;
  });
  t.after(() => app.stopNow());
  let withC = true;
  let reloads = 0;
  const reload = async (c: boolean): Promise<void> => {
    withC = c;
    fs.writeFileSync(app.file, config(c, ++reloads));
    const r = await app.actions.reload('ctl');
    assert.ok(r.ok, r.message);
  };
  const ctl = async (...args: string[]): Promise<string> => {
    let out = '';
    let err = '';
    const code = await runCtl(args, sock, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) });
    assert.equal(code, 0, `ctl ${args.join(' ')}: ${err}`);
    return out;
  };
  const status = async (): Promise<Snapshot> => JSON.parse(await ctl('status')) as Snapshot;
  const metrics = async (): Promise<Map<string, number>> => parseMetrics(await (await fetch(`http://${HOST}:${mport}/metrics`)).text());

  /** Open connections per configured backend as each party sees them. */
  async function views(): Promise<Record<string, Record<string, number>>> {
    const snap = await status();
    const m = await metrics();
    const engine = app.engine.activeByBackend();
    const out: Record<string, Record<string, number>> = {};
    for (const n of names) {
      const bv = snap.upstreams[0]!.backends.find((b) => b.id === id(n));
      if (bv === undefined) continue; // removed by the last reload
      out[n] = { backend: be[n].sockets.size, engine: engine.get(id(n)) ?? 0, ctl: bv.active, metrics: m.get(`tcplb_backend_active_connections{backend="${id(n)}"}`) ?? -1 };
    }
    return out;
  }
  /** Connections made to each backend: accepted by it, and the totals in ctl status and metrics. */
  async function totalsNow(): Promise<Record<string, { backend: number; ctl: number; metrics: number }>> {
    const snap = await status();
    const m = await metrics();
    return Object.fromEntries(
      names.map((n) => [
        n,
        {
          backend: be[n].accepted(),
          ctl: snap.upstreams[0]!.backends.find((b) => b.id === id(n))?.total ?? -1,
          metrics: m.get(`tcplb_backend_connections_total{backend="${id(n)}"}`) ?? -1,
        },
      ]),
    );
  }
  const agree = (v: Record<string, Record<string, number>>): boolean => Object.values(v).every((x) => new Set(Object.values(x)).size === 1);
  /** Wait for the parties to agree (sockets close asynchronously), then assert it. */
  async function checkAgree(when: string, expectOpen?: number): Promise<Record<string, Record<string, number>>> {
    let v = await views();
    const end = Date.now() + 3000;
    while (!(agree(v) && (expectOpen === undefined || Object.values(v).reduce((n, x) => n + x.backend!, 0) === expectOpen)) && Date.now() < end) {
      await sleep(50);
      v = await views();
    }
    assert.ok(agree(v), `${when}: open connections per backend disagree: ${JSON.stringify(v)}`);
    if (expectOpen !== undefined) assert.equal(Object.values(v).reduce((n, x) => n + x.engine!, 0), expectOpen, `${when}: ${JSON.stringify(v)}`);
    return v;
  }

  let made = 0;
  let running = false;
  const loops: Promise<void>[] = [];
  const startClients = (): void => {
    running = true;
    for (let k = 0; k < CLIENTS; k++) {
      loops.push(
        (async () => {
          while (running) if (await shortConn(port, Math.floor(rand() * 30))) made++;
        })(),
      );
    }
  };
  const stopClients = async (): Promise<void> => {
    running = false;
    await Promise.all(loops.splice(0));
  };

  const quiet: string[] = [];
  let kills = 0;
  let drains = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // Churn: clients loop while the backend C comes and goes, A or B is drained, one is killed.
    startClients();
    const end = Date.now() + CHURN_MS;
    while (Date.now() < end) {
      const r = rand();
      if (r < 0.35) await reload(!withC);
      else if (r < 0.7) {
        const n = rand() < 0.5 ? 'A' : 'B'; // never both drained: the other takes over
        await ctl('drain', id(n));
        drains++;
        await sleep(20);
        await ctl('enable', id(n));
      } else {
        const live = withC ? names : names.slice(0, 2);
        await ctl('kill', id(live[Math.floor(rand() * live.length)]!));
        kills++;
      }
      await sleep(30);
    }
    await stopClients();

    // Quiet point: HELD connections open over A, B and C; then C is removed and re-added under them.
    if (!withC) await reload(true);
    await waitFor(() => app.engine.sessions(0).total === 0, { what: 'churn sessions to end', timeoutMs: 5000 });
    const q0 = await totalsNow();
    const held = await Promise.all(Array.from({ length: HELD }, () => heldConn(port)));
    made += HELD;
    const before = await checkAgree(`round ${round}, ${HELD} held`, HELD);
    await reload(false);
    await reload(true);
    await ctl('drain', id('A'));
    const after = await checkAgree(`round ${round}, after C removed and re-added and A drained`, HELD);
    await ctl('enable', id('A'));
    // A kill closes that backend's held connections; the rest stay open.
    const victim = names[round % 3]!;
    await ctl('kill', id(victim));
    kills++;
    const left = HELD - before[victim]!.backend!;
    await checkAgree(`round ${round}, after kill ${victim}`, left);
    for (const s of held) s.destroy();
    await waitFor(() => app.engine.sessions(0).total === 0, { what: 'held sessions to end', timeoutMs: 5000 });
    const zero = await checkAgree(`round ${round}, all closed`, 0);
    assert.ok(Object.values(zero).every((x) => x.engine === 0));
    // No dial was cut short at the quiet point: connections made to each backend here are exact.
    const q1 = await totalsNow();
    for (const n of names) {
      const made = { backend: q1[n]!.backend - q0[n]!.backend, ctl: q1[n]!.ctl - q0[n]!.ctl, metrics: q1[n]!.metrics - q0[n]!.metrics, held: before[n]!.engine };
      assert.ok(new Set(Object.values(made)).size === 1, `round ${round}, ${n}: connections made at the quiet point (ctl, metrics totals vs the backend's accepted): ${JSON.stringify(made)}`);
    }
    quiet.push(`round ${round}: held ${JSON.stringify(Object.fromEntries(Object.entries(after).map(([n, x]) => [n, x.engine])))}, kill ${victim} left ${left}`);
  }

  // The end: nothing open anywhere, every connection counted once.
  await waitFor(() => app.engine.sessions(0).total === 0, { what: 'sessions to end', timeoutMs: 5000 });
  const final = await checkAgree('end', 0);
  const snap = await status();
  const m = await metrics();
  await waitFor(() => app.records.length === made, { what: `${made} session records`, timeoutMs: 5000 });
  const totals = await totalsNow();
  // A kill can cut a dial short after the backend's kernel completed it: the backend saw a
  // connection the engine never made. Such a session ends `killed` with nothing relayed.
  const cut = Object.fromEntries(names.map((n) => [n, app.records.filter((r) => r.backend === id(n) && r.reason === 'killed' && r.bytesOut === 0).length]));
  console.log(
    `counts (${app.engine.name}, seed ${seed}): ${ROUNDS} rounds, ${reloads} reloads, ${drains + ROUNDS} drains, ${kills} kills, ${made} client connections; ` +
      `quiet points: ${quiet.join('; ')}; end open ${JSON.stringify(final)}; totals ${JSON.stringify(totals)}; killed before relaying ${JSON.stringify(cut)}`,
  );
  assert.equal(snap.totals.active, 0);
  assert.equal(snap.totals.accepted, made, 'ctl status: accepted = connections the clients made');
  assert.equal(m.get('tcplb_listener_connections_total{listener="front"}'), made, 'metrics: listener total = connections the clients made');
  assert.equal([...m.keys()].filter((k) => k.startsWith('tcplb_listener_refused_total')).length, 0, 'no client refused');
  for (const n of names) {
    const { backend, ctl: c, metrics: mt } = totals[n]!;
    assert.equal(mt, c, `${n}: metrics total vs ctl status total: ${JSON.stringify(totals)}`);
    assert.ok(c <= backend && backend - c <= cut[n]!, `${n}: ctl status total vs connections the backend accepted (at most ${cut[n]} dials cut short): ${JSON.stringify(totals)}`);
  }
  const reached = names.reduce((s, n) => s + totals[n]!.backend, 0);
  const counted = names.reduce((s, n) => s + totals[n]!.ctl, 0);
  assert.ok(counted <= made && made - counted <= Object.values(cut).reduce((a, b) => a + b, 0), `connections counted at backends ${counted} (accepted ${reached}) vs made ${made}`);
}
