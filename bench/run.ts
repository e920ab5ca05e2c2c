/**
 * `npm run bench`: tcplb (each of its data-plane engines: js, js with 2
 * workers, native) against nginx (stream) and HAProxy (mode tcp), each at its
 * defaults and tuned as its documentation recommends (nginx-tuned,
 * haproxy-tuned), and against no proxy at all, on loopback, in front of the
 * same backends.
 *
 *   node dist/bench/run.js [--quick] [--features] [--features-column] [--runs N] [--duration S]
 *                          [--peers direct,nginx,haproxy,nginx-tuned,haproxy-tuned,tcplb-js,tcplb-js2,tcplb-native]
 *                          [--out FILE | --no-write] [--no-install]
 *
 * Workloads (each run --runs times, median and min-max): connection rate and
 * keep-alive rate (wrk), bulk throughput with 1 and 4 streams (iperf3), idle
 * memory per connection (9,000 held connections), and tcplb's check cost
 * (bench/check-cost.ts). --quick: haproxy and haproxy-tuned vs tcplb-native
 * (tcplb-js2 when the native engine is not built), 1 run, 3 s, no idle memory
 * or check cost. The
 * full run writes docs/benchmarks.md. Every process started is stopped by its
 * PID; the temp dir is removed; Ctrl-C cleans up too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeDoc } from './lib/doc.js';
import { freePort } from './lib/net.js';
import { directPeer, featuresOn, findStreamModule, isTcplb, NativeUnavailable, nativeStatus, nativeUnavailable, OTHER_PROXIES, PEERS, toolOf, startBackends, startPeer, TCPLB, TCPLB_ENGINES, type Backends, type Env, type Peer, type PeerName, type TcplbPeer } from './lib/peers.js';
import { cpuTicks, killAllSync, run, sleep, stopAll, USER_HZ } from './lib/proc.js';
import { buildTables, ROWS, Results, textTable, type RowKey } from './lib/report.js';
import { loadAverage, machine, openFilesLimit, versions, which } from './lib/system.js';
import { checkCost, IDLE_CONNECTIONS, idleMemory, iperf, wrk, type WrkResult } from './lib/workloads.js';
import { scaleStart } from './scale-start.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOFILE = 20_000;

// ------------------------------------------------------------------ options

/** Seconds per wrk / iperf3 run of a full run: 8 columns x 3 runs stay under 14 minutes on 2 cores. */
const DEFAULT_DURATION = 4;

const USAGE = `Usage: npm run bench -- [options]      (or: node dist/bench/run.js [options])
  --quick            haproxy and haproxy-tuned vs tcplb-native (tcplb-js2 if the native engine
                     is not built) only, 1 run, 3 s each, no idle memory / check cost (< 2 min)
  --features         turn the features on in EVERY tcplb column: access log to a file and a
                     tcp check (1 s) on every upstream (default: off, like nginx and haproxy)
  --features-column  add ONE extra column with the features on, for the best engine available:
                     tcplb-native+f, or tcplb-js2+f when the native engine is not built
  --runs N           runs per workload (default 3; --quick: 1)
  --duration S       seconds per wrk / iperf3 run (default ${DEFAULT_DURATION}; --quick: 3)
  --peers LIST       columns to run, comma-separated, from:
                     direct,nginx,haproxy,nginx-tuned,haproxy-tuned,tcplb-js,tcplb-js2,tcplb-native
                     (tcplb = tcplb-js); nginx-tuned / haproxy-tuned: the settings each one's
                     documentation recommends for a TCP relay (bench/tuned-peers.md)
                     tcplb-js: engine "js", workers 1; tcplb-js2: engine "js", workers 2;
                     tcplb-native: engine "native" (n/a with the reason when it is not built);
                     and their features-on twins tcplb-js+f, tcplb-js2+f, tcplb-native+f
                     (a with/without pair in one run gives what the features cost per engine)
  --out FILE         write the Markdown report there (default: docs/benchmarks.md for a full run;
                     --quick writes nothing unless --out is given)
  --no-write         print the table only
  --no-install       do not run bench/install.sh even as root
  -h, --help         this text`;

