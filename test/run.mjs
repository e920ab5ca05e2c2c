#!/usr/bin/env node
// `npm test`: the unit tests once, then the integration and fault suites
// against each data-plane engine: the native one (when it is built) and the
// JavaScript one (TCPLB_ENGINE overrides every config's engine). In CI
// (CI=true) a missing native engine is a failure; elsewhere it is a loud
// skip that says why. Exit code: 0 only when every pass passed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = path.join(root, 'native/build/Release/tcplb_native.node');
const statusFile = path.join(root, 'native/build-status.txt');
const ci = process.env.CI === 'true' || process.env.CI === '1';
const only = process.argv[2]; // optional: "js" or "native" to run one engine's passes

/** Run one node --test pass; returns [label, ok, seconds]. */
function pass(label, args, env = {}) {
  process.stdout.write(`\n=== ${label} ===\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--test', ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return [label, r.status === 0, (Date.now() - t0) / 1000];
}

const results = [];
const engines = [];
if (fs.existsSync(addon)) engines.push('native');
else {
  const why = fs.existsSync(statusFile) ? fs.readFileSync(statusFile, 'utf8').trim() : 'not built (npm run build:native)';
  const msg = `native engine ${why}: the native passes cannot run`;
  if (ci || only === 'native') {
    process.stdout.write(`\n!!! FAIL: ${msg} (CI=true requires both engines)\n`);
    results.push(['native engine build', false, 0]);
  } else {
    process.stdout.write(`\n!!! SKIPPING the native-engine passes: ${msg}\n`);
  }
}
engines.push('js');

if (only === undefined) results.push(pass('unit', ['--test-concurrency=2', 'dist/test/unit']));
if (engines.includes('native') && only !== 'js') results.push(pass('native addon', ['native/test/']));
for (const e of engines) {
  if (only !== undefined && only !== e) continue;
  results.push(pass(`integration · engine ${e}`, ['--test-concurrency=2', 'dist/test/integration'], { TCPLB_ENGINE: e }));
  results.push(pass(`faults · engine ${e}`, ['--test-concurrency=1', 'dist/test/faults'], { TCPLB_ENGINE: e }));
}

// HA pairs and BGP sets in network namespaces (keepalived, BIRD, ExaBGP): once, on the default engine.
if (only === undefined) results.push(pass('fleet (network namespaces)', ['--test-concurrency=1', 'dist/test/fleet']));

process.stdout.write('\n=== summary ===\n');
for (const [label, ok, s] of results) process.stdout.write(`${ok ? 'pass' : 'FAIL'}  ${label.padEnd(32)} ${s.toFixed(0)} s\n`);
process.exit(results.every(([, ok]) => ok) ? 0 : 1);
