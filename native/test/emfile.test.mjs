// EMFILE on accept: ACCEPT_ERROR at most once per 100 ms, no busy loop while
// out of fds, and accepting resumes by itself once fds are free again.
// Runs the engine in a child whose RLIMIT_NOFILE is lowered with `ulimit -n`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { E, addonPath } from './helpers.mjs';

const N = 80;

const CHILD = `
import { createRequire } from 'node:module';
const b = createRequire(import.meta.url)(process.env.ADDON);
const N = Number(process.env.N);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const accepted = [];
const errors = [];
let rejectAll = false;
let total = 0;
const e = new b.Engine((ev) => {
  for (let i = 0; i < ev.length;) {
    switch (ev[i]) {
      case 1: total++; if (rejectAll) e.reject(ev[i + 1]); else accepted.push(ev[i + 1]); i += 7; break;
      case 5: errors.push(ev[i + 2]); i += 3; break;
      case 4: i += 7; break;
      default: i += ev[i] === 2 ? 2 : 3;
    }
  }
});
const { port } = e.listen(1, '127.0.0.78', 0, 511);
e.activate(1);
process.stdout.write(JSON.stringify({ port }) + '\\n');
for (let i = 0; i < 500 && errors.length === 0; i++) await sleep(10);
const cpu0 = process.cpuUsage();
const n0 = errors.length;
await sleep(600);
const cpu = process.cpuUsage(cpu0);
const errorsIn600 = errors.length - n0;
const acceptedWhileOut = accepted.length;
rejectAll = true;
for (const id of accepted) e.reject(id);
for (let i = 0; i < 500 && total < N; i++) await sleep(10);
console.log(JSON.stringify({ errno: errors[0], errorsIn600, cpuMs: (cpu.user + cpu.system) / 1000,
  acceptedWhileOut, total }));
e.stop();
`;

test('EMFILE: listener pauses 100 ms, reports, does not spin, then resumes', { timeout: 20000 }, async (t) => {
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"',
    process.execPath, '--input-type=module', '-e', CHILD],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ADDON: addonPath, N: String(N) } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(stdout.slice(0, nl)).port);
    });
    child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
  });
  const clients = [];
  try {
    for (let i = 0; i < N; i++) clients.push(net.connect(port, '127.0.0.78').on('error', () => {}));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, stderr);
    const r = JSON.parse(stdout.trim().split('\n').pop());
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.errno, E.EMFILE);
    assert.ok(r.acceptedWhileOut > 0 && r.acceptedWhileOut < N, `accepted ${r.acceptedWhileOut} before EMFILE`);
    assert.ok(r.errorsIn600 >= 3 && r.errorsIn600 <= 7, `${r.errorsIn600} ACCEPT_ERROR in 600 ms`);
    assert.ok(r.cpuMs < 150, `CPU while out of fds: ${r.cpuMs} ms in 600 ms`);
    assert.equal(r.total, N);  // everyone was accepted in the end
  } finally {
    clients.forEach((c) => c.destroy());
    child.kill('SIGKILL');
  }
});
