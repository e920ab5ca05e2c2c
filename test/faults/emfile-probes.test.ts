/**
 * Fault 5b: out of file descriptors, seen by the health checks. tcplb runs
 * under `ulimit -n 100` with 4 checked backends (tcp every 100 ms, fall 2) and
 * `onMarkedDown: "shutdown"`; one healthy session is open through it. A
 * connection flood (150 clients, each reopened as soon as it closes) then
 * holds tcplb's descriptors for 3 s (30 probe intervals): the data path sheds
 * the odd client, leaving at most one descriptor free now and then, so most
 * probes' connects fail with EMFILE on tcplb's own side. That says nothing
 * about the backends: none may be marked DOWN, the open session must not be
 * closed, and the log must name tcplb's own descriptor shortage, rate-limited.
 * (Before the fix: 35 / 44 DOWN transitions in the 3 s, and the session closed.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reservePort, readLine } from '../helpers/net.js';
import { waitUntil } from '../helpers/wait.js';
import { dial, listenOn, lo, sleep, startFlood, startProxy, tmpDir, watchEnd, writeConfig } from './helpers.js';

const HOST = lo(66);
const CROWD_FROM = lo(67);
const NOFILE = 100;
const CROWD = 150;
const FLOOD_MS = 3000;
const INTERVAL = 100;
const FALL = 2;
const BACKENDS = 4;
/** How long after the crowd left the probes must be running normally again (checked from the log). */
const RECOVERY_MS = 3500;

test(`EMFILE in the health checks: ${FLOOD_MS / 1000} s out of descriptors under ulimit -n ${NOFILE} do not mark the backend DOWN nor close its sessions`, { timeout: 60_000 }, async (t) => {
  // Greet, then echo; answer a FIN a second late (a server finishing its work). A probe
  // then holds its descriptor while it drains, so probes of several backends compete
  // for the odd descriptor the data path leaves free.
  const bes = await Promise.all(
    Array.from({ length: BACKENDS }, () =>
      listenOn(
        HOST,
        (s) => {
          s.write('hello\n');
          s.on('data', (d: Buffer) => s.write(d));
          s.on('end', () => setTimeout(() => s.end(), 1000).unref());
        },
        0,
        { allowHalfOpen: true },
      ),
    ),
  );
  t.after(() => Promise.all(bes.map((b) => b.close())));
  const dir = tmpDir('emfile-probes');
  const port = await reservePort(HOST);
  const ids = bes.map((b) => `b/${HOST}:${b.port}`);
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", connectTimeout: "2s", idleTimeout: "5m" }],
    upstreams: { b: { onMarkedDown: "shutdown",
      check: { type: "tcp", interval: ${INTERVAL}, timeout: 80, rise: 1, fall: ${FALL} },
      servers: [${bes.map((b) => `{ address: "${HOST}:${b.port}", maxFails: 0 }`).join(', ')}] } },
    log: { access: null, level: "info" },
  }`,
  );
  const px = await startProxy(file, { nofile: NOFILE });
  t.after(() => px.kill());
  const allUp = (): boolean => ids.every((id) => px.stderr().includes(`${id} UNKNOWN -> UP`));
  await waitUntil(allUp, { what: 'every backend UP', timeoutMs: 2500, intervalMs: 50 });
  assert.ok(allUp(), `the backends did not come UP before the overload; stderr:\n${px.stderr()}`);

  // The long-lived healthy session (an IMAP IDLE, say), opened before the overload.
  const session = await dial(port, HOST);
  assert.equal(await readLine(session), 'hello');
  const end = watchEnd(session);
  let echoed = '';
  session.on('data', (d: Buffer) => (echoed += d.toString()));
  const logBefore = px.stderr().length;

  const flood = await startFlood(HOST, port, CROWD, CROWD_FROM, FLOOD_MS);
  t.after(() => flood.kill());
  await sleep(FLOOD_MS / 2); // the scenario: write in the middle of the overload
  session.write('mid-overload\n');
  const floodResult = await flood.next<{ opened: number; refused: number; maxLive: number }>((m) => m.done === true, FLOOD_MS + 10_000);
  const floodDone = Date.now();
  // The crowd's sessions end within a second (the backends' late FIN), then the probes
  // run again; the rate-limited summary trails by up to a second.
  await sleep(RECOVERY_MS); // the scenario: the recovery window the log is checked over
  session.write('after\n');
  let ended = false;
  void end.then(() => (ended = true));
  // The echo of "after" (or the session's end, which the assertions below report).
  await waitUntil(() => ended || echoed.endsWith('after\n'), { what: 'the echo of "after"', timeoutMs: 2000 });
  const closed = await Promise.race([end, sleep(0).then(() => undefined)]);
  session.destroy();

  const log = px.stderr().slice(logBefore);
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const healthLines = lines.filter((l) => /health check/i.test(l));
  const down = lines.filter((l) => /-> DOWN|closed \d+ open connection/.test(l));
  const lastHealthMs = healthLines.length === 0 ? NaN : Date.parse(healthLines[healthLines.length - 1]!.slice(0, 24)) - floodDone;
  console.log(
    `EMFILE in checks: flood of ${CROWD} (${floodResult.opened} opened, ${floodResult.refused} turned away, at most ${floodResult.maxLive} served at once) for ${FLOOD_MS} ms ` +
      `against ulimit -n ${NOFILE}, check every ${INTERVAL} ms fall ${FALL}: ${down.length} DOWN/shutdown lines, session ${closed === undefined ? 'still open' : 'CLOSED'}, ` +
      `${healthLines.length} health-check log lines, the last ${lastHealthMs} ms after the crowd left`,
  );
  for (const l of [...healthLines, ...down].slice(0, 8)) console.log(`  stderr: ${l}`);
  assert.ok(px.child.exitCode === null && px.child.signalCode === null, `proxy exited; stderr:\n${px.stderr()}`);
  // The overload must really have reached the probes, or the test proves nothing.
  assert.ok(
    healthLines.some((l) => /EMFILE/.test(l) && /out of file descriptors/.test(l) && /tcplb/.test(l)),
    `no log line blaming tcplb's own descriptor shortage for failed probes; log:\n${lines.slice(0, 30).join('\n')}`,
  );
  assert.deepEqual(down, [], 'the backend was marked DOWN (or its sessions closed) for tcplb running out of descriptors');
  assert.equal(closed, undefined, 'the healthy session was closed');
  assert.equal(echoed, 'mid-overload\nafter\n', 'the healthy session stopped relaying');
  // Rate-limited: at most one line at once and one summary a second.
  const secs = (FLOOD_MS + RECOVERY_MS) / 1000;
  assert.ok(healthLines.length <= Math.ceil(secs) + 2, `${healthLines.length} health-check lines in ${secs} s: not rate-limited`);
  // And it ends: once descriptors are back, probes run (and pass) again.
  assert.ok(lastHealthMs <= RECOVERY_MS - 1000, `probes still failing locally ${lastHealthMs} ms after the crowd left`);
});
