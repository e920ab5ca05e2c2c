/**
 * TLS termination (issue 16): full handshakes/s with an ECDSA P-256 and an
 * RSA-2048 certificate, resumed handshakes/s and bulk Gbit/s through a TLS
 * listener, tcplb (each engine) against HAProxy and nginx `stream`
 * terminating the same certificates on this machine and relaying the
 * plaintext to the same HTTP backend (an nginx serving /100b and /1m).
 *
 *   node dist/bench/tls.js [--quick] [--runs 3] [--duration 5] [--conc 4] [--columns a,b] [--out FILE | --no-write]
 *
 * Load generators (all C, all OpenSSL 3 of the system):
 * - full handshakes: `--conc` parallel `openssl s_time -new` (connect, full
 *   handshake, GET /100b, read to the close; never a session reuse);
 * - resumed: `wrk -H "Connection: close"` (a new connection per request,
 *   each resuming the previous session by its ticket);
 * - bulk: `wrk` keep-alive GETs of /1m, 1 connection, then 4.
 * The `ceiling` column is HAProxy answering the requests itself (no relay):
 * the generator's own limit on this host. Every column's server CPU per
 * operation is read from /proc (load-independent, unlike the rates on a
 * shared 2-core host).
 *
 * Runs are interleaved (each run: every workload on every column) so a
 * busy host's drift spreads over the columns; medians are printed, and on a
 * full run written to docs/benchmarks-tls.md. Loopback only; every process
 * is stopped by its PID, the temp dir removed, a watchdog bounds the run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, waitListening } from './lib/net.js';
import { findStreamModule, nativeUnavailable, render } from './lib/peers.js';
import { cpuTicks, USER_HZ, killAllSync, processTree, run, sleep, start, stop, stopAll, type Proc } from './lib/proc.js';
import { markdownTable, textTable } from './lib/report.js';
import { loadAverage, machine, openFilesLimit, versions, which } from './lib/system.js';
import {
  gbitPerSecond,
  isTcplbColumn,
  parseSClient,
  parseSTime,
  parseTimes,
  parseWrkTotals,
  renderTlsConfig,
  sTimeArgs,
  TLS_COLUMNS,
  TLS_ROWS,
  TLS_TEMPLATES,
  TlsResults,
  tlsTables,
  withTimes,
  wrkArgs,
  WRK_TOTALS_LUA,
  type TlsColumn,
  type TlsRowKey,
  type TlsVars,
} from './lib/tls-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LISTEN = '127.0.0.1';
const BACKEND_A = '127.0.0.2';
const BACKEND_B = '127.0.0.3';
const SERVERNAME = 'bench.test';
const FINDINGS = path.join(ROOT, 'bench/tls-findings.md');
const t0 = Date.now();
const log = (s: string): void => void process.stderr.write(`[tls-bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

const { values: v } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    runs: { type: 'string' },
    duration: { type: 'string' },
    conc: { type: 'string' },
    columns: { type: 'string' },
    out: { type: 'string' },
    'no-write': { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (v.help) {
  process.stdout.write(`node dist/bench/tls.js [--quick] [--runs N] [--duration S] [--conc N] [--columns ${TLS_COLUMNS.join(',')}] [--out FILE | --no-write]
  --quick     1 run of 2 s per cell (under 2 minutes), writes nothing unless --out
  --runs      runs per cell (default 3), medians reported
  --duration  seconds per measurement (default 5)
  --conc      parallel s_time clients for the full handshakes (default 4); wrk: 8 connections for resumed
`);
  process.exit(0);
}
const QUICK = v.quick ?? false;
const intOpt = (s: string | undefined, dflt: number, name: string, max: number): number => {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} ${s}: a whole number 1-${max}`);
  return n;
};
const RUNS = intOpt(v.runs, QUICK ? 1 : 3, 'runs', 20);
const SECS = intOpt(v.duration, QUICK ? 2 : 5, 'duration', 60);
const CONC = intOpt(v.conc, 4, 'conc', 64);
const COLUMNS: TlsColumn[] = v.columns
  ? v.columns.split(',').map((c) => {
      if (!(TLS_COLUMNS as readonly string[]).includes(c)) throw new Error(`--columns: unknown column ${c} (known: ${TLS_COLUMNS.join(', ')})`);
      return c as TlsColumn;
    })
  : [...TLS_COLUMNS];
const OUT = v['no-write'] ? undefined : v.out !== undefined ? path.resolve(v.out) : QUICK ? undefined : path.join(ROOT, 'docs/benchmarks-tls.md');

const template = (name: string): string => fs.readFileSync(path.join(ROOT, 'bench/configs', name), 'utf8');

let tmp: string | undefined;
const removeTmp = (): void => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
};

// ---------------------------------------------------------------- certificates

/** A throwaway CA (ECDSA P-256) and two leaves for bench.test, one ECDSA P-256, one RSA-2048; haproxy's cert+key PEMs too. */
function makeCerts(dir: string): TlsVars['certs'] & { ca: string } {
  const ossl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  };
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tcplb bench CA']);
  fs.writeFileSync(path.join(dir, 'leaf.ext'), `subjectAltName=DNS:${SERVERNAME}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  const leaf = (name: string, newkey: string[]): void => {
    ossl(['req', '-newkey', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${SERVERNAME}`]);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', 'leaf.ext']);
    fs.writeFileSync(path.join(dir, `${name}-haproxy.pem`), fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8') + fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'));
  };
  leaf('ecdsa', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  leaf('rsa', ['rsa:2048']);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644); // nginx/haproxy read them as root; throwaway keys
  const p = (f: string): string => path.join(dir, f);
  return {
    ca: p('ca.pem'),
    ecdsaCert: p('ecdsa.pem'),
    ecdsaKey: p('ecdsa.key'),
    ecdsaPem: p('ecdsa-haproxy.pem'),
    rsaCert: p('rsa.pem'),
    rsaKey: p('rsa.key'),
    rsaPem: p('rsa-haproxy.pem'),
  };
}