interface Options {
  quick: boolean;
  features: boolean;
  featuresColumn: boolean;
  /** --quick without --peers: tcplb-native or tcplb-js2, decided once the native engine's state is known. */
  quickPeers: boolean;
  runs: number;
  duration: number;
  peers: PeerName[];
  out: string | undefined;
  install: boolean;
}

function options(argv: string[]): Options {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      options: {
        quick: { type: 'boolean' },
        features: { type: 'boolean' },
        'features-column': { type: 'boolean' },
        runs: { type: 'string' },
        duration: { type: 'string' },
        peers: { type: 'string' },
        out: { type: 'string' },
        'no-write': { type: 'boolean' },
        'no-install': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = v.quick ?? false;
  const int = (s: string | undefined, def: number, name: string, max: number): number => {
    if (s === undefined) return def;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      process.stderr.write(`--${name} must be an integer 1..${max}\n`);
      process.exit(2);
    }
    return n;
  };
  let peers: PeerName[] = quick ? ['haproxy', 'haproxy-tuned'] : ['direct', ...OTHER_PROXIES, ...TCPLB_ENGINES];
  if (v.peers !== undefined) {
    const names = v.peers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => (s === 'tcplb' ? 'tcplb-js' : s)); // the old single column
    const choosable: readonly string[] = PEERS;
    const bad = names.filter((p) => !choosable.includes(p));
    if (bad.length > 0 || names.length === 0) {
      process.stderr.write(`--peers: unknown ${bad.join(', ') || '(empty)'} (choose from ${choosable.join(',')}; tcplb = tcplb-js; --features-column adds a +f column)\n`);
      process.exit(2);
    }
    peers = names as PeerName[];
  }
  peers = PEERS.filter((p) => peers.includes(p));
  const out = v['no-write'] ? undefined : v.out !== undefined ? path.resolve(v.out) : quick ? undefined : path.join(ROOT, 'docs/benchmarks.md');
  return {
    quick,
    features: v.features ?? false,
    featuresColumn: v['features-column'] ?? false,
    quickPeers: quick && v.peers === undefined,
    runs: int(v.runs, quick ? 1 : 3, 'runs', 20),
    duration: int(v.duration, quick ? 3 : DEFAULT_DURATION, 'duration', 60),
    peers,
    out,
    install: !(v['no-install'] ?? false),
  };
}

// ------------------------------------------------------------------ run

const t0 = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`[${String(Math.round((Date.now() - t0) / 1000)).padStart(4)}s] ${msg}\n`);
};

let tmpDir: string | undefined;
function removeTmp(): void {
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = undefined;
}

async function install(opts: Options): Promise<void> {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && opts.install) {
    log('bench/install.sh (packages already installed are skipped)');
    const r = await run('bash', [path.join(ROOT, 'bench/install.sh')], 10 * 60_000, { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const l of (r.stdout + r.stderr).trim().split('\n')) if (l) log(`  ${l}`);
    if (r.code !== 0) log(`  install.sh failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}); peers without their tools are reported n/a`);
    return;
  }
  const missing = ['nginx', 'haproxy', 'wrk', 'iperf3'].filter((b) => !which(b));
  if (missing.length > 0) {
    log(`missing: ${missing.join(', ')}. As root: bash bench/install.sh (or apt-get install nginx libnginx-mod-stream haproxy wrk iperf3)`);
  }
}

