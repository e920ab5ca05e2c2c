/**
 * The pure parts of the TLS bench (bench/tls.ts): its columns and rows, the
 * peer configs rendered from bench/configs/tls-*, the load generators'
 * command lines and the parsing of what they print, and the tables (medians,
 * ratios to HAProxy) and the generated docs/benchmarks-tls.md.
 */
import { median, num, type Table } from './report.js';
import { render } from './peers.js';

/** The columns: `ceiling` is HAProxy answering by itself (no relay), the others relay to the HTTP backend. */
export const TLS_COLUMNS = ['ceiling', 'haproxy', 'nginx', 'tcplb-js', 'tcplb-js2', 'tcplb-native'] as const;
export type TlsColumn = (typeof TLS_COLUMNS)[number];

export const TLS_TEMPLATES: Record<TlsColumn, string> = {
  ceiling: 'tls-ceiling.cfg',
  haproxy: 'tls-haproxy.cfg',
  nginx: 'tls-nginx.conf',
  'tcplb-js': 'tls-tcplb.json5',
  'tcplb-js2': 'tls-tcplb.json5',
  'tcplb-native': 'tls-tcplb.json5',
};

/** `engine: ..., workers: ...,` of each tcplb column (workers = cores for the multi-core ones, as nbthread and worker_processes auto). */
export const TLS_ENGINES: Record<Extract<TlsColumn, `tcplb-${string}`>, { engine: 'js' | 'native'; workers: number | 'auto' }> = {
  'tcplb-js': { engine: 'js', workers: 1 },
  'tcplb-js2': { engine: 'js', workers: 2 },
  'tcplb-native': { engine: 'native', workers: 'auto' },
};

export function isTcplbColumn(c: TlsColumn): c is keyof typeof TLS_ENGINES {
  return c in TLS_ENGINES;
}

export type TlsRowKey =
  | 'fullEcdsa'
  | 'fullRsa'
  | 'resumed'
  | 'bulk1'
  | 'bulk4'
  | 'cpuFullEcdsa'
  | 'cpuFullRsa'
  | 'cpuResumed'
  | 'cpuBulk'
  | 'genFullEcdsa'
  | 'genResumed';

export interface TlsRow {
  key: TlsRowKey;
  label: string;
  unit: string;
  /** `info`: no ratio (the load generator's own CPU). */
  better: 'higher' | 'lower' | 'info';
}

export const TLS_ROWS: readonly TlsRow[] = [
  { key: 'fullEcdsa', label: 'full handshakes, ECDSA P-256', unit: '/s', better: 'higher' },
  { key: 'fullRsa', label: 'full handshakes, RSA-2048', unit: '/s', better: 'higher' },
  { key: 'resumed', label: 'resumed handshakes (ECDSA)', unit: '/s', better: 'higher' },
  { key: 'bulk1', label: 'bulk, 1 stream', unit: 'Gbit/s', better: 'higher' },
  { key: 'bulk4', label: 'bulk, 4 streams', unit: 'Gbit/s', better: 'higher' },
  { key: 'cpuFullEcdsa', label: 'server CPU per full handshake, ECDSA', unit: 'µs', better: 'lower' },
  { key: 'cpuFullRsa', label: 'server CPU per full handshake, RSA', unit: 'µs', better: 'lower' },
  { key: 'cpuResumed', label: 'server CPU per resumed handshake', unit: 'µs', better: 'lower' },
  { key: 'cpuBulk', label: 'server CPU per GB, 4 streams', unit: 'ms', better: 'lower' },
  { key: 'genFullEcdsa', label: 'load generator CPU, full ECDSA', unit: 'cores', better: 'info' },
  { key: 'genResumed', label: 'load generator CPU, resumed', unit: 'cores', better: 'info' },
];

/** Everything a config template needs. */
export interface TlsVars {
  listenHost: string;
  ecdsaPort: number;
  rsaPort: number;
  backend: string; // host:port of the HTTP backend
  dir: string; // the column's own directory (nginx prefix)
  certs: { ecdsaCert: string; ecdsaKey: string; ecdsaPem: string; rsaCert: string; rsaKey: string; rsaPem: string };
  nbthread: number;
  nofile: number;
  maxconn: number;
  /** nginx's load_module line ('' or a comment when built in). */
  loadStream: string;
}

