/**
 * Fault 2: onMarkedDown "shutdown". A long-lived IMAP-IDLE-like session sits
 * on a backend that goes silent to probes (while still serving the open
 * session); the checks take it down, the session is closed with reason
 * `backend_down`, and the client's reconnect lands on the live backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { reservePort, readLine, waitFor } from '../helpers/net.js';
import { deadline, dial, listenOn, lo, watchEnd } from './helpers.js';

const HOST = lo(51);

/** IMAP-ish: greets (unless silent), answers `tag IDLE` with `+ idling` then `* N EXISTS` every 100 ms. */
async function imapServer(name: string) {
  const state = { silent: false, idling: 0 };
  const srv = await listenOn(HOST, (s) => {
    if (state.silent) return void s.resume(); // probes: accepted, never greeted
    s.write(`* OK [CAPABILITY IMAP4rev1 IDLE] ${name} ready\r\n`);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        const [tag, cmd] = line.split(' ');
        if (cmd?.toUpperCase() === 'IDLE') {
          state.idling++;
          s.write('+ idling\r\n');
          let n = 0;
          const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(`* ${++n} EXISTS\r\n`)), 100);
          s.on('close', () => clearInterval(t));
        } else if (cmd?.toUpperCase() === 'LOGOUT') {
          s.end(`* BYE\r\n${tag} OK LOGOUT completed\r\n`);
        }
      }
    });
  });
  return Object.assign(srv, { name, state });
}

test('onMarkedDown shutdown: an IDLE session on a backend that goes silent is closed (backend_down); the reconnect lands on the live one', { timeout: 30000 }, async (t) => {
  const a = await imapServer('A');
  const b = await imapServer('B');
  t.after(() => Promise.all([a.close(), b.close()]));
  const port = await reservePort(HOST);
  const interval = 100;
  const timeout = 80;
  const fall = 2;
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "imap", idleTimeout: "30m" }],
    upstreams: { imap: { onMarkedDown: "shutdown",
      check: { type: "imap", interval: ${interval}, timeout: ${timeout}, rise: 2, fall: ${fall} },
      servers: [{ address: "${HOST}:${a.port}", maxFails: 0 }, { address: "${HOST}:${b.port}", maxFails: 0 }] } },
    log: { access: null },
  }`);
  t.after(() => app.stopNow());
  await waitFor(() => app.runtime.backends().every((x) => x.op === 'up'), { timeoutMs: 3000, what: 'first probes' });

  const c = await dial(port, HOST);
  const greeting = await readLine(c);
  const home = /\bA ready/.test(greeting) ? a : b;
  const live = home === a ? b : a;
  c.write('a1 IDLE\r\n');
  assert.equal(await readLine(c), '+ idling\r');
  let exists = 0;
  c.on('data', (d: Buffer) => (exists += (d.toString().match(/EXISTS/g) ?? []).length));
  const end = watchEnd(c);
  await waitFor(() => exists >= 3, { timeoutMs: 2000, what: 'IDLE updates' });

  const silentAt = Date.now();
  home.state.silent = true;
  const r = await Promise.race([end, deadline(3000)]);
  assert.ok(r !== undefined, 'IDLE session still open 3 s after its backend went silent to probes');
  const ms = r.at - silentAt;
  await waitFor(() => app.records.length, { until: (n) => n >= 1, timeoutMs: 2000, what: 'access record' });
  const rec = app.records[0]!;
  assert.equal(rec.reason, 'backend_down');
  assert.equal(rec.backend, `imap/${HOST}:${home.port}`);
  assert.ok(exists >= 3, 'the session was alive (IDLE updates) until it was closed');

  // The client reconnects: it must land on the live backend.
  const reconnectAt = Date.now();
  const c2 = await dial(port, HOST);
  const g2 = await readLine(c2);
  const reconnectMs = Date.now() - reconnectAt;
  c2.destroy();
  assert.match(g2, new RegExp(`\\b${live.name} ready`), `reconnect got ${JSON.stringify(g2)}`);
  const bound = fall * interval + timeout;
  console.log(
    `onMarkedDown shutdown: IDLE session on ${home.name} closed ${ms} ms after it went silent (fall*interval+timeout = ${bound} ms), ` +
      `${exists} IDLE updates relayed before; reconnect served by ${live.name} in ${reconnectMs} ms`,
  );
  assert.ok(ms <= bound + 250, `session closed ${ms} ms after the backend went silent (bound ${bound} ms + 250 ms slack)`);
});
