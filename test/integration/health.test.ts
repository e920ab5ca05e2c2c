/**
 * Active checks end to end: the app probes real loopback backends and routes
 * around the dead one within fall*interval+timeout, and back within rise*interval.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort, greetingVia, listen, waitFor } from '../helpers/net.js';

/** An IMAP-like greeter that can be switched to silent (accepts, never writes). */
async function imapLike(name: string) {
  const state = { silent: false };
  const srv = await listen((s: net.Socket) => {
    s.resume();
    if (!state.silent) s.write(`* OK ${name} ready\r\n`);
  });
  return Object.assign(srv, { state });
}

test('failover timing: a silent backend stops getting connections within fall*interval+timeout, returns after rise*interval', async (t) => {
  const a = await imapLike('A');
  const b = await imapLike('B');
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort();
  const interval = 200;
  const timeout = 150;
  const rise = 2;
  const fall = 3;
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "imap" }],
    upstreams: { imap: {
      check: { type: "imap", interval: ${interval}, timeout: ${timeout}, rise: ${rise}, fall: ${fall} },
      servers: [{ address: "127.0.0.1:${a.port}", maxFails: 0 }, { address: "127.0.0.1:${b.port}", maxFails: 0 }],
    } },
  }`);
  t.after(() => app.stopNow());
  const idA = `imap/127.0.0.1:${a.port}`;
  const usableA = () => app.runtime.routes.upstreams.get('imap')!.backends.find((x) => x.id === idA)!.usable;
  await waitFor(() => app.runtime.backends().every((x) => x.op === 'up'), { timeoutMs: 2000, what: 'first probes' });
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await greetingVia(port));
  assert.deepEqual([...seen].sort(), ['* OK A ready\r', '* OK B ready\r']);

  a.state.silent = true;
  const died = Date.now();
  await waitFor(() => !usableA(), { timeoutMs: 3000, what: 'A to be taken out' });
  const out = Date.now() - died;
  const bound = fall * interval + timeout + 250;
  assert.ok(out <= bound, `A still got traffic ${out} ms after it went silent (bound ${bound} ms)`);
  for (let i = 0; i < 6; i++) assert.equal(await greetingVia(port), '* OK B ready\r');
  assert.match(app.runtime.backend(idA)!.opReason, /3 consecutive failures: timeout after 150 ms/);

  a.state.silent = false;
  const back = Date.now();
  await waitFor(() => usableA(), { timeoutMs: 3000, what: 'A to come back' });
  const tookBack = Date.now() - back;
  // rise passes at interval spacing, the first within one interval; 500 ms of scheduling slack.
  assert.ok(tookBack <= rise * interval + timeout + 500, `A came back after ${tookBack} ms`);
  assert.ok(tookBack >= (rise - 1) * interval - 50, `A came back after only ${tookBack} ms: rise ${rise} ignored`);
});

test('onMarkedDown "shutdown" closes the dead backend\'s open sessions with reason backend_down', async (t) => {
  const a = await imapLike('A');
  t.after(() => a.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "imap" }],
    upstreams: { imap: { onMarkedDown: "shutdown",
      check: { type: "imap", interval: 100, timeout: 80, rise: 1, fall: 1 },
      servers: [{ address: "127.0.0.1:${a.port}", maxFails: 0 }],
    } },
  }`);
  t.after(() => app.stopNow());
  await waitFor(() => app.runtime.backends()[0]!.op === 'up', { timeoutMs: 2000, what: 'first probe' });
  const c = net.connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  await new Promise((r) => c.once('data', r));
  a.state.silent = true;
  await waitFor(() => c.destroyed || c.readableEnded, { timeoutMs: 2000, what: 'session closed by backend_down' });
  await waitFor(() => app.records.length, { until: (n) => n === 1, timeoutMs: 2000, what: 'record' });
  assert.equal(app.records[0]!.reason, 'backend_down');
});
