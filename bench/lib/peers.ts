/**
 * The backends every peer shares (an nginx HTTP server, two iperf3 servers,
 * the idle server) and the peers themselves (direct, nginx stream, HAProxy,
 * and tcplb with each of its data-plane engines), started from the templates
 * in bench/configs/ on loopback only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpGet, freePort, waitListening } from './net.js';
import { processTree, run, sleep, start, stop, type Proc } from './proc.js';

export const PEERS = ['direct', 'nginx', 'haproxy', 'nginx-tuned', 'haproxy-tuned', 'tcplb-js', 'tcplb-js2', 'tcplb-native', 'tcplb-js+f', 'tcplb-js2+f', 'tcplb-native+f'] as const;
export type PeerName = (typeof PEERS)[number];
export type TcplbPeer = Extract<PeerName, `tcplb-${string}`>;

/**
 * The other proxies' columns: each at its defaults (`nginx`, `haproxy`) and
 * with the settings its own documentation recommends for a TCP relay
 * (`nginx-tuned`, `haproxy-tuned`; bench/configs/*-tuned.*, bench/tuned-peers.md).
 */
export const OTHER_PROXIES = ['nginx', 'haproxy', 'nginx-tuned', 'haproxy-tuned'] as const satisfies readonly PeerName[];
export type OtherProxy = (typeof OTHER_PROXIES)[number];

export function isOtherProxy(name: PeerName): name is OtherProxy {
  return (OTHER_PROXIES as readonly PeerName[]).includes(name);
}

/** The program a peer column runs (`nginx` for nginx-tuned, ...), or undefined (direct, tcplb). */
export function toolOf(name: PeerName): 'nginx' | 'haproxy' | undefined {
  if (name === 'nginx' || name === 'nginx-tuned') return 'nginx';
  if (name === 'haproxy' || name === 'haproxy-tuned') return 'haproxy';
  return undefined;
}

/** One tcplb column: which engine it runs and whether the features (access log + checks) are forced on. */
export interface TcplbSpec {
  engine: 'js' | 'native';
  /** Relay processes (js) or threads (native); "auto" = cores, as nginx's and HAProxy's settings here. */
  workers: number | 'auto';
  /** Always on for the `+f` columns (--features-column); the others follow --features (Env.features). */
  features: boolean;
  /** Short name for ratio headers (`js`, `js2`, `native`, `native+f`). */
  short: string;
}

export const TCPLB: Record<TcplbPeer, TcplbSpec> = {
  'tcplb-js': { engine: 'js', workers: 1, features: false, short: 'js' },
  'tcplb-js2': { engine: 'js', workers: 2, features: false, short: 'js2' },
  'tcplb-native': { engine: 'native', workers: 'auto', features: false, short: 'native' },
  'tcplb-js+f': { engine: 'js', workers: 1, features: true, short: 'js+f' },
  'tcplb-js2+f': { engine: 'js', workers: 2, features: true, short: 'js2+f' },
  'tcplb-native+f': { engine: 'native', workers: 'auto', features: true, short: 'native+f' },
};

export function isTcplb(name: PeerName): name is TcplbPeer {
  return name in TCPLB;
}

/** The three engine columns (the `+f` columns are extra, --features-column). */
export const TCPLB_ENGINES = ['tcplb-js', 'tcplb-js2', 'tcplb-native'] as const satisfies readonly TcplbPeer[];

/** The features on for this column in this run? */
export function featuresOn(env: Pick<Env, 'features'>, name: TcplbPeer): boolean {
  return TCPLB[name].features || env.features;
}

/** The `engine: ..., workers: N,` fragment of the tcplb template ({{ENGINE}}). */
export function engineSetting(name: TcplbPeer): string {
  const t = TCPLB[name];
  return `engine: "${t.engine}", workers: ${JSON.stringify(t.workers)},`;
}

/** Raised when tcplb says `native engine is not available`: the column reads `n/a (native engine not built: ...)`. */
export class NativeUnavailable extends Error {}

/** The reason in tcplb's `... the native engine is not available: REASON; set engine ...` message, or undefined. */
export function nativeUnavailable(text: string): string | undefined {
  const m = text.match(/native engine is not available:?\s*([^\n]*)/);
  if (!m) return undefined;
  const reason = (m[1] ?? '').replace(/;\s*set engine to .*$/, '').trim();
  return reason.replace(/^not built\s*/, '').replace(/^\((.*)\)$/, '$1') || 'not built';
}

