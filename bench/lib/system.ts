/**
 * What the report says about the machine and the software: versions, CPU,
 * kernel, the open-files limit, loopback-relevant sysctls; which tools exist.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './proc.js';

/** Absolute path of `bin` on PATH (plus the sbin dirs, as root's PATH may lack them), or undefined. */
export function which(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const f = path.join(d, bin);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Soft and hard "Max open files" of this process. */
export function openFilesLimit(): { soft: number; hard: number } {
  try {
    const m = fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\S+)\s+(\S+)/);
    const n = (s: string | undefined): number => (s === 'unlimited' ? Infinity : Number(s));
    if (m) return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    /* not Linux */
  }
  return { soft: NaN, hard: NaN };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.trim() ?? '';
}

export async function versions(root: string): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[], pick: (out: string) => string): Promise<string> => {
    if (!which(cmd)) return 'not installed';
    const r = await run(cmd, args, 5000).catch(() => undefined);
    if (!r) return 'unknown';
    return pick(r.stdout + '\n' + r.stderr) || 'unknown';
  };
  let tcplb = 'unknown';
  try {
    tcplb = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* keep unknown */
  }
  const commit = await v('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], (o) => o.match(/^[0-9a-f]{7,40}$/m)?.[0] ?? 'unknown');
  return {
    tcplb: `${tcplb} (commit ${commit})`,
    node: process.version,
    nginx: await v('nginx', ['-v'], (o) => (o.match(/nginx version: (\S+)/)?.[1] ?? firstLine(o))),
    haproxy: await v('haproxy', ['-v'], (o) => (o.match(/HAProxy version (\S+)/)?.[1] ?? firstLine(o))),
    wrk: await v('wrk', ['-v'], (o) => (o.match(/^wrk (\S+)/m)?.[1] ?? firstLine(o))),
    iperf3: await v('iperf3', ['-v'], (o) => (o.match(/^iperf (\S+)/m)?.[1] ?? firstLine(o))),
  };
}

function readTrim(f: string): string {
  try {
    return fs.readFileSync(f, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return 'unknown';
  }
}

export function machine(): Record<string, string> {
  let model = 'unknown';
  try {
    model = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? 'unknown';
  } catch {
    /* keep unknown */
  }
  const lim = openFilesLimit();
  return {
    cores: `${os.availableParallelism()} (nproc)`,
    cpu: model,
    kernel: os.release(),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    'open files (ulimit -n)': `${lim.soft} soft / ${lim.hard} hard`,
    'net.core.somaxconn': readTrim('/proc/sys/net/core/somaxconn'),
    'net.ipv4.ip_local_port_range': readTrim('/proc/sys/net/ipv4/ip_local_port_range'),
    'net.ipv4.tcp_tw_reuse': readTrim('/proc/sys/net/ipv4/tcp_tw_reuse'),
  };
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}
