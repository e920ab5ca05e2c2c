/**
 * Check cost: tcplb with N backends under `tcp` checks at interval 1s; reports
 * the CPU % of one core used by the tcplb processes (utime+stime from /proc
 * over a measured window, the process and its children: with workers > 1 the
 * relay workers count too, idle as they are here).
 * Usage: node dist/bench/check-cost.js [N=1000] [seconds=10] [type=tcp] [engine=js] [workers=1]
 * The engine is set explicitly (default js): `auto` would pick the native
 * engine when it is built, and the number would silently change meaning.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks, processTree, USER_HZ } from './lib/proc.js';

const N = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);
const TYPE = process.argv[4] ?? 'tcp';
const ENGINE = process.argv[5] ?? 'js';
const WORKERS: number | 'auto' = process.argv[6] === 'auto' ? 'auto' : Number(process.argv[6] ?? 1);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Backends: N listening sockets spread over 127.0.1.x, accepting and closing. */
async function startBackends(n: number): Promise<{ addrs: string[]; close: () => void }> {
  const servers: net.Server[] = [];
  const addrs: string[] = [];
  for (let i = 0; i < n; i++) {
    const host = `127.0.1.${1 + (i % 250)}`;
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      if (TYPE === 'imap') s.write('* OK ready\r\n');
      s.resume();
      s.on('end', () => s.end());
    });
    await new Promise<void>((r, j) => srv.once('error', j).listen(0, host, () => r()));
    servers.push(srv);
    addrs.push(`${host}:${(srv.address() as net.AddressInfo).port}`);
  }
  return { addrs, close: () => servers.forEach((s) => s.close()) };
}

/** CPU ticks of tcplb and its descendants (the relay workers of `workers` > 1). */
const ticksOf = (pid: number): number => cpuTicks(processTree(pid));

const backends = await startBackends(N);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-checkcost-'));
const file = path.join(dir, 'config.json5');
// A port the kernel just handed out and took back: free, unlike a random pick.
const probe = net.createServer();
await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
const listenPort = (probe.address() as net.AddressInfo).port;
await new Promise<void>((r) => probe.close(() => r()));
fs.writeFileSync(
  file,
  JSON.stringify({
    engine: ENGINE,
    workers: WORKERS,
    listeners: [{ listen: `127.0.0.1:${listenPort}`, upstream: 'many' }],
    upstreams: { many: { check: { type: TYPE, interval: '1s', timeout: '500ms', rise: 2, fall: 3 }, servers: backends.addrs } },
    log: { access: null, level: 'warn' },
  }),
);
const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), '--headless', '-c', file], { stdio: ['ignore', 'ignore', 'inherit'] });
let exited: string | undefined;
child.once('exit', (code, sig) => (exited = `tcplb exited (${code ?? sig}) before the measurement ended`));
const alive = (): void => {
  if (exited === undefined) return;
  backends.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(exited);
  process.exit(1);
};
await new Promise((r) => setTimeout(r, 3000)); // start-up and first round
alive();
const t0 = ticksOf(child.pid!);
const w0 = Date.now();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const used = (ticksOf(child.pid!) - t0) / USER_HZ;
alive();
const wall = (Date.now() - w0) / 1000;
const pct = (100 * used) / wall;
const rss = Number(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) / 1024;
child.kill('SIGTERM');
backends.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`check cost: ${N} backends, ${TYPE} checks every 1s: ${pct.toFixed(1)}% of one core over ${wall.toFixed(1)} s, RSS ${rss.toFixed(0)} MB`);
process.exit(0);