/** The rendered config of one column (the template's text). */
export function renderTlsConfig(column: TlsColumn, template: string, v: TlsVars): string {
  const vars: Record<string, string | number> = {
    LISTEN_HOST: v.listenHost,
    ECDSA_LISTEN: v.ecdsaPort,
    RSA_LISTEN: v.rsaPort,
    BACKEND: v.backend,
    PREFIX: v.dir,
    ECDSA_CERT: v.certs.ecdsaCert,
    ECDSA_KEY: v.certs.ecdsaKey,
    ECDSA_PEM: v.certs.ecdsaPem,
    RSA_CERT: v.certs.rsaCert,
    RSA_KEY: v.certs.rsaKey,
    RSA_PEM: v.certs.rsaPem,
    NBTHREAD: v.nbthread,
    NOFILE: v.nofile,
    MAXCONN: v.maxconn,
    LOAD_STREAM_MODULE: v.loadStream,
    BODY_HUNDRED: 'x'.repeat(100),
  };
  if (isTcplbColumn(column)) {
    const e = TLS_ENGINES[column];
    vars.ENGINE = `engine: "${e.engine}", workers: ${JSON.stringify(e.workers)},`;
  }
  return render(template, vars);
}

// ---------------------------------------------------------------- load generators

/**
 * `openssl s_time -new`: one blocking client doing connect, full handshake,
 * `GET path HTTP/1.0`, read to the close, again, for `seconds`. Never reuses
 * a session (a new SSL object each time). Several run side by side.
 */
export function sTimeArgs(host: string, port: number, seconds: number, path = '/100b'): string[] {
  return ['s_time', '-connect', `${host}:${port}`, '-new', '-time', String(seconds), '-www', path];
}

/** Connections and bytes per connection from s_time's `N connections in T real seconds, B bytes read per connection`. */
export function parseSTime(out: string): { connections: number; bytesPerConnection: number } {
  const m = out.match(/(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection/);
  if (!m) throw new Error(`unreadable s_time output: ${out.trim().split('\n').pop() ?? 'nothing'}`);
  return { connections: Number(m[1]), bytesPerConnection: Number(m[2]) };
}

/**
 * wrk's Lua `done()` hook printing exact totals (its text summary rounds
 * bytes to 2 decimals of a unit). One line, parsed by parseWrkTotals.
 */
export const WRK_TOTALS_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_TOTALS requests=%d bytes=%d duration_us=%d errors=%d status=%d\\n",
    summary.requests, summary.bytes, summary.duration, e.connect + e.read + e.write + e.timeout, e.status))
