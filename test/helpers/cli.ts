/** Run the built `tcplb-console` binary as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'dist/src/cli/main.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The process's pid (gone by now). */
  pid: number;
}

/** Run to completion (bounded by timeoutMs, then SIGKILL). */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, pid: child.pid ?? 0 });
    });
  });
}

/** A long-running instance: waits until stderr matches `ready`. */
export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

export async function startCli(args: string[], ready: RegExp, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready in time; stderr:\n${err}`)), opts.timeoutMs ?? 10000);
    child.stderr!.on('data', (d) => {
      err += d;
      if (ready.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    void exited.then((c) => reject(new Error(`exited ${c} before ready; stderr:\n${err}`)));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}
