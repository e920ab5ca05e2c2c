#!/usr/bin/env node
// Builds the native relay engine (native/binding.gyp) with node-gyp against
// this machine's Node headers. Run by `npm install` (the package's install
// script) and by `npm run build:native`. It never fails the install: when
// there is no compiler or the build breaks, it writes the reason to
// native/build-status.txt, prints one line, and tcplb runs the JavaScript
// engine (`engine: "auto"`) and says why in the console header and --check.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const status = path.join(here, 'build-status.txt');
const logFile = path.join(here, 'build.log');

function give(reason) {
  fs.writeFileSync(status, `${reason}\n`);
  process.stdout.write(`tcplb: native engine not built (${reason}); the JavaScript engine will run\n`);
  process.exit(0);
}

if (process.env.TCPLB_SKIP_NATIVE_BUILD === '1') give('skipped: TCPLB_SKIP_NATIVE_BUILD=1');
if (process.platform !== 'linux') give(`not built: the native engine is Linux-only (this is ${process.platform})`);

const cxx = process.env.CXX || 'c++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  give(`not built: no C++ compiler (${cxx}); install g++ and make, then run npm run build:native`);
}

// node-gyp: the one npm gives its scripts, else the copy bundled with npm.
const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && fs.existsSync(p));
if (candidates.length === 0) give('not built: node-gyp not found (it ships with npm); run npm run build:native from npm');

// Build against this Node's own headers (no download): npm passes its
// nodedir setting to scripts; run by hand, use the headers next to node.
const args = [candidates[0], 'rebuild'];
const prefix = path.dirname(path.dirname(process.execPath));
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', env: { ...process.env } });
fs.writeFileSync(logFile, `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
if (r.status !== 0 || !fs.existsSync(path.join(here, 'build', 'Release', 'tcplb_native.node'))) {
  const err = (r.stderr ?? '').split('\n').find((l) => /error/i.test(l)) ?? `exit code ${r.status}`;
  give(`not built: node-gyp failed: ${err.trim().slice(0, 160)} (full output in native/build.log)`);
}
fs.rmSync(status, { force: true });
process.stdout.write(`tcplb: native engine built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
