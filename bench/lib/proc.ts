/**
 * Child processes for the benchmark: every process we start is registered
 * here and stopped by its PID (and the PIDs of its descendants, e.g. nginx
 * workers), never by name. Also: bounded command runs, RSS and CPU from /proc.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout+stderr, last 64 KiB, for error reports. */
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

const live = new Set<Proc>();

function tail(buf: string, add: string, max = 65536): string {
  const s = buf + add;
  return s.length > max ? s.slice(s.length - max) : s;
}

/** Start a long-running process (a server). It is stopped by stopAll() at the latest. */
export function start(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let done = false;
  child.stdout?.on('data', (d: Buffer) => (out = tail(out, d.toString())));
  child.stderr?.on('data', (d: Buffer) => (out = tail(out, d.toString())));
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (err) => {
      done = true;
      out = tail(out, `\n${err.message}`);
      resolve('spawn-error');
    });
    child.once('exit', (code, sig) => {
      done = true;
      resolve(code ?? sig ?? 'unknown');
    });
  });
  const p: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    hasExited: () => done,
  };
  live.add(p);
  void exited.then(() => live.delete(p));
  return p;
}

/** PIDs of every descendant of `pid` (children first level, then theirs), from /proc. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of safeReaddir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readStat(Number(e));
    if (st) parent.set(Number(e), st.ppid);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [c, pp] of parent) {
      if (pp === p && !out.includes(c)) {
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

interface Stat {
  ppid: number;
  utime: number;
  stime: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stop one process by PID: `sig` (default SIGTERM) to it, wait up to
 * `graceMs`, then SIGKILL it and any descendant still there.
 */
export async function stop(p: Proc, graceMs = 3000, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.pid <= 0) return;
  const kids = descendants(p.pid);
  if (!p.hasExited()) {
    signal(p.pid, sig);
    await Promise.race([p.exited, sleep(graceMs)]);
    if (!p.hasExited()) {
      signal(p.pid, 'SIGKILL');
      await Promise.race([p.exited, sleep(1000)]);
    }
  }
  // nginx workers end with their master; anything left over is killed by PID.
  const deadline = Date.now() + 1000;
  while (kids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const k of kids) if (alive(k)) signal(k, 'SIGKILL');
  live.delete(p);
}

/** Stop everything still registered (normal end, error, SIGINT). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p, 2000)));
}

/** Synchronous last resort for process 'exit': SIGKILL every registered PID and its descendants. */
export function killAllSync(): void {
  for (const p of live) {
    if (p.pid <= 0) continue;
    const kids = descendants(p.pid);
    signal(p.pid, 'SIGKILL');
    for (const k of kids) signal(k, 'SIGKILL');
  }
  live.clear();
}

export interface RunResult {
  code: number | string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command to its end, killed (by PID) after `timeoutMs`. */
export async function run(cmd: string, args: readonly string[], timeoutMs: number, opts: SpawnOptions = {}): Promise<RunResult> {
  const p = start(cmd, cmd, args, opts);
  let stdout = '';
  let stderr = '';
  p.child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  p.child.stderr?.on('data', (d: Buffer) => (stderr = tail(stderr, d.toString())));
  // 'exit' can come before the last stdout/stderr bytes: wait for 'close' too (bounded: a
  // grandchild may hold the pipes open), or a parser sees a cut-off output.
  const closed = new Promise<void>((resolve) => p.child.once('close', () => resolve()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stop(p, 1000);
  }, timeoutMs);
  const code = await p.exited;
  await Promise.race([closed, sleep(1000)]);
  clearTimeout(timer);
  if (code === 'spawn-error') stderr = tail(stderr, p.output());
  return { code, stdout, stderr, timedOut };
}

/** Resident set size in KiB of the given PIDs, summed (VmRSS from /proc/PID/status). */
export function rssKiB(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)\s+kB/);
      if (m) sum += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on every Linux build that matters). */
export const USER_HZ = 100;

/** CPU ticks (utime+stime, USER_HZ) of the given PIDs, summed. */
export function cpuTicks(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (st) sum += st.utime + st.stime;
  }
  return sum;
}

/** The process and all its descendants (nginx: master + workers). */
export function processTree(pid: number): number[] {
  return [pid, ...descendants(pid)];
}

export { sleep };