export interface Endpoint {
  host: string;
  port: number;
}

/** Everything the templates need; one per run. */
export interface Env {
  root: string; // the repository
  tmp: string; // the run's temp dir (removed at the end)
  listenHost: string;
  backendA: string;
  backendB: string;
  httpPort: number;
  iperfPort: number;
  /** The idle server's port for each proxy peer (its own, so checks of one never count for another). */
  idlePorts: Map<PeerName, number>;
  nofile: number;
  maxconn: number;
  nbthread: number;
  /** load_module line for nginx ('' when built in); undefined: no stream module found. */
  loadStream: string | undefined;
  /** --features: access log to a file + tcp checks on every tcplb column. */
  features: boolean;
}

export interface Peer {
  name: PeerName;
  http: Endpoint;
  bulk: Endpoint;
  /** undefined for direct (there is no proxy to measure). */
  idle: Endpoint | undefined;
  proc: Proc | undefined;
  /** The config file as rendered, for the report. */
  config: string | undefined;
  /** tcplb: what `--check` says would run (`js (engine: js)`, `js x2 workers (...)`, `native (addon loaded)`). */
  engine?: string;
  /** PIDs whose RSS is the proxy's (nginx: master + workers). */
  pids(): number[];
  /** Restart the proxy (idle memory is measured on a fresh process). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export const PEER_TEMPLATES: Record<Exclude<PeerName, 'direct'>, string> = {
  nginx: 'nginx-stream.conf',
  haproxy: 'haproxy.cfg',
  'nginx-tuned': 'nginx-tuned.conf',
  'haproxy-tuned': 'haproxy-tuned.cfg',
  'tcplb-js': 'tcplb.json5',
  'tcplb-js2': 'tcplb.json5',
  'tcplb-native': 'tcplb.json5',
  'tcplb-js+f': 'tcplb.json5',
  'tcplb-js2+f': 'tcplb.json5',
  'tcplb-native+f': 'tcplb.json5',
};

/** Fill `{{NAME}}` placeholders; a placeholder without a value is an error. */
export function render(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z][A-Z_]*)\}\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`template placeholder {{${k}}} has no value`);
    return String(v);
  });
}

export function readTemplate(env: Env, name: string): string {
  return fs.readFileSync(path.join(env.root, 'bench/configs', name), 'utf8');
}

function baseVars(env: Env): Record<string, string | number> {
  return {
    LISTEN_HOST: env.listenHost,
    BACKEND_A: env.backendA,
    BACKEND_B: env.backendB,
    HTTP_PORT: env.httpPort,
    IPERF_PORT: env.iperfPort,
    NOFILE: env.nofile,
    MAXCONN: env.maxconn,
    NBTHREAD: env.nbthread,
    MAXPIPES: maxPipes(env.nofile, env.maxconn),
  };
}

/**
 * haproxy-tuned's `maxpipes`: the descriptors left over by 2 per client
 * connection (and 200 spare), 2 per pipe. HAProxy's default, maxconn/4,
 * would not fit the run's open-files limit beside the connections; too few
 * pipes only means copying instead of splicing (HAProxy's manual, maxpipes).
 */
export function maxPipes(nofile: number, maxconn: number): number {
  return Math.max(16, Math.floor((nofile - 2 * maxconn - 200) / 2));
}

/** Why a process ended early, in one short line for the table. */
function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^\[NOTICE\]/.test(l));
  const alert = lines.find((l) => /ALERT|emerg|error/i.test(l));
  return (alert ?? lines[lines.length - 1] ?? 'no output')
    .replace(/^\[(ALERT|WARNING)\]\s+\(\d+\)\s*:\s*/, '')
    .replace(/^nginx: \[emerg\]\s*/, '')
    .replace(/^config : /, '')
    .replace(/\/\S*tcplb-bench-[^/\s]+\//g, '')
    .slice(0, 160);
}

