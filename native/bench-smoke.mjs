#!/usr/bin/env node
// Benchmark smoke test (not part of `node --test`): wrk through the native
// engine in front of nginx (or a node http server when nginx is missing),
// compared with wrk straight at the backend. Loopback 127.0.0.78/79 only;
// every run is bounded (wrk -d) and everything started here is stopped here.
//
//   node native/bench-smoke.mjs [seconds=5] [connections=50]
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const addon = require(process.env.TCPLB_NATIVE_ADDON || './build/Release/tcplb_native.node');
const SECONDS = Number(process.argv[2] || 5);
const CONNS = Number(process.argv[3] || 50);
const BACKEND_HOST = '127.0.0.79';
const LB_HOST = '127.0.0.78';

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

async function startNginx() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-bench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen ${BACKEND_HOST}:${port} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
}`);
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: 'inherit' });
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error('nginx did not start');
  return {
    name: 'nginx (1 worker)',
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startNodeHttp() {
  const server = http.createServer((req, res) => res.end('ok\n'));
  await new Promise((r) => server.listen(0, BACKEND_HOST, r));
  return {
    name: 'node http (same process)',
    port: server.address().port,
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

function wrk(url, extra) {
  return new Promise((resolve) => {
    const args = ['-t', '2', '-c', String(CONNS), '-d', `${SECONDS}s`, ...extra, url];
    const child = spawn('wrk', args);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', () => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
      const lat = /Latency\s+(\S+)/.exec(out)?.[1];
      const errs = /Socket errors:.*|Non-2xx.*/g;
      resolve({ rps: Number(rps || 0), lat, errors: (out.match(errs) || []).join('; ') });
    });
  });
}

async function main() {
  if (!which('wrk')) {
    console.log('bench-smoke: wrk not installed; nothing to do');
    return;
  }
  const backend = which('nginx') ? await startNginx() : await startNodeHttp();
  let closed = 0;
  const hows = new Map();
  const eng = new addon.Engine((ev) => {
    for (let i = 0; i < ev.length;) {
      switch (ev[i]) {
        case 1: eng.connect(ev[i + 1], BACKEND_HOST, backend.port, 2000, 0, undefined); i += 7; break;
        case 3: eng.reject(ev[i + 1]); i += 3; break;
        case 4: closed++; hows.set(ev[i + 4], (hows.get(ev[i + 4]) || 0) + 1); i += 7; break;
        default: i += ev[i] === 2 ? 2 : 3;
      }
    }
  });
  try {
    const l = eng.listen(1, LB_HOST, 0, 4096);
    if (!l.ok) throw new Error(`listen: ${l.code}`);
    eng.activate(1);
    const direct = `http://${BACKEND_HOST}:${backend.port}/`;
    const via = `http://${LB_HOST}:${l.port}/`;
    console.log(`backend: ${backend.name}; wrk -t2 -c${CONNS} -d${SECONDS}s; ${os.cpus().length} cores shared by all`);
    const rows = [];
    for (const [label, extra] of [['Connection: close', ['-H', 'Connection: close']], ['keep-alive', []]]) {
      const d = await wrk(direct, extra);
      const cpu0 = process.cpuUsage();
      const v = await wrk(via, extra);
      const cpu = process.cpuUsage(cpu0);
      rows.push({ mode: label, direct_rps: d.rps, engine_rps: v.rps, engine_lat_avg: v.lat,
        engine_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / SECONDS) * 100),
        errors: [d.errors, v.errors].filter(Boolean).join(' | ') });
    }
    console.table(rows);
    await new Promise((r) => setTimeout(r, 300));
    console.log('after run: counts', eng.counts(), 'CLOSED by how', Object.fromEntries(hows), `total ${closed}`);
  } finally {
    eng.stop();
    await backend.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
