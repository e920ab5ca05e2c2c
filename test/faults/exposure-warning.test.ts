/**
 * Fault 13: endpoints bound beyond loopback. A metrics endpoint on 0.0.0.0
 * (or [::]) is readable by anyone who reaches the host: start-up must warn.
 * One on a loopback address must not. (The control socket is a Unix socket
 * with mode 0600: nothing to check there; see control-socket.test.ts.)
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort, listen, namedEcho } from '../helpers/net.js';
import { lo } from './helpers.js';

const HOST = lo(54);

async function linesFor(metricsListen: string, port: number, scrapeHost: string): Promise<{ lines: string[]; scraped: boolean }> {
  const be = await listen(namedEcho('A'), HOST);
  const lp = await reservePort(HOST);
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${lp}", upstream: "u" }],
    upstreams: { u: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
    metrics: { listen: ${JSON.stringify(metricsListen)} },
  }`);
  try {
    // The endpoint is really there (scraped over loopback).
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: scrapeHost, port, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    return { lines: [...app.lines], scraped: /tcplb_/.test(body) };
  } finally {
    app.stopNow();
    await be.close();
  }
}

test('metrics on 0.0.0.0 or [::] warns at start-up; on loopback it does not', { timeout: 30_000 }, async () => {
  const seen: { where: string; port: number; warn: string | undefined; scraped: boolean }[] = [];
  for (const where of ['0.0.0.0', '[::]']) {
    const port = await reservePort(where === '[::]' ? '::' : '0.0.0.0');
    const { lines, scraped } = await linesFor(`${where}:${port}`, port, HOST);
    seen.push({ where, port, scraped, warn: lines.find((l) => /\bwarn\b/.test(l) && /metrics/.test(l) && /beyond loopback/.test(l))?.trim() });
  }
  const port = await reservePort(HOST);
  const loop = await linesFor(`${HOST}:${port}`, port, HOST);
  const loopWarn = loop.lines.filter((l) => /beyond loopback/.test(l)).length;
  console.log(`exposure warning: ${seen.map((x) => `${x.where}: ${x.warn?.replace(/^\S+ /, '') ?? 'NO WARNING'}`).join(' | ')}; ${loopWarn === 0 ? 'none' : loopWarn} for ${HOST}`);
  for (const x of seen) {
    assert.ok(x.scraped, `metrics on ${x.where}:${x.port} did not answer`);
    assert.ok(x.warn !== undefined, `no warning for metrics on ${x.where}:${x.port}`);
  }
  assert.ok(loop.scraped, 'loopback metrics did not answer');
  assert.equal(loopWarn, 0, 'a loopback metrics endpoint got the warning');
  // The address as operators write it (IPv6 bracketed), not an ambiguous ":::PORT".
  for (const x of seen) assert.ok(x.warn!.includes(`${x.where}:${x.port}`), `the warning does not name ${x.where}:${x.port}: ${x.warn}`);
});
