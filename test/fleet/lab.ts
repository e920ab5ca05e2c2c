/**
 * Network namespaces for the fleet tests: a private L2 segment (a bridge in
 * a "switch" namespace) with one namespace per node attached by a veth pair,
 * so keepalived, BIRD and ExaBGP see real interfaces, real ARP and real
 * routes, while nothing touches the host's own network (the root namespace
 * is never configured). Every name carries this process's pid, so parallel
 * runs do not collide and a later run removes what a killed one left.
 *
 * Nodes get `10.<net>.0.<i+1>/24` on `eth0` in fleet order; `lab.exec`
 * runs a command inside a node and `lab.spawn` a daemon (killed by PID at
 * cleanup, before the namespaces go).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { findExecutable, pidAlive } from '../fixtures/real/common.js';

/** Names start with this and the owner's pid: `tl4242-lb1`. */
const PREFIX = 'tl';

export interface Node {
  readonly name: string;
  /** The namespace's name (for `ip netns exec`). */
  readonly ns: string;
  /** Its address on the segment, without prefix length. */
  readonly ip: string;
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote on stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<number | null>;
}

export interface Lab {
  readonly nodes: ReadonlyMap<string, Node>;
  node(name: string): Node;
  /** The segment's prefix, e.g. `10.91.0.0/24`; `addr(k)` is `10.91.0.k`. */
  readonly subnet: string;
  addr(host: number): string;
  /** A temp folder for configs and logs, removed at cleanup (kept with TCPLB_KEEP_TMP). */
  readonly dir: string;
  /** Run `cmd args` inside `node` to completion; throws with its output when it fails. */
  exec(node: string, cmd: string, args: readonly string[], opts?: { input?: string; allowFail?: boolean }): string;
  /** Start `cmd args` inside `node` in the background; killed by PID at cleanup. */
  spawn(node: string, cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv }): Spawned;
  /** Take a node's link down (or up): its veth in the switch namespace, as a pulled cable. */
  link(node: string, up: boolean): void;
  cleanup(): Promise<void>;
}

/** Root and `ip` with namespace support; under CI a missing piece fails, elsewhere it skips loudly. */
export function requireNetns(t: TestContext, ...binaries: string[]): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (CAP_NET_ADMIN)');
  for (const b of ['ip', ...binaries]) if (findExecutable(b) === null) missing.push(b);
  if (missing.length === 0) return true;
  const msg = `fleet test needs ${missing.join(', ')}: run sudo bash .ci/install-deps.sh`;
  if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  console.error(`\n${'!'.repeat(Math.min(100, msg.length + 8))}\n!!! SKIPPED: ${msg}\n${'!'.repeat(Math.min(100, msg.length + 8))}\n`);
  t.skip(msg);
  return false;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Remove namespaces left by runs whose process is gone. */
function sweepStale(): void {
  let list = '';
  try {
    list = ip('netns', 'list');
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) spawnSync('ip', ['netns', 'del', name]);
  }
}

let labs = 0;

/**
 * A lab of `names` nodes on one segment, and the cleanup registered on `t`.
 * `net` picks the second octet (distinct per test file, 10.<net>.0.0/24).
 */
export function createLab(t: TestContext, names: readonly string[], net: number): Lab {
  sweepStale();
  const tag = `${PREFIX}${process.pid}-${++labs}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-fleet-'));
  const sw = `${tag}-sw`;
  const nodes = new Map<string, Node>();
  const made: string[] = [];
  const spawned: Spawned[] = [];
  const short = (i: number): string => `v${process.pid % 100000}${labs}${i}`.slice(0, 13);
  const addr = (k: number): string => `10.${net}.0.${k}`;

  const cleanup = async (): Promise<void> => {
    for (const s of spawned) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
    await Promise.race([Promise.all(spawned.map((s) => s.exited)), new Promise((r) => setTimeout(r, 3000))]);
    for (const s of spawned) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.race([Promise.all(spawned.map((s) => s.exited)), new Promise((r) => setTimeout(r, 2000))]);
    for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    if (!process.env.TCPLB_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  };
  t.after(cleanup);

  const inNs = (ns: string, ...args: string[]): string => ip('-n', ns, ...args);
  ip('netns', 'add', sw);
  made.push(sw);
  inNs(sw, 'link', 'add', 'br0', 'type', 'bridge');
  inNs(sw, 'link', 'set', 'br0', 'up');
  inNs(sw, 'link', 'set', 'lo', 'up');
  names.forEach((name, i) => {
    const ns = `${tag}-${name}`;
    ip('netns', 'add', ns);
    made.push(ns);
    const a = `${short(i)}a`;
    const b = `${short(i)}b`;
    ip('link', 'add', a, 'netns', ns, 'type', 'veth', 'peer', 'name', b, 'netns', sw);
    inNs(ns, 'link', 'set', a, 'name', 'eth0');
    inNs(ns, 'addr', 'add', `${addr(i + 1)}/24`, 'dev', 'eth0');
    inNs(ns, 'link', 'set', 'eth0', 'up');
    inNs(ns, 'link', 'set', 'lo', 'up');
    inNs(sw, 'link', 'set', b, 'master', 'br0');
    inNs(sw, 'link', 'set', b, 'up');
    nodes.set(name, { name, ns, ip: addr(i + 1) });
  });

  const node = (name: string): Node => {
    const n = nodes.get(name);
    if (n === undefined) throw new Error(`no node "${name}" in this lab (${[...nodes.keys()].join(', ')})`);
    return n;
  };
  return {
    nodes,
    node,
    subnet: `10.${net}.0.0/24`,
    addr,
    dir,
    exec(name, cmd, args, opts = {}) {
      const r = spawnSync('ip', ['netns', 'exec', node(name).ns, cmd, ...args], { encoding: 'utf8', input: opts.input, timeout: 30_000 });
      if (r.status !== 0 && !opts.allowFail) throw new Error(`${name}: ${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
      return r.stdout + (opts.allowFail ? r.stderr : '');
    },
    spawn(name, cmd, args, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', node(name).ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      const s: Spawned = { child, pid: child.pid!, output: () => out, exited };
      spawned.push(s);
      return s;
    },
    link(name, up) {
      const i = names.indexOf(name);
      if (i < 0) throw new Error(`no node "${name}"`);
      inNs(sw, 'link', 'set', `${short(i)}b`, up ? 'up' : 'down');
    },
    cleanup,
  };
}