async function main(): Promise<number> {
  const opts = options(process.argv.slice(2));
  const budgetMs = (opts.quick ? 3 : 15) * 60_000;
  const deadline = t0 + budgetMs;
  const watchdog = setTimeout(() => {
    log(`hard time limit (${budgetMs / 60_000 + 1} min) reached: stopping everything`);
    killAllSync();
    removeTmp();
    process.exit(1);
  }, budgetMs + 60_000);
  watchdog.unref();

  // TCPLB_ENGINE overrides every config's engine: the columns would all run the same one
  if (process.env.TCPLB_ENGINE !== undefined) {
    log(`TCPLB_ENGINE=${process.env.TCPLB_ENGINE} ignored: each tcplb column sets its own engine`);
    delete process.env.TCPLB_ENGINE;
  }
  await install(opts);
  for (const f of ['dist/src/cli/main.js', 'dist/bench/lib/idle-server.js', 'dist/bench/lib/idle-clients.js', 'dist/bench/check-cost.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) {
      log(`${f} is missing: build first (npm run bench does: tsc -p . && node dist/bench/run.js)`);
      return 1;
    }
  }
  const loadBefore = loadAverage();
  const ver = await versions(ROOT);
  const mach = machine();
  // Node lifts its soft open-files limit to the hard one at start-up and every
  // child inherits it; the run uses min(hard, 20,000) for all peers alike.
  const lim = openFilesLimit();
  const nofile = Math.min(NOFILE, lim.soft);
  const maxconn = Math.floor((nofile - 1000) / 2);

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-bench-'));
  fs.chmodSync(tmpDir, 0o755); // nginx workers run as www-data/nobody and read the files under it
  const results = new Results();
  const notes: string[] = [];

  // the native engine: built or not decides --quick's and --features-column's column
  let columns = opts.peers;
  if (opts.quickPeers || opts.featuresColumn) {
    const native = await nativeStatus(ROOT, tmpDir);
    log(`native engine: ${native.ok ? 'available' : `not available (${native.reason})`}`);
    const best: TcplbPeer = native.ok ? 'tcplb-native' : 'tcplb-js2';
    if (opts.quickPeers) columns = [...columns, best];
    if (opts.featuresColumn) columns = [...columns, `${best}+f`];
    if (!native.ok) notes.push(`The native engine is not available (${native.reason}): ${[opts.quickPeers ? '--quick' : '', opts.featuresColumn ? '--features-column' : ''].filter(Boolean).join(' and ')} used tcplb-js2 instead.`);
    columns = PEERS.filter((p) => columns.includes(p));
  }
  const featureCols = columns.filter((c): c is TcplbPeer => isTcplb(c) && featuresOn({ features: opts.features }, c));
  log(
    `tcplb bench: ${opts.quick ? 'quick' : 'full'}, columns ${columns.join(', ')}, ${opts.runs} run(s), ${opts.duration} s each; ` +
      `${featuresLine(opts.features, featureCols)}; load average ${loadAverage()}`,
  );

  const cores = os.availableParallelism();
  const env: Env = {
    root: ROOT,
    tmp: tmpDir,
    listenHost: '127.0.0.1',
    backendA: '127.0.0.2',
    backendB: '127.0.0.3',
    httpPort: 0,
    iperfPort: 0,
    idlePorts: new Map(),
    nofile,
    maxconn,
    nbthread: cores,
    loadStream: which('nginx') ? await findStreamModule() : undefined,
    features: opts.features,
  };
  env.httpPort = await freePort([env.backendA, env.backendB], 8001);
  env.iperfPort = await freePort([env.backendA, env.backendB], 5201);
  if (env.httpPort !== 8001) notes.push(`127.0.0.2/.3:8001 was taken; the HTTP backend used port ${env.httpPort}.`);

  const throughputRows: RowKey[] = ['conn_rps', 'conn_p50', 'conn_p99', 'conn_cpu', 'ka_rps', 'ka_p50', 'ka_p99', 'ka_cpu', 'bulk1', 'bulk4', 'bulk4_cpu'];
  const rows = ROWS.filter((r) => !opts.quick || throughputRows.includes(r.key));
  const failAll = (col: PeerName, reason: string): void =>
    results.fail(
      rows.map((r) => r.key),
      col,
      reason,
    );

  // ---- backends
  if (!which('nginx')) {
    for (const c of columns) failAll(c, 'nginx (HTTP backend) not installed');
    return finish();
  }
  let backends: Backends;
  try {
    log(`backends: nginx HTTP on ${env.backendA}/${env.backendB}:${env.httpPort}, iperf3 on :${env.iperfPort}, idle server`);
    backends = await startBackends(
      env,
      columns.filter((c) => c !== 'direct'),
    );
  } catch (err) {
    for (const c of columns) failAll(c, `backends: ${(err as Error).message}`);
    return finish();
  }
  if (backends.iperfError) log(`iperf3 servers: ${backends.iperfError}`);

  // ---- peers
  const peers = new Map<PeerName, Peer>();
  for (const name of columns) {
    if (name === 'direct') {
      peers.set(name, directPeer(env));
      continue;
    }
    const tool = toolOf(name);
    if (tool && !which(tool)) {
      failAll(name, `${tool} not installed`);
      continue;
    }
    try {
      const p = await startPeer(env, name);
      peers.set(name, p);
      log(`${name}: up (http :${p.http.port}, bulk :${p.bulk.port}, idle :${p.idle?.port})${p.engine ? `, engine ${p.engine}` : ''}`);
      if (p.engine) notes.push(`${name} ran engine ${p.engine} (as \`tcplb --check\` reported it).`);
    } catch (err) {
      const msg = (err as Error).message;
      log(`${name}: ${err instanceof NativeUnavailable ? 'not run' : 'failed to start'}: ${msg}`);
      failAll(name, msg);
    }
  }
  const configs = new Map<PeerName, string>();
  for (const [n, p] of peers) if (p.config) configs.set(n, p.config.split(tmpDir).join('$TMP'));

  /** The peer, running; restarted once if it died; undefined (and the reason recorded) if it is gone. */
  const restarted = new Set<PeerName>();
  const dead = new Map<PeerName, string>();
  const ready = async (name: PeerName): Promise<Peer | undefined> => {
    const p = peers.get(name);
    if (!p) return undefined;
    if (dead.has(name)) return undefined;
    if (p.proc && p.proc.hasExited()) {
      const why = `exited (${await p.proc.exited})`;
      if (restarted.has(name)) {
        dead.set(name, why);
        return undefined;
      }
      restarted.add(name);
      log(`${name}: ${why}, restarting once`);
      notes.push(`${name} ${why} during the run and was restarted.`);
      try {
        await p.restart();
      } catch (err) {
        dead.set(name, `${why}; restart failed: ${(err as Error).message}`);
        return undefined;
      }
    }
    return p;
  };
  const overTime = (): boolean => Date.now() > deadline;

  // ---- warm-up (every peer alike: JIT, caches, backend keep-alive)
  if (which('wrk')) {
    for (const name of columns) {
      const p = await ready(name);
      if (!p) continue;
      await wrk(p.http, 1, false).catch(() => undefined);
      await wrk(p.http, 1, true).catch(() => undefined);
    }
  }

  // ---- throughput: for each run, each workload, each peer (order rotated per run)
  type Step = { rows: RowKey[]; what: string; tool: string; go: (p: Peer) => Promise<number[]> };
  const wrkNote = (name: string, what: string, r: WrkResult): void => {
    if (r.socketErrors + r.non2xx > 0) notes.push(`${name}, ${what}: ${r.socketErrors} socket errors and ${r.non2xx} non-2xx answers in ${r.requests} requests (under the 1% that fails a run).`);
  };
  // The proxy's own CPU (utime+stime of all its processes and threads) over a
  // measurement: the capacity per core, which a shared machine disturbs far
  // less than the rates. NaN for `direct` (no proxy): not recorded.
  const cpuSeconds = async <T>(p: Peer, work: () => Promise<T>): Promise<[T, number]> => {
    const pids = p.pids();
    const t0 = cpuTicks(pids);
    const res = await work();
    return [res, pids.length > 0 ? (cpuTicks(pids) - t0) / USER_HZ : NaN];
  };
  const steps: Step[] = [
    {
      rows: ['conn_rps', 'conn_p50', 'conn_p99', 'conn_cpu'],
      what: 'connection rate',
      tool: 'wrk',
      go: async (p) => {
        const [r, cpu] = await cpuSeconds(p, () => wrk(p.http, opts.duration, true));
        wrkNote(p.name, 'connection rate', r);
        return [r.rps, r.p50ms, r.p99ms, (cpu / r.requests) * 1e6];
      },
    },
    {
      rows: ['ka_rps', 'ka_p50', 'ka_p99', 'ka_cpu'],
      what: 'keep-alive rate',
      tool: 'wrk',
      go: async (p) => {
        const [r, cpu] = await cpuSeconds(p, () => wrk(p.http, opts.duration, false));
        wrkNote(p.name, 'keep-alive rate', r);
        return [r.rps, r.p50ms, r.p99ms, (cpu / r.requests) * 1e6];
      },
    },
    { rows: ['bulk1'], what: 'bulk 1 stream', tool: 'iperf3', go: async (p) => [await iperf(p.bulk, opts.duration, 1)] },
    {
      rows: ['bulk4', 'bulk4_cpu'],
      what: 'bulk 4 streams',
      tool: 'iperf3',
      go: async (p) => {
        const [gbps, cpu] = await cpuSeconds(p, () => iperf(p.bulk, opts.duration, 4));
        const gigabytes = (gbps * opts.duration) / 8;
        return [gbps, (cpu / gigabytes) * 1e3];
      },
    },
  ];
  for (let r = 0; r < opts.runs; r++) {
    const order = columns.map((_, i) => columns[(i + r) % columns.length]!);
    for (const step of steps) {
      for (const name of order) {
        if (!peers.has(name)) continue;
        if (!which(step.tool)) {
          results.fail(step.rows, name, `${step.tool} not installed`);
          continue;
        }
        if (step.tool === 'iperf3' && backends.iperfError) {
          results.fail(step.rows, name, `iperf3 server: ${backends.iperfError}`);
          continue;
        }
        if (overTime()) {
          results.fail(step.rows, name, 'time budget used up');
          continue;
        }
        const p = await ready(name);
        if (!p) {
          results.fail(step.rows, name, dead.get(name) ?? 'not running');
          continue;
        }
        try {
          const vals = await step.go(p);
          step.rows.forEach((k, i) => {
            if (Number.isFinite(vals[i])) results.add(k, name, vals[i]!);
            else results.notApplicable(k, name); // a CPU row of `direct`
          });
          log(`run ${r + 1}/${opts.runs} ${step.what.padEnd(15)} ${name.padEnd(14)} ${vals.map((v) => v.toFixed(v >= 100 ? 0 : 3)).join(' / ')}`);
        } catch (err) {
          let msg = (err as Error).message;
          if (p.proc?.hasExited()) msg = `${name} exited during the run (${await p.proc.exited})`;
          results.fail(step.rows, name, msg);
          log(`run ${r + 1}/${opts.runs} ${step.what.padEnd(15)} ${name.padEnd(14)} FAILED: ${msg}`);
          if (step.tool === 'iperf3') {
            // a half-finished test can leave an iperf3 server busy: start them afresh
            await backends.restartIperf().catch((e: Error) => log(`iperf3 restart failed: ${e.message}`));
          }
        }
        await sleep(500);
      }
    }
  }

  // ---- idle memory: each proxy freshly restarted, then 9,000 held connections
  if (!opts.quick) {
    for (const c of columns) if (!peers.get(c)?.idle && peers.has(c)) results.notApplicable('idle_mem', c);
    for (let r = 0; r < opts.runs; r++) {
      const order = columns.map((_, i) => columns[(i + r) % columns.length]!);
      for (const name of order) {
        const p0 = peers.get(name);
        if (!p0?.idle) continue;
        if (overTime()) {
          results.fail(['idle_mem'], name, 'time budget used up');
          continue;
        }
        if (maxconn < IDLE_CONNECTIONS) {
          results.fail(['idle_mem'], name, `open-files limit ${nofile} too low for ${IDLE_CONNECTIONS} connections (needs ~20000)`);
          continue;
        }
        try {
          if (!(await ready(name))) throw new Error(dead.get(name) ?? 'not running');
          await p0.restart();
          const m = await idleMemory(ROOT, p0, backends.idleCount);
          results.add('idle_mem', name, m.kibPerConn);
          log(`run ${r + 1}/${opts.runs} idle memory     ${name.padEnd(14)} ${m.kibPerConn.toFixed(2)} KiB/conn (RSS ${m.beforeKiB} -> ${m.afterKiB} KiB)`);
        } catch (err) {
          results.fail(['idle_mem'], name, (err as Error).message);
          log(`run ${r + 1}/${opts.runs} idle memory     ${name.padEnd(14)} FAILED: ${(err as Error).message}`);
        }
      }
    }
  }

  // ---- check cost: tcplb only, with the peers stopped (their idle CPU is no part of it)
  for (const [, p] of peers) await p.stop();
  for (const name of featureCols) {
    if (!peers.has(name)) continue;
    // the features were really on: the access log has lines
    const f = path.join(tmpDir, name.replace(/\W/g, '-'), 'access.log');
    const lines = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0;
    notes.push(`${name} (features on) wrote ${lines.toLocaleString('en-US')} access-log lines during the run.`);
  }
  // The check cost is the health checker's (it runs on the JS thread whatever the engine):
  // measured once, with tcplb-js if it is a column, else with the first tcplb engine column.
  const costCol = (['tcplb-js', ...TCPLB_ENGINES] as const).find((c) => columns.includes(c) && peers.has(c));
  if (!opts.quick && costCol) {
    const spec = TCPLB[costCol];
    for (const c of columns) if (c !== costCol) results.notApplicable('check_cost', c);
    for (let r = 0; r < opts.runs; r++) {
      if (overTime()) {
        results.fail(['check_cost'], costCol, 'time budget used up');
        continue;
      }
      try {
        const pct = await checkCost(ROOT, 1000, CHECK_COST_SECONDS, spec.engine, spec.workers, (reason) => {
          log(`check cost: ${reason}; retrying`);
          notes.push(`check cost, run ${r + 1}: ${reason} (its random port was taken; retried).`);
        });
        results.add('check_cost', costCol, pct);
        log(`run ${r + 1}/${opts.runs} check cost      ${costCol.padEnd(14)} ${pct.toFixed(1)}% of one core`);
      } catch (err) {
        const msg = (err as Error).message;
        const native = nativeUnavailable(msg);
        results.fail(['check_cost'], costCol, native !== undefined ? `native engine not built: ${native}` : msg);
        log(`run ${r + 1}/${opts.runs} check cost      ${costCol.padEnd(14)} FAILED: ${msg}`);
        if (native !== undefined) break;
      }
    }
  }
  // ---- start-up at scale: 10,000 upstreams with tcp checks, per tcplb engine column (no peer has checks)
  if (!opts.quick) {
    for (const c of columns) {
      if (!isTcplb(c) || !peers.has(c)) {
        results.notApplicable('scale_first', c);
        results.notApplicable('scale_ctl', c);
        continue;
      }
      const spec = TCPLB[c];
      for (let r = 0; r < opts.runs; r++) {
        if (overTime()) {
          results.fail(['scale_first', 'scale_ctl'], c, 'time budget used up');
          continue;
        }
        try {
          const s = await scaleStart(10_000, { engine: spec.engine, workers: spec.workers, deadlineMs: 90_000 });
          results.add('scale_first', c, s.firstClientMs);
          results.add('scale_ctl', c, s.ctlAfterMs);
          log(`run ${r + 1}/${opts.runs} 10k upstreams   ${c.padEnd(14)} first client ${s.firstClientMs.toFixed(0)} ms, ctl status ${s.ctlAfterMs.toFixed(0)} ms, all UP ${s.allUpMs.toFixed(0)} ms`);
        } catch (err) {
          results.fail(['scale_first', 'scale_ctl'], c, (err as Error).message);
          log(`run ${r + 1}/${opts.runs} 10k upstreams   ${c.padEnd(14)} FAILED: ${(err as Error).message}`);
        }
      }
    }
  }
  return finish();

  async function finish(): Promise<number> {
    await stopAll();
    removeTmp();
    const tables = buildTables(results, columns, rows);
    process.stdout.write(`\n${featuresLine(opts.features, featureCols)}\n\n${textTable(tables.main)}\n\n`);
    if (tables.ratios) process.stdout.write(`${textTable(tables.ratios)}\n\n`);
    process.stdout.write(
      'median [min-max] over the runs; ratios are tcplb column / peer on the medians (js = tcplb-js, js2 = tcplb-js2, ' +
        'native = tcplb-native, +f = features on)' +
        (tables.ratios?.header.includes('best/best') ? '; best/best: the best tcplb engine of the row over the best of the other proxies\' columns (defaults or tuned) in that row' : '') +
        '. For req/s and Gbit/s higher is better, for latency (ms), KiB/conn and % of a core lower is better ("better" column).\n',
    );
    for (const f of results.failures()) process.stdout.write(`  ${f.col} (${f.rows.join(', ')}): ${f.reason}\n`);
    const measured = rows.some((r) => columns.some((c) => results.has(r.key, c) && results.cell(r.key, c).values.length > 0));
    if (!measured) {
      log(`nothing could be measured${opts.out ? `; ${path.relative(process.cwd(), opts.out) || opts.out} left as it was` : ''}`);
      return 1;
    }
    if (opts.out) {
      writeDoc(opts.out, {
        root: ROOT,
        date: new Date(),
        command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
        quick: opts.quick,
        runs: opts.runs,
        duration: opts.duration,
        columns,
        tables,
        features: featuresLine(opts.features, featureCols),
        checkCostColumn: costCol,
        failures: results.failures(),
        notes,
        versions: ver,
        machine: mach,
        loadBefore,
        loadAfter: loadAverage(),
        elapsedS: Math.round((Date.now() - t0) / 1000),
        nofile,
        maxconn,
        nbthread: cores,
        checkCostSeconds: CHECK_COST_SECONDS,
        configs,
      });
      log(`wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
    }
    log(`done in ${Math.round((Date.now() - t0) / 1000)} s`);
    return 0;
  }
}

const CHECK_COST_SECONDS = 10;

/** The header line saying whether the tcplb columns ran with access log + checks. */
function featuresLine(all: boolean, on: readonly PeerName[]): string {
  if (all) return 'tcplb columns with access log + checks on (--features: access log to a file, tcp check every 1 s on every upstream)';
  if (on.length > 0) return `tcplb columns with features off, except ${on.join(', ')} (access log to a file + tcp check every 1 s on every upstream)`;
  return 'tcplb columns with features off (no access log, no health checks), like nginx and haproxy';
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping every process started and removing the temp dir`);
    void stopAll().finally(() => {
      removeTmp();
      process.exit(130);
    });
  });
}
process.on('exit', () => {
  killAllSync();
  removeTmp();
});

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    log(`bench failed: ${(err as Error).stack ?? String(err)}`);
    await stopAll();
    removeTmp();
    process.exit(1);
  },
);
