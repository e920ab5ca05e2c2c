/**
 * Fault 5: out of file descriptors. The proxy child runs under `ulimit -n
 * 100`; 150 clients connect at once. It must not crash, must log accept/
 * connect errors at most ~once a second with a count (not a line per
 * attempt), and once the clients are gone a new client is served within 2 s.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { reservePort } from '../helpers/net.js';
import { cpuSeconds, fdCount, greeted, listenOn, lo, sleep, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(61);
const CLIENTS = 150;


test(`EMFILE: proxy under ulimit -n 100, ${CLIENTS} clients: no crash, rate-limited error lines, recovery within 2 s`, { timeout: 60_000 }, async (t) => {
  const be = await listenOn(HOST, (s) => {
    s.write('hello\n');
    s.resume();
  });
  t.after(() => be.close());
  const dir = tmpDir('emfile');
  const port = await reservePort(HOST);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", connectTimeout: "2s" }],
    upstreams: { b: { servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
    log: { access: null },
  }`,
  );
  const px = await startProxy(file, { nofile: 100 });
  t.after(() => px.kill());
  const limits = await import('node:fs').then((fs) => fs.readFileSync(`/proc/${px.pid}/limits`, 'utf8'));
  assert.match(limits, /Max open files\s+100\s+100/, 'the proxy does not run under ulimit -n 100');
  assert.equal(await greeted(port, HOST, 2000), true, 'not served before the overload');
  const errLinesBefore = px.stderr().split('\n').length;

  // 150 clients at once, held open.
  const start = Date.now();
  const cpu0 = cpuSeconds(px.pid);
  const socks: net.Socket[] = [];
  const outcome = { greeted: 0, closed: 0, errors: 0 };
  let leaving = false;
  for (let i = 0; i < CLIENTS; i++) {
    const s = net.connect({ port, host: HOST, localAddress: lo(62) });
    s.once('data', () => outcome.greeted++);
    s.on('error', () => outcome.errors++);
    s.on('close', () => {
      if (!leaving) outcome.closed++;
    });
    socks.push(s);
  }
  await sleep(4000); // the scenario: 4 s of overload
  const busy = (Date.now() - start) / 1000;
  const cpu = (cpuSeconds(px.pid) - cpu0) / busy;
  const fdsAtPeak = fdCount(px.pid);
  const alive = px.child.exitCode === null && px.child.signalCode === null;

  leaving = true;
  for (const s of socks) s.destroy();
  const closedAt = Date.now();
  // A new client must be served within 2 s of the crowd leaving.
  let recoveredMs = -1;
  while (Date.now() - closedAt < 2000) {
    if (await greeted(port, HOST, Math.max(50, 2000 - (Date.now() - closedAt)))) {
      recoveredMs = Date.now() - closedAt;
      break;
    }
    await sleep(50); // retry pacing of the recovery measurement
  }
  // Part of the measurement, not a wait for an event: a rate-limited summary may or may not still be due (at most 1/s).
  await sleep(1200);
  const overloadSecs = (Date.now() - start) / 1000;
  const lines = px.stderr().split('\n').slice(errLinesBefore - 1).filter((l) => l.trim() !== '');
  const errLines = lines.filter((l) => /EMFILE|ENFILE|accept error|out of file descriptors|too many open files/i.test(l));
  const perSec = errLines.length / overloadSecs;
  console.log(
    `EMFILE: ${CLIENTS} clients against ulimit -n 100: ${outcome.greeted} greeted, ${outcome.closed} closed by the proxy, ${outcome.errors} errors; ` +
      `proxy fds at peak ${fdsAtPeak}, CPU ${(cpu * 100).toFixed(0)}% while overloaded; ${errLines.length} error lines in ${overloadSecs.toFixed(1)} s (${perSec.toFixed(2)}/s), ` +
      `${lines.length} stderr lines in all; new client served ${recoveredMs >= 0 ? `${recoveredMs} ms` : 'NOT within 2 s'} after the crowd left`,
  );
  for (const l of errLines.slice(0, 6)) console.log(`  stderr: ${l}`);
  assert.ok(alive, `proxy died under EMFILE; stderr:\n${px.stderr()}`);
  assert.ok(px.child.exitCode === null && px.child.signalCode === null, `proxy exited after the overload; stderr:\n${px.stderr()}`);
  // libuv's EMFILE trick (close a reserved descriptor, accept and close the
  // waiting clients) can turn clients away without telling Node: then nothing
  // is logged at all. Reported, not asserted: the bound below is what matters.
  if (errLines.length === 0) console.log(`  note: ${CLIENTS - outcome.greeted} clients were turned away and nothing was logged (libuv closed them itself)`);
  assert.ok(errLines.length <= 2 * Math.ceil(overloadSecs) + 2, `${errLines.length} error lines in ${overloadSecs.toFixed(1)} s: not rate-limited`);
  assert.ok(lines.length <= 4 * Math.ceil(overloadSecs) + 4, `${lines.length} stderr lines in ${overloadSecs.toFixed(1)} s: log flood`);
  assert.ok(recoveredMs >= 0 && recoveredMs <= 2000, 'no new client served within 2 s after the crowd left');
  assert.ok(cpu < 0.9, `proxy burnt ${(cpu * 100).toFixed(0)}% CPU while out of descriptors (busy loop?)`);
});