async function waitUp(p: Proc, ep: Endpoint, what: string, timeoutMs = 10_000): Promise<void> {
  const ok = await waitListening(ep.host, ep.port, timeoutMs, () => p.hasExited());
  if (ok) return;
  if (p.hasExited()) {
    const native = nativeUnavailable(p.output());
    if (native !== undefined) throw new NativeUnavailable(`native engine not built: ${native}`);
    throw new Error(`${what} exited: ${lastLine(p.output())}`);
  }
  await stop(p, 1000);
  throw new Error(`${what} not listening on ${ep.host}:${ep.port} after ${timeoutMs / 1000} s`);
}

// ---------------------------------------------------------------- backends

export interface Backends {
  nginx: Proc;
  iperf: Proc[];
  idle: Proc;
  /** Why the iperf3 servers are not there (bulk rows n/a), or undefined. */
  iperfError: string | undefined;
  /** Connections open now at the idle server's port for `peer`. */
  idleCount(peer: PeerName): Promise<number>;
  restartIperf(): Promise<void>;
}

/**
 * Write the backend files, start the HTTP nginx, the iperf3 servers and the
 * idle server (one port for each of `idlePeers`, recorded in env.idlePorts).
 */
export async function startBackends(env: Env, idlePeers: readonly PeerName[]): Promise<Backends> {
  const prefix = path.join(env.tmp, 'backend-nginx');
  for (const d of ['html', 'tmp']) fs.mkdirSync(path.join(prefix, d), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'html/100b'), 'x'.repeat(99) + '\n', { mode: 0o644 });
  fs.writeFileSync(path.join(prefix, 'html/1m'), Buffer.alloc(1 << 20, 'y'), { mode: 0o644 });
  const conf = render(readTemplate(env, 'nginx-backend.conf'), { ...baseVars(env), PREFIX: prefix });
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const nginx = start('backend nginx', 'nginx', ['-p', prefix + '/', '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log')]);
  await waitUp(nginx, { host: env.backendA, port: env.httpPort }, 'backend nginx');
  for (const [host, file, size] of [
    [env.backendA, '/100b', 100],
    [env.backendB, '/1m', 1 << 20],
  ] as const) {
    const r = await httpGet(host, env.httpPort, file);
    if (r.status !== 200 || r.bytes !== size) throw new Error(`backend nginx: GET ${host}${file} gave ${r.status}, ${r.bytes} bytes`);
  }

  const iperf: Proc[] = [];
  const startIperf = async (): Promise<void> => {
    iperf.length = 0;
    for (const host of [env.backendA, env.backendB]) {
      const p = start(`iperf3 ${host}`, 'iperf3', ['-s', '-B', host, '-p', String(env.iperfPort), '--forceflush']);
      iperf.push(p);
    }
    // iperf3 -s treats any connection as a control connection; wait on the log line, not a connect.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !iperf.every((p) => /Server listening/.test(p.output()) || p.hasExited())) await sleep(50);
    const bad = iperf.find((p) => p.hasExited() || !/Server listening/.test(p.output()));
    if (bad) throw new Error(`${bad.name}: ${lastLine(bad.output())}`);
  };
  let iperfError: string | undefined;
  try {
    await startIperf();
  } catch (err) {
    iperfError = (err as Error).message;
  }

  const idleScript = path.join(env.root, 'dist/bench/lib/idle-server.js');
  const idle = start('idle server', process.execPath, [idleScript, env.backendA, String(Math.max(1, idlePeers.length))], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const ports = await new Promise<number[]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('idle server: no answer in 5 s')), 5000);
    idle.child.on('message', (m: { listening?: number[]; error?: string }) => {
      if (m.listening !== undefined) {
        clearTimeout(t);
        resolve(m.listening);
      }
      if (m.error !== undefined) {
        clearTimeout(t);
        reject(new Error(`idle server: ${m.error}`));
      }
    });
    void idle.exited.then(() => reject(new Error(`idle server exited: ${lastLine(idle.output())}`)));
  });
  idlePeers.forEach((p, i) => env.idlePorts.set(p, ports[i]!)); // the proxies' templates are rendered after this

  const idleCount = (peer: PeerName): Promise<number> =>
    new Promise((resolve, reject) => {
      const port = env.idlePorts.get(peer);
      if (port === undefined) return reject(new Error(`no idle port for ${peer}`));
      const t = setTimeout(() => reject(new Error('idle server: no count in 2 s')), 2000);
      const on = (m: { port?: number; count?: number }): void => {
        if (m.port !== port || m.count === undefined) return;
        clearTimeout(t);
        idle.child.off('message', on);
        resolve(m.count);
      };
      idle.child.on('message', on);
      idle.child.send({ count: port });
    });

  return {
    nginx,
    iperf,
    idle,
    get iperfError() {
      return iperfError;
    },
    idleCount,
    restartIperf: async () => {
      for (const p of iperf) await stop(p, 1000);
      try {
        await startIperf();
        iperfError = undefined;
      } catch (err) {
        iperfError = (err as Error).message;
        throw err;
      }
    },
  };
}