end
`;

export interface WrkTotals {
  requests: number;
  bytes: number;
  durationUs: number;
  /** connect + read + write + timeout errors. */
  errors: number;
  /** Non-2xx/3xx answers. */
  status: number;
}

export function parseWrkTotals(out: string): WrkTotals {
  const m = out.match(/WRK_TOTALS requests=(\d+) bytes=(\d+) duration_us=(\d+) errors=(\d+) status=(\d+)/);
  if (!m) throw new Error(`unreadable wrk output: ${out.trim().split('\n').pop() ?? 'nothing'}`);
  return { requests: Number(m[1]), bytes: Number(m[2]), durationUs: Number(m[3]), errors: Number(m[4]), status: Number(m[5]) };
}

/**
 * wrk over https: `close` sends `Connection: close`, so each request is a
 * new connection, and wrk resumes the previous session on it (it keeps the
 * session across its SSL_clear; HAProxy's ssl_fc_is_resumed said 5,780 of
 * 5,784 in a check): the resumed-handshake workload. Without, keep-alive:
 * the bulk workload.
 */
export function wrkArgs(o: { threads: number; connections: number; seconds: number; url: string; close: boolean; script: string }): string[] {
  const a = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', o.script];
  if (o.close) a.push('-H', 'Connection: close');
  a.push(o.url);
  return a;
}

/** Gbit/s of a wrk run (bytes are the whole responses: headers are noise next to 1 MiB bodies). */
export function gbitPerSecond(t: WrkTotals): number {
  return t.durationUs > 0 ? (t.bytes * 8) / (t.durationUs * 1000) : 0;
}

/**
 * A generator command run under `bash -c '...; times'`, so its CPU is known:
 * bash's `times` prints its own and then its children's user and system time.
 */
export function withTimes(cmd: string, args: readonly string[]): string[] {
  return ['-c', 'cmd="$1"; shift; "$cmd" "$@"; rc=$?; echo TIMES >&2; times >&2; exit $rc', 'bash', cmd, ...args];
}

/** The children's CPU seconds (user + system) from what withTimes printed on stderr. */
export function parseTimes(stderr: string): number {
  const m = stderr.match(/TIMES\n[^\n]*\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s/);
  if (!m) throw new Error(`no CPU times from the generator: ${stderr.trim().split('\n').pop() ?? 'nothing'}`);
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

/** What `openssl s_client -sess_out`/`-sess_in` said: `Reused` or `New`, protocol and cipher. */
export function parseSClient(out: string): { reused: boolean; protocol: string; cipher: string } {
  const line = out.match(/^(New|Reused), (\S+), Cipher is (\S+)/m);
  if (!line) throw new Error(`unreadable s_client output: ${out.trim().split('\n').pop() ?? 'nothing'}`);
  return { reused: line[1] === 'Reused', protocol: line[2]!, cipher: line[3]! };
}

// ---------------------------------------------------------------- tables

/** Measurements: row -> column -> values of each run, or the reason a run failed. */
export class TlsResults {
  readonly #v = new Map<string, { values: number[]; errors: string[] }>();
  #cell(row: TlsRowKey, col: TlsColumn): { values: number[]; errors: string[] } {
    const k = `${row}\0${col}`;
    let c = this.#v.get(k);
    if (!c) this.#v.set(k, (c = { values: [], errors: [] }));
    return c;
  }
  add(row: TlsRowKey, col: TlsColumn, value: number): void {
    this.#cell(row, col).values.push(value);
  }
  fail(row: TlsRowKey, col: TlsColumn, reason: string): void {
    this.#cell(row, col).errors.push(reason);
  }
  get(row: TlsRowKey, col: TlsColumn): { values: number[]; errors: string[] } | undefined {
    return this.#v.get(`${row}\0${col}`);
  }
  median(row: TlsRowKey, col: TlsColumn): number | undefined {
    const c = this.get(row, col);
    return c && c.values.length > 0 ? median(c.values) : undefined;
  }
}

function cellText(c: { values: number[]; errors: string[] } | undefined): string {
  if (!c) return '—';
  if (c.values.length === 0) return c.errors.length > 0 ? `n/a (${c.errors[0]!.slice(0, 60)})` : '—';
  let s = num(median(c.values));
  if (c.values.length > 1) s += ` [${num(Math.min(...c.values))}-${num(Math.max(...c.values))}]`;
  if (c.errors.length > 0) s += ` (${c.values.length}/${c.values.length + c.errors.length} runs)`;
  return s;
}

/**
 * The measurements (one column each, medians with [min-max]) and the ratio
 * of each relaying column to HAProxy, oriented so that > 1.00x is better than
 * HAProxy for every row (rates: col/haproxy; CPU costs: haproxy/col).
 */
export function tlsTables(r: TlsResults, columns: readonly TlsColumn[]): { main: Table; ratios: Table | undefined } {
  const main: Table = {
    header: ['workload', 'unit', 'better', ...columns],
    rows: TLS_ROWS.map((row) => [row.label, row.unit, row.better, ...columns.map((c) => cellText(r.get(row.key, c)))]),
  };
  if (!columns.includes('haproxy')) return { main, ratios: undefined };
  const others = columns.filter((c) => c !== 'haproxy' && c !== 'ceiling');
  if (others.length === 0) return { main, ratios: undefined };
  const ratios: Table = {
    header: ['workload', ...others.map((c) => `${c} vs haproxy`)],
    rows: TLS_ROWS.filter((row) => row.better !== 'info').map((row) => {
      const h = r.median(row.key, 'haproxy');
      return [
        row.label,
        ...others.map((c) => {
          const m = r.median(row.key, c);
          if (h === undefined || m === undefined || h === 0 || m === 0) return '—';
          return `${(row.better === 'higher' ? m / h : h / m).toFixed(2)}x`;
        }),
      ];
    }),
  };
  return { main, ratios };
}
