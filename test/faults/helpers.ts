/**
 * Shared plumbing for the fault-injection suite (test/faults): loopback
 * addresses of its own (127.0.0.50-69), temp config folders, the proxy run as
 * a real child process (optionally under `ulimit -n`), small Node child
 * processes playing backends and client crowds, /proc readings (RSS, fds,
 * CPU) and a seeded random generator so every run can be replayed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { listen, namedEcho, reservePort } from '../helpers/net.js';

/** The suite's loopback addresses: 127.0.0.50 to 127.0.0.69, nothing else. */
export function lo(n: number): string {
  if (!Number.isInteger(n) || n < 50 || n > 69) throw new Error(`faults suite uses 127.0.0.50-69 only (asked for .${n})`);
  return `127.0.0.${n}`;
}

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder for one test's config, socket and state files; removed when the test file's process exits. */
export function tmpDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `tcplb-faults-${tag}-`));
  made.push(d);
  return d;
}

/** Write `text` as `dir/config.json5`; returns the path. */
export function writeConfig(dir: string, text: string, name = 'config.json5'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** For time that is part of a scenario only; to wait for something, use waitFor (../helpers/wait.ts). */
export { sleep } from '../helpers/wait.js';

/** A sleep that does not keep the process alive: for the losing side of a Promise.race. */
export const deadline = (ms: number): Promise<undefined> => new Promise((r) => setTimeout(() => r(undefined), ms).unref());

/** A seeded PRNG (mulberry32): the same seed replays the same run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for this run: FAULTS_SEED from the environment, or a fresh one (printed by the tests). */
export function seedFromEnv(): number {
  const s = Number(process.env.FAULTS_SEED);
  return Number.isInteger(s) && s > 0 ? s : (Date.now() % 1_000_000_007) + 1;
}

/* ------------------------------------------------------------------ /proc */

/** VmRSS and VmHWM (peak) of a process, in MiB; 0 when it is gone. */
export function memOf(pid: number): { rss: number; hwm: number } {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Open descriptors of a process (0 when it is gone). */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Direct children of `pid` (relay workers of a proxy run with `workers` > 1). */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** RSS (MB) summed over a process and its children, and the largest descriptor count among them. */
export function treeUsage(pid: number): { rss: number; maxFds: number; fds: number[] } {
  const pids = [pid, ...childPids(pid)];
  const fds = pids.map(fdCount);
  return { rss: pids.reduce((n, p) => n + memOf(p).rss, 0), maxFds: Math.max(...fds), fds };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the peak. */
export class RssSampler {
  peak = 0;
  first = 0;
  samples = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(readonly pid: number, everyMs = 100) {
    this.first = this.#take();
    this.#timer = setInterval(() => this.#take(), everyMs);
    this.#timer.unref();
  }
  #take(): number {
    const { rss } = memOf(this.pid);
    this.samples++;
    if (rss > this.peak) this.peak = rss;
    return rss;
  }
  stop(): number {
    clearInterval(this.#timer);
    this.#take();
    return this.peak;
  }
}

/* ----------------------------------------------------------- proxy child */

/** The real `tcplb-console --headless` as a child process. */
export interface ProxyChild {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (if still running) and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Start the built binary on `configFile` and wait for its "serving" line.
 * `nofile` runs it under `ulimit -n N` (bash, then exec: the pid is node's).
 */
export async function startProxy(configFile: string, opts: { nofile?: number; readyTimeoutMs?: number; ready?: RegExp } = {}): Promise<ProxyChild> {
  const args = [BIN, '--headless', '-c', configFile];
  const child =
    opts.nofile === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('bash', ['-c', `ulimit -n ${opts.nofile} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    // Bounded: an access log to stdout must not grow the test's memory without end.
    if (out.length < 4 * 1024 * 1024) out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 4 * 1024 * 1024) err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  const ready = opts.ready ?? /serving/;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`proxy not ready within ${opts.readyTimeoutMs ?? 10000} ms; stderr:\n${err}`)), opts.readyTimeoutMs ?? 10000);
    const onData = (): void => {
      if (ready.test(err)) {
        clearTimeout(t);
        child.stderr!.off('data', onData);
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    void exited.then((e) => {
      clearTimeout(t);
      reject(new Error(`proxy exited (${e.code ?? e.signal}) before ready; stderr:\n${err}`));
    });
  });
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/* ------------------------------------------------------- Node children */

/**
 * A pseudo-random block (an LCG) that backends repeat to make a stream whose
 * every byte is known: stream[i] = block[i % block.length]. Serialised into
 * the child scripts with Function.prototype.toString, so both sides share it.
 */
export function patternBlock(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A prime block size, so a lost or duplicated chunk shifts the pattern and shows. */
export const PATTERN_SIZE = 65521;

/** Does `chunk` equal the pattern stream from `offset` on? */
export function matchesPattern(block: Buffer, offset: number, chunk: Buffer): boolean {
  let pos = offset % block.length;
  let i = 0;
  while (i < chunk.length) {
    const n = Math.min(block.length - pos, chunk.length - i);
    if (block.compare(chunk, i, i + n, pos, pos + n) !== 0) return false;
    i += n;
    pos = 0;
  }
  return true;
}

/**
 * The backend child: `node -e BACKEND_SCRIPT MODE HOST [ARGS]` listens on
 * HOST:0, prints `{"ready":true,"port":N}`, and answers `report` on stdin with
 * one JSON line. Modes:
 * - `stream BYTES`: send the pattern stream, BYTES per connection, honouring
 *   back-pressure, then end. Report: per-connection bytes written, and the
 *   first byte each client sent (`kinds`), so a test can tell its clients apart.
 * - `idle`: write one byte ("g") per connection and hold it open.
 * - `flood KIND`: endless/slow/noise greetings for probes (KIND: `endless`
 *   (no newline, ever), `lines` (`220-x\r\n` forever), `slow` (one byte of
 *   `* OK ...` per second), `noise` (binary)), honouring back-pressure.
 * - `greet`: write `hello\n`, then echo.
 */
const BACKEND_SCRIPT = `
import net from 'node:net';
${patternBlock.toString()}
const [mode, host, arg] = process.argv.slice(1);
const block = patternBlock(${0x5eed}, ${PATTERN_SIZE});
const written = [];
const kinds = [];
let conns = 0;
const socks = new Set();
const server = net.createServer({ noDelay: true }, (s) => {
  conns++;
  socks.add(s);
  s.on('close', () => socks.delete(s));
  s.on('error', () => {});
  const idx = written.length;
  written.push(0);
  kinds.push('');
  // A client may name itself with its first byte (e.g. S = slow reader, for the report).
  s.once('data', (d) => { kinds[idx] = String.fromCharCode(d[0]); });
  if (mode === 'stream') {
    const limit = Number(arg);
    let off = 0;
    const pump = () => {
      while (off < limit && !s.destroyed) {
        const pos = off % block.length;
        const n = Math.min(block.length - pos, limit - off);
        off += n;
        written[idx] = off;
        if (!s.write(block.subarray(pos, pos + n))) return void s.once('drain', pump);
      }
      if (off >= limit) s.end();
    };
    s.resume();
    pump();
  } else if (mode === 'idle') {
    s.write('g');
    s.resume();
  } else if (mode === 'greet') {
    s.write('hello\\n');
    s.pipe(s);
  } else if (mode === 'flood') {
    s.resume();
    if (arg === 'slow') {
      const text = '* OK slow greeting\\r\\n';
      let i = 0;
      const t = setInterval(() => { if (s.destroyed || i >= text.length) return clearInterval(t); s.write(text[i++]); }, 1000);
      s.on('close', () => clearInterval(t));
      return;
    }
    const chunk = arg === 'lines' ? Buffer.from('220-x\\r\\n'.repeat(8192)) : arg === 'noise' ? patternBlock(7, 65536) : Buffer.alloc(65536, 'a');
    const pump = () => { while (!s.destroyed) { written[idx] += chunk.length; if (!s.write(chunk)) return void s.once('drain', pump); } };
    pump();
  }
});
server.on('error', (e) => { console.error(e.message); process.exit(1); });
server.listen({ host, port: 0, backlog: 4096 }, () => {
  process.stdout.write(JSON.stringify({ ready: true, port: server.address().port }) + '\\n');
});
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const cmd = buf.slice(0, i).trim();
    buf = buf.slice(i + 1);
    if (cmd === 'report') process.stdout.write(JSON.stringify({ conns, open: socks.size, written, kinds }) + '\\n');
    if (cmd === 'exit') process.exit(0);
  }
});
process.stdin.on('end', () => process.exit(0));
`;

/**
 * The client-crowd child: `node -e CLIENTS_SCRIPT HOST PORT COUNT LOCAL CONC`
 * opens COUNT connections (at most CONC connecting at once) from LOCAL, each
 * waiting for its first byte; prints `{"done":true,...}` when all have greeted
 * or failed, and holds them until `exit` (or stdin's end).
 */
const CLIENTS_SCRIPT = `
import net from 'node:net';
const [host, port, count, local, conc] = process.argv.slice(1);
const N = Number(count), C = Number(conc);
let started = 0, pending = 0, greeted = 0, failed = 0;
const errors = {};
const socks = [];
const t0 = Date.now();
function one() {
  started++; pending++;
  const s = net.connect({ host, port: Number(port), localAddress: local });
  socks.push(s);
  let settled = false;
  const settle = (ok, why) => {
    if (settled) return;
    settled = true; pending--;
    if (ok) greeted++; else { failed++; errors[why] = (errors[why] || 0) + 1; }
    next();
  };
  s.once('data', () => settle(true));
  s.on('error', (e) => settle(false, e.code || e.message));
  s.on('close', () => settle(false, 'closed'));
}
function next() {
  while (started < N && pending < C) one();
  if (started === N && pending === 0) {
    process.stdout.write(JSON.stringify({ done: true, greeted, failed, errors, ms: Date.now() - t0 }) + '\\n');
  }
}
next();
process.stdin.on('data', (d) => { if (String(d).includes('exit')) { for (const s of socks) s.destroy(); process.exit(0); } });
process.stdin.on('end', () => process.exit(0));
`;

/**
 * The connection-flood child: `node -e FLOOD_SCRIPT HOST PORT COUNT LOCAL MS`
 * keeps COUNT connections from LOCAL going for MS: each one that closes is
 * reopened at once. Prints `{"ready":true}` once all are launched and
 * `{"done":true,opened,refused,maxLive}` at the end (a connection counts as
 * served once it received a byte, as refused if it closed before).
 */
const FLOOD_SCRIPT = `
import net from 'node:net';
const [host, port, count, local, ms] = process.argv.slice(1);
let stop = false, opened = 0, refused = 0, live = 0, maxLive = 0;
const socks = new Set();
function one() {
  if (stop) return;
  const s = net.connect({ host, port: Number(port), localAddress: local });
  opened++;
  socks.add(s);
  let served = false;
  s.on('error', () => {});
  s.once('data', () => { served = true; live++; if (live > maxLive) maxLive = live; });
  s.once('close', () => { socks.delete(s); if (served) live--; else refused++; setImmediate(one); });
}
for (let i = 0; i < Number(count); i++) one();
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
setTimeout(() => {
  stop = true;
  for (const s of socks) s.destroy();
  process.stdout.write(JSON.stringify({ done: true, opened, refused, maxLive }) + '\\n');
  setTimeout(() => process.exit(0), 50);
}, Number(ms));
`;

/** Start a connection flood (see FLOOD_SCRIPT); resolves once every connection is launched. */
export async function startFlood(host: string, port: number, count: number, local: string, ms: number): Promise<NodeChild> {
  const c = nodeChild(FLOOD_SCRIPT, [host, String(port), String(count), local, String(ms)]);
  await c.next((m) => m.ready === true, 10000);
  return c;
}

/** A Node child speaking JSON lines on stdout; `next()` waits for the next line matching `pred`. */
export interface NodeChild {
  readonly child: ChildProcess;
  readonly pid: number;
  next<T = Record<string, unknown>>(pred?: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  send(line: string): void;
  kill(sig?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<void>;
  stderr(): string;
}

/** Calls `onMessage` for every line of `stream` that parses as a JSON object (other lines are ignored). */
export function onJsonLines(stream: NodeJS.ReadableStream, onMessage: (m: Record<string, unknown>) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      if (m !== null && typeof m === 'object') onMessage(m as Record<string, unknown>);
    }
  });
}

export function nodeChild(script: string, args: string[]): NodeChild {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const queue: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 65536) err += d.toString();
  });
  child.stdin!.on('error', () => {});
  onJsonLines(child.stdout!, (m) => {
    const w = waiters.findIndex((x) => x.pred(m));
    if (w >= 0) waiters.splice(w, 1)[0]!.resolve(m);
    else queue.push(m);
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return {
    child,
    pid: child.pid!,
    exited,
    stderr: () => err,
    next<T>(pred: (m: Record<string, unknown>) => boolean = () => true, timeoutMs = 30000): Promise<T> {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child ${child.pid}: no message within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
        const onExit = (): void => reject(new Error(`child ${child.pid} exited; stderr: ${err}`));
        void exited.then(onExit);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m as T);
          },
        });
      });
    },
    send(line: string) {
      if (child.stdin!.writable) child.stdin!.write(line + '\n');
    },
    async kill(sig: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      await exited;
    },
  };
}

/** A backend child (see BACKEND_SCRIPT); resolves once it listens, with its port. */
export async function startBackend(mode: 'stream' | 'idle' | 'flood' | 'greet', host: string, arg = ''): Promise<NodeChild & { port: number }> {
  const c = nodeChild(BACKEND_SCRIPT, [mode, host, arg]);
  const m = await c.next<{ port: number }>((x) => x.ready === true, 10000);
  return Object.assign(c, { port: m.port });
}

/** Ask a backend child for its counters. */
export function backendReport(c: NodeChild): Promise<{ conns: number; open: number; written: number[]; kinds: string[] }> {
  const p = c.next<{ conns: number; open: number; written: number[]; kinds: string[] }>((m) => Array.isArray(m.written), 10000);
  c.send('report');
  return p;
}

/** A client-crowd child (see CLIENTS_SCRIPT). */
export function startClients(host: string, port: number, count: number, local: string, concurrency: number): NodeChild {
  return nodeChild(CLIENTS_SCRIPT, [host, String(port), String(count), local, String(concurrency)]);
}

/* ------------------------------------------------------------- sockets */

/** Connect to host:port and wait for a greeting starting with `hello`; true when greeted within `ms`. */
export function greeted(port: number, host: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => finish(false), ms);
    function finish(ok: boolean): void {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    }
    s.once('data', (d: Buffer) => finish(d.toString().startsWith('hello')));
    s.once('error', () => finish(false));
    s.once('close', () => finish(false));
  });
}

/** Connect from `localAddress`; resolves with the socket once connected (rejects on error). */
export function dial(port: number, host: string, localAddress?: string, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, localAddress, allowHalfOpen: true });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** How a socket ended: resolves on 'close' with the time, the error (if any), and the bytes read. */
export function watchEnd(s: net.Socket): Promise<{ at: number; error?: NodeJS.ErrnoException; bytes: number; sawEnd: boolean }> {
  return new Promise((resolve) => {
    let error: NodeJS.ErrnoException | undefined;
    let bytes = 0;
    let sawEnd = false;
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e));
    s.on('end', () => {
      sawEnd = true;
      s.end();
    });
    s.on('close', () => resolve({ at: Date.now(), error, bytes, sawEnd }));
  });
}

/**
 * An in-process TCP server on `host` that counts and tracks what it accepted;
 * `close()` destroys every accepted socket and stops listening. Not
 * half-open by default: a client's FIN ends the server's side too.
 */
export async function listenOn(
  host: string,
  onConn: (s: net.Socket) => void,
  port = 0,
  opts: { allowHalfOpen?: boolean } = {},
): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket>; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r, j) => server.once('error', j).listen({ port, host, backlog: 4096 }, () => r()));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    sockets,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** MiB with one decimal. */
export const mb = (n: number): string => `${n.toFixed(1)} MB`;

/** Kernel memory held by TCP sockets (all processes), from /proc/net/sockstat, in MiB. */
export function tcpMemMB(): number {
  try {
    const pages = Number(/^TCP:.*\bmem (\d+)/m.exec(fs.readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? 0);
    return (pages * 4096) / 1048576;
  } catch {
    return 0;
  }
}

/* -------------------------------------------------- config mutator (fuzz) */

/** A 10 MB string replaces a string value in every this many cases of configMutant (4 in 10,000). */
export const BIG_EVERY = 2500;


const PALETTE = ['{', '}', '[', ']', ':', ',', '"', "'", '\n', '/', '*', '\\', ' ', '0', '9', '-', '.', 'e', 'x', 'a', 'Z', '_', '\t', '\r', '\u0000', '\u00e9', '\u2028', '\ufeff', '\ud83d\ude00', '\ud800', '`'];
const HUGE = ['1e309', '-1e309', '99999999999999999999999999', '1.7976931348623157e308', '-0', '0x7fffffff', 'NaN', 'Infinity', '-Infinity', '4294967296', '9007199254740993', '.5', '5.', '1e-400', '+1', '0.0000001', '1e21', '-1', '10000001'];
const VALUES = ['true', 'false', 'null', '[]', '{}', '""', '"x"', '0', '-1', '"5s"', '[1,2]', '{a:1}', '"0.0.0.0:0"', '"[::1]:1"', '"127.0.0.1:99999"', "'single'", '"\\u0000"', '"../../etc/passwd"'];
const KEYS = ['"ключ"', 'ü', '"\\u0000"', '"\ud83d\ude00"', '"a b"', "'q'", '"__proto__"', 'constructor', '"toString"', '"listeners"', 'wieght', '"\u2028"', '"\ud800"', '$x', '_'];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const at = (r: Rand, text: string): number => Math.floor(r() * (text.length + 1));

/** Spans of values in the text: numbers, string literals, booleans (rough, regex-based: that is the point). */
function valueSpans(text: string): [number, number][] {
  const out: [number, number][] = [];
  // Unrolled string pattern: a plain class loop, so a 10 MB literal does not overflow the regexp stack.
  const re = /(?<=[:\[,]\s*)(-?\d[\d.e+-]*|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|true|false|null)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push([m.index, m.index + m[0].length]);
  return out;
}

function nest(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{a:'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** One mutation of `text`; returns the new text and what was done. */
function mutateOnce(r: Rand, text: string): [string, string] {
  const k = Math.floor(r() * 10);
  switch (k) {
    case 0: {
      const i = at(r, text);
      const n = 1 + Math.floor(r() * 5);
      return [text.slice(0, i) + text.slice(i + n), `delete ${n}@${i}`];
    }
    case 1: {
      const i = at(r, text);
      const s = Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(r, PALETTE)).join('');
      return [text.slice(0, i) + s + text.slice(i), `insert ${JSON.stringify(s)}@${i}`];
    }
    case 2: {
      const spans = valueSpans(text);
      if (spans.length === 0) return [text, 'swap (none)'];
      const [a, b] = pick(r, spans);
      const v = pick(r, VALUES);
      return [text.slice(0, a) + v + text.slice(b), `swap ${text.slice(a, b).slice(0, 20)}->${v}`];
    }
    case 3: {
      const spans = valueSpans(text).filter(([a, b]) => /^-?\d/.test(text.slice(a, b)));
      const v = pick(r, HUGE);
      if (spans.length === 0) return [text, 'huge (none)'];
      const [a, b] = pick(r, spans);
      return [text.slice(0, a) + v + text.slice(b), `huge ${v}`];
    }
    case 4: {
      const spans = valueSpans(text);
      if (spans.length === 0) return [text, 'nest (none)'];
      const [a, b] = pick(r, spans);
      // Mostly the 64 levels asked for; now and then far deeper, to find recursion limits.
      const depth = r() < 0.97 ? 64 : pick(r, [1000, 10_000, 100_000]);
      const kind = r() < 0.5 ? 'array' : 'object';
      return [text.slice(0, a) + nest(depth, kind) + text.slice(b), `nest ${depth} ${kind}`];
    }
    case 5: {
      const opens = [...text.matchAll(/\{/g)].map((m) => m.index!);
      if (opens.length === 0) return [text, 'key (none)'];
      const i = pick(r, opens) + 1;
      const key = pick(r, KEYS);
      return [text.slice(0, i) + ` ${key}: ${pick(r, VALUES)}, ` + text.slice(i), `key ${key}`];
    }
    case 6: {
      const i = at(r, text);
      return [text.slice(0, i), `truncate@${i}`];
    }
    case 7: {
      const a = at(r, text);
      const b = Math.min(text.length, a + Math.floor(r() * 200));
      const i = at(r, text);
      return [text.slice(0, i) + text.slice(a, b) + text.slice(i), `dup ${a}-${b}@${i}`];
    }
    case 8: {
      // Duplicate a whole `key: value,` line (duplicate keys must be reported, not kept).
      const lines = text.split('\n');
      const i = Math.floor(r() * lines.length);
      lines.splice(i, 0, lines[i]!);
      return [lines.join('\n'), `dupline ${i}`];
    }
    default: {
      // Swap two random characters.
      const i = Math.floor(r() * text.length);
      const j = Math.floor(r() * text.length);
      const c = text.split('');
      [c[i], c[j]] = [c[j]!, c[i]!];
      return [c.join(''), `swapchars ${i},${j}`];
    }
  }
}

/** Case `i` of seed `seed`: 1-3 mutations of one of the bases, or (every BIG_EVERY) a 10 MB string. */
export function configMutant(bases: readonly string[], seed: number, i: number): { text: string; what: string } {
  const r = rng(seed * 7919 + i);
  let text = pick(r, bases);
  const what: string[] = [];
  if (i % BIG_EVERY === BIG_EVERY - 1) {
    const spans = valueSpans(text).filter(([a, b]) => text[a] === '"' && b - a > 2);
    const [a, b] = pick(r, spans);
    const big = JSON.stringify('x'.repeat(10 * 1024 * 1024));
    text = text.slice(0, a) + big + text.slice(b);
    what.push('10MB string');
    if (r() < 0.5) {
      const m = mutateOnce(r, text);
      text = m[0];
      what.push(m[1]);
    }
    return { text, what: what.join(' + ') };
  }
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    const m = mutateOnce(r, text);
    text = m[0];
    what.push(m[1]);
  }
  return { text, what: what.join(' + ') };
}

/** The host's TCP memory thresholds (net.ipv4.tcp_mem: low, pressure, high), in MiB; zeros when unreadable. */
export function tcpMemLimitsMB(): { low: number; pressure: number; high: number } {
  try {
    const [low = 0, pressure = 0, high = 0] = fs.readFileSync('/proc/sys/net/ipv4/tcp_mem', 'utf8').trim().split(/\s+/).map((p) => (Number(p) * 4096) / 1048576);
    return { low, pressure, high };
  } catch {
    return { low: 0, pressure: 0, high: 0 };
  }
}

/**
 * A tcplb on `host` relaying to one echo backend (`A`) with a control socket,
 * all cleaned up after `t`: the setup of the control-socket fault tests.
 */
export async function proxyWithSocket(t: TestContext, host: string, tag: string): Promise<{ proxy: ProxyChild; port: number; sock: string; id: string }> {
  const be = await listen(namedEcho('A'), host);
  t.after(() => be.close());
  const dir = tmpDir(tag);
  const port = await reservePort(host);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${host}:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["${host}:${be.port}"] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
  }`,
  );
  const proxy = await startProxy(file);
  t.after(() => proxy.kill());
  return { proxy, port, sock: path.join(dir, 'tcplb.sock'), id: `u/${host}:${be.port}` };
}