// ---------------------------------------------------------------- peers

export function directPeer(env: Env): Peer {
  return {
    name: 'direct',
    http: { host: env.backendA, port: env.httpPort },
    bulk: { host: env.backendA, port: env.iperfPort },
    idle: undefined,
    proc: undefined,
    config: undefined,
    pids: () => [],
    restart: async () => {},
    stop: async () => {},
  };
}

interface Launch {
  cmd: string;
  args: string[];
  config: string;
  /** Validate the config first (haproxy -c), for a clear error. */
  check?: { cmd: string; args: string[] };
}

/** Build the command line and config of one proxy peer. */
function launch(env: Env, name: Exclude<PeerName, 'direct'>, ports: { http: number; bulk: number; idle: number }): Launch {
  const dir = path.join(env.tmp, name.replace(/\W/g, '-'));
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const idlePort = env.idlePorts.get(name);
  if (idlePort === undefined) throw new Error(`no idle-server port for ${name}`);
  const vars = {
    ...baseVars(env),
    HTTP_LISTEN: ports.http,
    BULK_LISTEN: ports.bulk,
    IDLE_LISTEN: ports.idle,
    IDLE_BACKEND: `${env.backendA}:${idlePort}`,
    PREFIX: dir,
  };
  const template = readTemplate(env, PEER_TEMPLATES[name]);
  const tool = toolOf(name);
  if (tool === 'nginx') {
    if (env.loadStream === undefined) throw new Error('nginx stream module not installed (libnginx-mod-stream)');
    const config = render(template, { ...vars, LOAD_STREAM_MODULE: env.loadStream });
    const file = path.join(dir, 'nginx.conf');
    fs.writeFileSync(file, config);
    const args = ['-p', dir + '/', '-c', file, '-e', path.join(dir, 'error.log')];
    return { cmd: 'nginx', args, config, check: { cmd: 'nginx', args: ['-t', ...args] } };
  }
  if (tool === 'haproxy') {
    const config = render(template, vars);
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, config);
    return { cmd: 'haproxy', args: ['-db', '-f', file], config, check: { cmd: 'haproxy', args: ['-c', '-f', file] } };
  }
  if (!isTcplb(name)) throw new Error(`no launcher for peer ${name}`);
  const features = featuresOn(env, name);
  const config = render(template, {
    ...vars,
    ENGINE: engineSetting(name),
    ACCESS_LOG: features ? JSON.stringify(path.join(dir, 'access.log')) : 'null',
    CHECK: features ? 'check: { type: "tcp", interval: "1s", timeout: "1s", rise: 2, fall: 3 },' : '// no active check',
  });
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, config);
  const main = path.join(env.root, 'dist/src/cli/main.js');
  return {
    cmd: process.execPath,
    args: [main, '--headless', '-c', file],
    config,
    check: { cmd: process.execPath, args: [main, '--check', '-c', file] },
  };
}

/**
 * Is the native engine there? Asks tcplb itself (`--check` of a minimal
 * config with `engine: "native"`), so a build that exists but does not load
 * counts as missing too.
 */
export async function nativeStatus(root: string, tmp: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const file = path.join(tmp, 'native-probe.json5');
  fs.writeFileSync(
    file,
    JSON.stringify({ engine: 'native', listeners: [{ listen: '127.0.0.1:1', upstream: 'u' }], upstreams: { u: { servers: ['127.0.0.2:1'] } }, log: { access: null } }),
  );
  const c = await run(process.execPath, [path.join(root, 'dist/src/cli/main.js'), '--check', '-c', file], 15_000);
  fs.rmSync(file, { force: true });
  const text = c.stderr + '\n' + c.stdout;
  const native = nativeUnavailable(text);
  if (native !== undefined) return { ok: false, reason: native };
  if (c.code !== 0) return { ok: false, reason: `tcplb --check: ${lastLine(text)}` };
  if (!/^engine:\s+would run native\b/m.test(c.stdout)) return { ok: false, reason: `tcplb --check: ${c.stdout.match(/^engine:.*$/m)?.[0] ?? 'no engine line'}` };
  return { ok: true };
}

