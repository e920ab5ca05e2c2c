/**
 * Start-up at scale: tcplb with N upstreams (default 10,000), each with one
 * server and a `tcp` check, served by a few real backends on loopback. Reports
 * how long after spawn the first client is served through the listener, how
 * long `ctl status` takes while the first round of probes lands and after it,
 * and the first metrics scrape.
 *
 * Usage: node dist/bench/scale-start.js [N=10000] [engine=native] [workers=1]
 * SCALE_PROFILE=DIR writes tcplb's CPU profile (node --cpu-prof) there.
 *
 * It is a benchmark row (bench/run.ts prints it) and the measurement behind
 * docs/operating.md's "10,000 checked upstreams" line; the fault suite's
 * test/faults/many-upstreams.test.ts asserts a generous bound on the same.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './lib/net.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');

export interface ScaleResult {
  upstreams: number;
  engine: string;
  /** ms from spawn to the first client served through the listener. */
  firstClientMs: number;
  /** ms from spawn to every backend UP (as `ctl status` shows). */
  allUpMs: number;
  /** Median `ctl status` round trip while probes land, and after (ms). */
  ctlDuringMs: number;
  ctlAfterMs: number;
  /** First metrics scrape (ms). */
  scrapeMs: number;
}

/** `count` backends that greet with their number and close, spread over `hosts`. */
async function startBackends(count: number, hosts: readonly string[]): Promise<{ addrs: string[]; close(): void }> {
  const servers: net.Server[] = [];
  const addrs: string[] = [];
  for (let i = 0; i < count; i++) {
    const host = hosts[i % hosts.length]!;
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      s.end(`hello from ${i}\n`);
    });
    await new Promise<void>((r, j) => srv.once('error', j).listen({ port: 0, host, backlog: 4096 }, () => r()));
    servers.push(srv);
    addrs.push(`${host}:${(srv.address() as net.AddressInfo).port}`);
  }
  return { addrs, close: () => servers.forEach((s) => s.close()) };
}

function tryClient(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('hello from')) done(true);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(got.includes('hello from')));
  });
}

/** One `status` request on the control socket (no node start-up in the figure): ms and the reply line. */
function ctlRaw(socket: string): Promise<{ ms: number; line: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(socket);
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(JSON.stringify({ id: 1, cmd: 'status' }) + '\n'));
    s.on('data', (d: Buffer) => {
      if (chunks.length === 0 && process.env.SCALE_TTFB) console.error(`ttfb ${(performance.now() - t0).toFixed(1)} ms`);
      chunks.push(d);
      if (d.includes(10)) {
        s.destroy();
        const all = Buffer.concat(chunks).toString('utf8');
        resolve({ ms: performance.now() - t0, line: all.slice(0, all.indexOf('\n')) });
      }
    });
    s.on('error', reject);
    s.setTimeout(60_000, () => { s.destroy(); reject(new Error('ctl status: no reply within 60 s')); });
  });
}

function scrape(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', timeout: 60_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      })
      .on('error', reject);
  });
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

export interface ScaleOptions {
  engine: string;
  workers?: number | 'auto';
  /** Give up (throw) when the first client or all-UP takes longer. */
  deadlineMs?: number;
  /** Loopback addresses for the backends (default 127.0.2.1-50). */
  hosts?: readonly string[];
}

export async function scaleStart(n: number, opts: ScaleOptions): Promise<ScaleResult> {
  const { engine, workers = 1, deadlineMs = 120_000 } = opts;
  const backends = await startBackends(50, opts.hosts ?? Array.from({ length: 50 }, (_, i) => `127.0.2.${i + 1}`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-scale-'));
  const file = path.join(dir, 'config.json5');
  const socket = path.join(dir, 'ctl.sock');
  const port = await freePort(['127.0.0.1']);
  const metricsPort = await freePort(['127.0.0.1']);
  const upstreams: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    upstreams[`u${i}`] = { check: { type: 'tcp', interval: process.env.SCALE_INTERVAL ?? '5s', timeout: '2s', rise: 1, fall: 2 }, servers: [backends.addrs[i % backends.addrs.length]] };
  }
  fs.writeFileSync(
    file,
    JSON.stringify({
      engine,
      workers,
      listeners: [{ name: 'first', listen: `127.0.0.1:${port}`, upstream: 'u0' }],
      upstreams,
      control: { socket },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      log: { access: null, level: 'error' },
    }),
  );
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(process.env.SCALE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_PROFILE}`] : []), BIN, '--headless', '-c', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await new Promise((r) => child.once('exit', r));
      clearTimeout(killer);
    }
    backends.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    let firstClientMs = NaN;
    while (performance.now() - t0 < deadlineMs && !exited) {
      if (await tryClient(port)) {
        firstClientMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (Number.isNaN(firstClientMs)) throw new Error(exited ? 'tcplb exited before serving a client' : `no client served within ${deadlineMs} ms`);
    const during: number[] = [];
    let allUpMs = NaN;
    while (performance.now() - t0 < deadlineMs && !exited) {
      // The listeners serve before the control socket is up: wait for it.
      const r = await ctlRaw(socket).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') return undefined;
        throw err;
      });
      if (r === undefined) {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      during.push(r.ms);
      const states = r.line.match(/"state":"\w+"/g) ?? [];
      if (states.length >= n && states.every((s) => s === '"state":"UP"')) {
        allUpMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (Number.isNaN(allUpMs)) throw new Error(exited ? 'tcplb exited before every backend was UP' : `not every backend UP within ${deadlineMs} ms`);
    const after: number[] = [];
    for (let i = 0; i < 7; i++) after.push((await ctlRaw(socket)).ms);
    const scrapeMs = await scrape(metricsPort);
    return { upstreams: n, engine, firstClientMs, allUpMs, ctlDuringMs: median(during), ctlAfterMs: median(after), scrapeMs };
  } finally {
    await stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 10_000);
  const engine = process.argv[3] ?? 'native';
  const workers = Number(process.argv[4] ?? 1);
  const r = await scaleStart(n, { engine, workers });
  const f = (x: number): string => (Number.isNaN(x) ? 'n/a' : `${Math.round(x)} ms`);
  console.log(
    `${r.upstreams} checked upstreams, engine ${r.engine}: first client ${f(r.firstClientMs)}, all UP ${f(r.allUpMs)}, ` +
      `ctl status ${f(r.ctlDuringMs)} while probes land / ${f(r.ctlAfterMs)} after, first scrape ${f(r.scrapeMs)}`,
  );
}