// ---------------------------------------------------------------- servers

function httpsGet(port: number, ca: string, pathname: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: LISTEN, port, path: pathname, ca, servername: SERVERNAME, agent: false, headers: { connection: 'close' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${pathname}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

interface Column {
  name: TlsColumn;
  proc: Proc;
  ecdsa: number;
  rsa: number;
  config: string;
  /** tcplb: what `--check` said would run. */
  engine?: string;
}

async function startColumn(name: TlsColumn, base: Omit<TlsVars, 'ecdsaPort' | 'rsaPort' | 'dir'>, ca: string): Promise<Column> {
  const dir = path.join(tmp!, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const ecdsa = await freePort([LISTEN]);
  const rsa = await freePort([LISTEN]);
  const config = renderTlsConfig(name, template(TLS_TEMPLATES[name]), { ...base, ecdsaPort: ecdsa, rsaPort: rsa, dir });
  let cmd: string;
  let args: string[];
  let check: string[];
  if (name === 'nginx') {
    const file = path.join(dir, 'nginx.conf');
    fs.writeFileSync(file, config);
    args = ['-p', dir + '/', '-c', file, '-e', path.join(dir, 'error.log')];
    cmd = 'nginx';
    check = ['-t', ...args];
  } else if (name === 'haproxy' || name === 'ceiling') {
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, config);
    cmd = 'haproxy';
    args = ['-db', '-f', file];
    check = ['-c', '-f', file];
  } else {
    const file = path.join(dir, 'config.json5');
    fs.writeFileSync(file, config);
    const main = path.join(ROOT, 'dist/src/cli/main.js');
    cmd = process.execPath;
    args = [main, '--headless', '-c', file];
    check = [main, '--check', '-c', file];
  }
  const c = await run(cmd, check, 15_000);
  const text = c.stderr + '\n' + c.stdout;
  const native = nativeUnavailable(text);
  if (native !== undefined) throw new Error(`native engine not built: ${native}`);
  if (c.code !== 0) throw new Error(`config rejected: ${text.trim().split('\n').find((l) => /ALERT|emerg|error/i.test(l)) ?? text.trim().split('\n').pop()}`);
  const engine = isTcplbColumn(name) ? c.stdout.match(/^engine:\s+would run (.*)$/m)?.[1]?.trim() : undefined;
  const proc = start(name, cmd, args);
  for (const port of [ecdsa, rsa]) {
    if (!(await waitListening(LISTEN, port, 10_000, () => proc.hasExited()))) {
      await stop(proc, 1000);
      throw new Error(`${name} not listening on ${port}: ${proc.output().trim().split('\n').pop() ?? ''}`);
    }
  }
  for (const port of [ecdsa, rsa]) {
    const r = await httpsGet(port, ca, '/100b');
    if (r.status !== 200 || r.bytes !== 100) throw new Error(`GET https://${SERVERNAME}:${port}/100b through ${name}: ${r.status}, ${r.bytes} bytes`);
  }
  if (name !== 'ceiling') {
    const r = await httpsGet(ecdsa, ca, '/1m');
    if (r.status !== 200 || r.bytes !== 1 << 20) throw new Error(`GET /1m through ${name}: ${r.status}, ${r.bytes} bytes`);
  }
  return { name, proc, ecdsa, rsa, config, ...(engine === undefined ? {} : { engine }) };
}

// ---------------------------------------------------------------- workloads

interface Measured {
  rate: number;
  /** The column's CPU (all its processes) per operation, µs (handshakes) or ms per GB (bulk). */
  cpu: number;
  /** The load generator's CPU over the measurement, in cores. */
  gen: number;
}

const cpuOf = (col: Column): number => cpuTicks(processTree(col.proc.pid));

async function fullHandshakes(col: Column, port: number): Promise<Measured> {
  const c0 = cpuOf(col);
  const runs = await Promise.all(
    Array.from({ length: CONC }, async () => {
      const t = Date.now();
      const r = await run('bash', withTimes('openssl', sTimeArgs(LISTEN, port, SECS)), (SECS + 20) * 1000);
      const wall = (Date.now() - t) / 1000;
      if (r.timedOut) throw new Error(`s_time did not finish in ${SECS + 20} s`);
      if (r.code !== 0) throw new Error(`s_time exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`);
      const s = parseSTime(r.stdout);
      if (s.bytesPerConnection < 100) throw new Error(`s_time read ${s.bytesPerConnection} bytes per connection (the response is over 100)`);
      return { n: s.connections, wall, cpu: parseTimes(r.stderr) };
    }),
  );
  const ticks = cpuOf(col) - c0;
  const n = runs.reduce((a, r) => a + r.n, 0);
  if (n === 0) throw new Error('no handshake completed');
  const wall = Math.max(...runs.map((r) => r.wall));
  return { rate: runs.reduce((a, r) => a + r.n / r.wall, 0), cpu: (ticks * 1e6) / USER_HZ / n, gen: runs.reduce((a, r) => a + r.cpu, 0) / wall };
}

async function wrkRun(col: Column, o: { threads: number; connections: number; path: string; close: boolean }): Promise<{ t: ReturnType<typeof parseWrkTotals>; ticks: number; gen: number }> {
  const script = path.join(tmp!, 'totals.lua');
  if (!fs.existsSync(script)) fs.writeFileSync(script, WRK_TOTALS_LUA);
  const c0 = cpuOf(col);
  const t0 = Date.now();
  const r = await run('bash', withTimes('wrk', wrkArgs({ ...o, seconds: SECS, url: `https://${LISTEN}:${col.ecdsa}${o.path}`, script })), (SECS + 20) * 1000);
  const ticks = cpuOf(col) - c0;
  const wall = (Date.now() - t0) / 1000;
  if (r.timedOut) throw new Error(`wrk did not finish in ${SECS + 20} s`);
  if (r.code !== 0) throw new Error(`wrk exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`);
  const t = parseWrkTotals(r.stdout);
  if (t.requests === 0) throw new Error('no request completed');
  if (t.errors + t.status > t.requests * 0.01) throw new Error(`${t.errors + t.status} errors in ${t.requests} requests`);
  return { t, ticks, gen: parseTimes(r.stderr) / wall };
}

async function resumed(col: Column): Promise<Measured> {
  const { t, ticks, gen } = await wrkRun(col, { threads: 2, connections: 8, path: '/100b', close: true });
  return { rate: t.requests / (t.durationUs / 1e6), cpu: (ticks * 1e6) / USER_HZ / t.requests, gen };
}

async function bulk(col: Column, streams: number): Promise<Measured> {
  const { t, ticks, gen } = await wrkRun(col, { threads: Math.min(streams, 2), connections: streams, path: '/1m', close: false });
  return { rate: gbitPerSecond(t), cpu: (ticks * 1000) / USER_HZ / (t.bytes / 1e9), gen };
}

/** Did the column resume a session? `tries` s_client pairs (-sess_out, then -sess_in); also the protocol and cipher. */
async function resumption(col: Column, tries: number): Promise<string> {
  let reused = 0;
  let proto = '';
  for (let i = 0; i < tries; i++) {
    const sess = path.join(tmp!, `${col.name}-${i}.sess`);
    const common = ['s_client', '-connect', `${LISTEN}:${col.ecdsa}`, '-servername', SERVERNAME, '-ign_eof'];
    const req = { stdio: ['pipe', 'pipe', 'pipe'] as const };
    const one = async (extra: string[]): Promise<ReturnType<typeof parseSClient>> => {
      const p = start(`s_client ${col.name}`, 'openssl', [...common, ...extra], req as never);
      let out = '';
      p.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      p.child.stdin?.end('GET /100b HTTP/1.0\r\n\r\n');
      const timer = setTimeout(() => void stop(p, 500), 5000);
      await p.exited;
      clearTimeout(timer);
      return parseSClient(out);
    };
    await one(['-sess_out', sess]);
    const second = await one(['-sess_in', sess]);
    if (second.reused) reused++;
    proto = `${second.protocol} ${second.cipher}`;
  }
  return `${proto}, resumed ${reused} of ${tries}`;
}

// ---------------------------------------------------------------- main

const WORK: ReadonlyArray<{ rate: TlsRowKey; cpu: TlsRowKey; gen?: TlsRowKey; ceiling: boolean; go: (c: Column) => Promise<Measured> }> = [
  { rate: 'fullEcdsa', cpu: 'cpuFullEcdsa', gen: 'genFullEcdsa', ceiling: true, go: (c) => fullHandshakes(c, c.ecdsa) },
  { rate: 'fullRsa', cpu: 'cpuFullRsa', ceiling: true, go: (c) => fullHandshakes(c, c.rsa) },
  { rate: 'resumed', cpu: 'cpuResumed', gen: 'genResumed', ceiling: true, go: resumed },
  { rate: 'bulk1', cpu: 'cpuBulk', ceiling: false, go: (c) => bulk(c, 1) },
  { rate: 'bulk4', cpu: 'cpuBulk', ceiling: false, go: (c) => bulk(c, 4) },
];

async function main(): Promise<number> {
  const budgetMs = (QUICK ? 3 : 15) * 60_000;
  const watchdog = setTimeout(() => {
    log(`hard time limit (${budgetMs / 60_000} min) reached: stopping everything`);
    killAllSync();
    removeTmp();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();
  if (process.env.TCPLB_ENGINE !== undefined) {
    log(`TCPLB_ENGINE=${process.env.TCPLB_ENGINE} ignored: each tcplb column sets its own engine`);
    delete process.env.TCPLB_ENGINE;
  }
  const missing = ['openssl', 'nginx', 'haproxy', 'wrk'].filter((b) => !which(b));
  if (missing.length > 0) {
    log(`missing: ${missing.join(', ')} (as root: bash bench/install.sh)`);
    return 1;
  }
  const loadBefore = loadAverage();
  const ver = await versions(ROOT);
  const mach = machine();
  const nofile = Math.min(20_000, openFilesLimit().soft);
  const maxconn = Math.floor((nofile - 1000) / 2);
  const nbthread = os.availableParallelism();

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-bench-tls-'));
  fs.chmodSync(tmp, 0o755);
  const certDir = path.join(tmp, 'pki');
  fs.mkdirSync(certDir, { mode: 0o755 });
  const certs = makeCerts(certDir);
  const ca = fs.readFileSync(certs.ca, 'utf8');

  // the HTTP backend every column relays to (bench/configs/nginx-backend.conf)
  const httpPort = await freePort([BACKEND_A, BACKEND_B]);
  const prefix = path.join(tmp, 'backend-nginx');
  for (const d of ['html', 'tmp']) fs.mkdirSync(path.join(prefix, d), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'html/100b'), 'x'.repeat(99) + '\n', { mode: 0o644 });
  fs.writeFileSync(path.join(prefix, 'html/1m'), Buffer.alloc(1 << 20, 'y'), { mode: 0o644 });
  const beConf = render(template('nginx-backend.conf'), { BACKEND_A, BACKEND_B, HTTP_PORT: httpPort, NOFILE: nofile, PREFIX: prefix });
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), beConf);
  const backend = start('backend nginx', 'nginx', ['-p', prefix + '/', '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log')]);
  if (!(await waitListening(BACKEND_A, httpPort, 10_000, () => backend.hasExited()))) throw new Error(`backend nginx: ${backend.output().trim().split('\n').pop()}`);

  const stream = (await findStreamModule()) ?? '# no stream module found';
  const base = { listenHost: LISTEN, backend: `${BACKEND_A}:${httpPort}`, certs, nbthread, nofile, maxconn, loadStream: stream };
  const results = new TlsResults();
  const notes: string[] = [];
  const cols: Column[] = [];
  for (const name of COLUMNS) {
    try {
      const c = await startColumn(name, base, ca);
      cols.push(c);
      const probe = await resumption(c, 4).catch((e: Error) => `probe failed: ${e.message}`);
      notes.push(`${name}${c.engine ? ` (tcplb --check: would run ${c.engine})` : ''}: ${probe}.`);
      log(`${name} up on ${c.ecdsa} (ECDSA) and ${c.rsa} (RSA): ${probe}`);
    } catch (err) {
      const msg = (err as Error).message;
      log(`${name}: n/a (${msg})`);
      notes.push(`${name}: n/a (${msg}).`);
      for (const w of WORK) results.fail(w.rate, name, msg);
    }
  }

  for (let r = 0; r < RUNS; r++) {
    for (const w of WORK) {
      for (const c of cols) {
        if (c.name === 'ceiling' && !w.ceiling) continue;
        try {
          const m = await w.go(c);
          results.add(w.rate, c.name, m.rate);
          if (w.rate !== 'bulk1') results.add(w.cpu, c.name, m.cpu); // cpuBulk: the 4-stream run
          if (w.gen) results.add(w.gen, c.name, m.gen);
          log(`run ${r + 1}/${RUNS} ${w.rate} ${c.name}: ${m.rate.toFixed(w.rate.startsWith('bulk') ? 2 : 0)} (server CPU ${m.cpu.toFixed(0)}, generator ${m.gen.toFixed(2)} cores)`);
        } catch (err) {
          results.fail(w.rate, c.name, (err as Error).message);
          log(`run ${r + 1}/${RUNS} ${w.rate} ${c.name}: failed: ${(err as Error).message}`);
        }
      }
    }
  }
  // a relaying column at the ceiling's rate was held by the generator, not by itself: its CPU rows are the comparison
  for (const row of ['fullEcdsa', 'fullRsa', 'resumed'] as const) {
    const ceil = results.median(row, 'ceiling');
    if (ceil === undefined) continue;
    const at = cols.filter((c) => c.name !== 'ceiling' && (results.median(row, c.name) ?? 0) >= 0.85 * ceil).map((c) => c.name);
    if (at.length > 0) notes.push(`${TLS_ROWS.find((x) => x.key === row)!.label}: ${at.join(', ')} reached 85% or more of the ceiling (${ceil.toFixed(0)}/s): the generator, not the server, held that rate; compare the server CPU rows.`);
  }
  for (const c of cols) if (c.proc.hasExited()) notes.push(`${c.name} exited during the run: ${c.proc.output().trim().split('\n').pop()}`);
  const loadAfter = loadAverage();
  const tables = tlsTables(results, COLUMNS);
  process.stdout.write(`\nTLS bench: ${RUNS} run(s) x ${SECS} s per cell, ${CONC} s_time clients; load average before ${loadBefore}, after ${loadAfter}; ${nbthread} cores\n\n`);
  process.stdout.write(textTable(tables.main) + '\n\n');
  if (tables.ratios) process.stdout.write(textTable(tables.ratios) + '\n\n');
  process.stdout.write(notes.map((n) => `- ${n}`).join('\n') + '\n');
  if (OUT) {
    fs.writeFileSync(
      OUT,
      renderTlsDoc({
        date: new Date(),
        command: `node dist/bench/tls.js ${process.argv.slice(2).join(' ')}`.trim(),
        runs: RUNS,
        secs: SECS,
        conc: CONC,
        loadBefore,
        loadAfter,
        main: markdownTable(tables.main),
        ratios: tables.ratios ? markdownTable(tables.ratios) : undefined,
        notes,
        versions: ver,
        machine: mach,
        configs: cols.map((c) => [c.name, c.config.replaceAll(tmp!, '$TMP')] as const),
        findings: fs.existsSync(FINDINGS) ? fs.readFileSync(FINDINGS, 'utf8').trim() + '\n' : '',
      }),
    );
    log(`wrote ${path.relative(ROOT, OUT)}`);
  }
  return 0;
}