/** Start one proxy peer and check its HTTP path end to end (/100b and /1m). Throws with a short reason. */
export async function startPeer(env: Env, name: Exclude<PeerName, 'direct'>): Promise<Peer> {
  const ports = {
    http: await freePort([env.listenHost]),
    bulk: await freePort([env.listenHost]),
    idle: await freePort([env.listenHost]),
  };
  const l = launch(env, name, ports);
  let engine: string | undefined;
  if (l.check) {
    const c = await run(l.check.cmd, l.check.args, 15_000);
    const text = c.stderr + '\n' + c.stdout;
    const native = nativeUnavailable(text);
    if (native !== undefined) throw new NativeUnavailable(`native engine not built: ${native}`);
    if (c.code !== 0) throw new Error(`config rejected: ${lastLine(text)}`);
    if (isTcplb(name)) {
      // the column must run the engine it is named after (TCPLB_ENGINE would override the config)
      engine = c.stdout.match(/^engine:\s+would run (.*)$/m)?.[1]?.trim();
      const t = TCPLB[name];
      const want = t.engine === 'native' ? /^native\b/ : t.workers !== 1 ? new RegExp(`^js x${t.workers} workers\\b`) : /^js \(/;
      if (engine === undefined) throw new Error('tcplb --check printed no `engine:` line');
      if (!want.test(engine)) throw new Error(`would run ${engine}, not the column's engine`);
    }
  }
  const http = { host: env.listenHost, port: ports.http };
  let proc: Proc | undefined;
  const boot = async (): Promise<void> => {
    proc = start(name, l.cmd, l.args);
    await waitUp(proc, http, name);
    await waitUp(proc, { host: env.listenHost, port: ports.idle }, name);
    // first round of active checks (features) and a working path end to end
    let last = '';
    const deadline = Date.now() + 8000;
    for (;;) {
      try {
        const a = await httpGet(http.host, http.port, '/100b');
        const b = await httpGet(http.host, http.port, '/1m');
        if (a.status === 200 && a.bytes === 100 && b.status === 200 && b.bytes === 1 << 20) break;
        last = `GET through ${name}: ${a.status}/${a.bytes} B, ${b.status}/${b.bytes} B`;
      } catch (err) {
        last = `GET through ${name}: ${(err as Error).message}`;
      }
      if (Date.now() > deadline || proc.hasExited()) {
        await stop(proc, 1000);
        const native = nativeUnavailable(proc.output());
        if (native !== undefined) throw new NativeUnavailable(`native engine not built: ${native}`);
        throw new Error(proc.hasExited() && !/GET/.test(last) ? `${name} exited: ${lastLine(proc.output())}` : last);
      }
      await sleep(300);
    }
  };
  await boot();
  return {
    name,
    http,
    bulk: { host: env.listenHost, port: ports.bulk },
    idle: { host: env.listenHost, port: ports.idle },
    get proc() {
      return proc;
    },
    config: l.config,
    engine,
    pids: () => (proc && !proc.hasExited() ? processTree(proc.pid) : []),
    restart: async () => {
      if (proc) await stop(proc, 5000);
      await boot();
    },
    stop: async () => {
      if (proc) await stop(proc, 5000);
    },
  };
}

/** The nginx stream module: a load_module line (dynamic), '' (built in) or undefined (missing). */
export async function findStreamModule(): Promise<string | undefined> {
  const v = await run('nginx', ['-V'], 5000);
  const text = v.stderr + v.stdout;
  if (/--with-stream(\s|$)/.test(text)) return '# stream module built in';
  for (const f of ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so', '/usr/lib64/nginx/modules/ngx_stream_module.so']) {
    if (fs.existsSync(f)) return `load_module ${f};`;
  }
  return undefined;
}

export { freePort };
