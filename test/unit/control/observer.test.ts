/**
 * Observers yield the CPU: an attached console or ssh bridge lowers its own
 * priority to ATTACHED_NICE, and one started nicer stays as nice. Each case
 * runs in a child process: a process cannot take back a lowered priority.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ATTACHED_NICE } from '../../../src/control/observer.js';
import { ROOT } from '../../helpers/cli.js';

const MODULE = pathToFileURL(path.join(ROOT, 'dist/src/control/observer.js')).href;

/** Runs yieldCpu() in a fresh node (under `nice -n start`) and returns what it reports and what /proc says. */
function niceAfterYield(start: number): { reported: number; proc: number } {
  const script = `const m = await import(${JSON.stringify(MODULE)}); const r = m.yieldCpu(); const f = (await import('node:fs')).readFileSync('/proc/self/stat', 'utf8'); console.log(JSON.stringify({ reported: r, proc: Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[16]) }));`;
  const r = spawnSync('nice', ['-n', String(start), process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { reported: number; proc: number };
}

test('an observer at normal priority lowers itself to ATTACHED_NICE', () => {
  assert.equal(ATTACHED_NICE, 10);
  assert.deepEqual(niceAfterYield(0), { reported: 10, proc: 10 });
});

test('an observer started nicer than ATTACHED_NICE keeps its niceness', () => {
  assert.deepEqual(niceAfterYield(15), { reported: 15, proc: 15 });
});