interface DocIn {
  date: Date;
  command: string;
  runs: number;
  secs: number;
  conc: number;
  loadBefore: string;
  loadAfter: string;
  main: string;
  ratios: string | undefined;
  notes: string[];
  versions: Record<string, string>;
  machine: Record<string, string>;
  configs: ReadonlyArray<readonly [string, string]>;
  /** bench/tls-findings.md: the hand-written analysis, kept across runs. */
  findings: string;
}

/** docs/benchmarks-tls.md: the text lives here (edit here, not in the generated file). */
function renderTlsDoc(d: DocIn): string {
  const kv = (rec: Record<string, string>): string => ['| | |', '|---|---|', ...Object.entries(rec).map(([k, x]) => `| ${k} | ${x.replace(/\|/g, '\\|')} |`)].join('\n');
  return `# Benchmarks: TLS termination

<!-- Generated by \`npm run bench:tls\` (bench/tls.ts); edit the text there. -->

Issue 16's bench: a client's TLS handshake and its bytes, terminated by
tcplb (\`listeners[].tls\`, [tls.md](tls.md)) against **HAProxy** (\`bind ...
ssl crt\`) and **nginx** \`stream\` (\`listen ... ssl\`), all three with the same
certificates and relaying the plaintext to the same HTTP backend (an nginx on
${BACKEND_A} serving \`/100b\` and \`/1m\`). The layer-4 bench without TLS is
[benchmarks.md](benchmarks.md). Run it with \`npm run bench:tls\` (about 8 minutes on
2 cores; \`npm run bench:tls -- --quick\`: one 2-second run per cell, under 2 minutes, writes nothing; needs
openssl, nginx with the stream module, haproxy and wrk: \`bench/install.sh\`).

Run ${d.date.toISOString().slice(0, 16).replace('T', ' ')} UTC: \`${d.command}\`, ${d.runs} run(s) of ${d.secs} s per cell, medians
with [min-max]; load average ${d.loadBefore} before, ${d.loadAfter} after, on a host of ${d.machine.cores} shared with
other work: **the rates are noisy; the CPU rows much less so** (each column's own CPU from /proc, per operation).

## Results

${d.main}

Ratios to HAProxy (above 1.00x = better than HAProxy: rates over HAProxy's, CPU rows HAProxy's cost over the column's):

${d.ratios ?? '(HAProxy did not run)'}

- **Columns**: *ceiling* = HAProxy terminating TLS and answering each request
  itself (no relay, no backend): what the load generator reaches against a
  server that only does TLS. *haproxy* \`nbthread\` = cores; *nginx*
  \`worker_processes auto\`; *tcplb-js* \`engine: "js", workers: 1\`;
  *tcplb-js2* \`engine: "js", workers: 2\` (a relay worker per core; each
  worker terminates TLS for the connections it accepts); *tcplb-native*
  \`engine: "native", workers: "auto"\`, whatever that engine does with a TLS
  listener (what \`tcplb --check\` said is in the notes).
- **Full handshakes**: ${d.conc} \`openssl s_time -new\` clients side by side, each
  connecting, completing a full TLS 1.3 handshake (never a session reuse),
  sending \`GET /100b HTTP/1.0\` and reading to the close; the rate is the sum of
  each client's connections over its own wall time.
- **Resumed handshakes**: \`wrk -t2 -c8 -H "Connection: close"\`: a new
  connection per request, each resuming the previous session by its ticket
  (wrk keeps the session over its \`SSL_clear\`). The notes give each
  column's resumption as \`openssl s_client -sess_out\`/\`-sess_in\` saw it.
- **Bulk**: \`wrk\` keep-alive GETs of \`/1m\`, 1 connection (\`-t1 -c1\`), then
  4 (\`-t2 -c4\`); Gbit/s of the bytes received. The CPU row is the 4-stream run.
- Same TLS settings everywhere: each program's defaults (TLS 1.3, OpenSSL's
  default ciphers and key-exchange groups, session tickets on); the server sends the
  leaf only. Every cell runs ${d.secs} s; runs are interleaved
  (each run: every workload on every column).

## Notes

${d.notes.map((n) => `- ${n}`).join('\n')}

${d.findings}

## Machine and versions

${kv(d.machine)}

${kv(d.versions)}

## Configs

The templates are in [bench/configs/](../bench/configs/) (\`tls-*\`); as rendered in this run (\`$TMP\` = the run's temp dir):

${d.configs.map(([n, t]) => `<details><summary>${n}</summary>\n\n\`\`\`\n${t.trim()}\n\`\`\`\n\n</details>\n`).join('\n')}
`;
}

const onSignal = (sig: string): void => {
  log(`${sig}: stopping everything`);
  killAllSync();
  removeTmp();
  process.exit(130);
};
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

main()
  .then(async (code) => {
    await stopAll();
    removeTmp();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    await stopAll();
    removeTmp();
    process.exit(1);
  });
