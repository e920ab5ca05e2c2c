/**
 * Fault: bad clients on a STARTTLS listener. A real tcplb child with one
 * IMAP STARTTLS listener (`handshakeTimeout: "1s"`) in front of a fake IMAP
 * server gets, 50 at a time: 100 clients that reset right after `a STARTTLS`
 * (with a pipelined command), 100 that answer `a OK` with plain text instead
 * of a ClientHello, 100 that send a 9,000-byte line, and 50 that stall after
 * `a OK`. The process must stay up and keep upgrading good clients, close
 * the stallers by the timeout, keep memory bounded, never let a pipelined
 * command reach the backend, and log per kind and second, not per client.
 *
 * Addresses: 127.0.0.68 (listener, clients), 127.0.0.69 (backend).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { makePki } from '../fixtures/pki.js';
import { startFakeStarttls } from '../fixtures/servers/starttls.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';
import { dial, lo, memOf, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(68);
const BACKEND = lo(69);

/** Read from `s` until `re` matches what arrived (or it closes); resolves with it. */
function readUntil(s: net.Socket, re: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const t = setTimeout(() => done(), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      if (re.test(buf)) done();
    };
    function done(): void {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', done);
      resolve(buf);
    }
    s.on('data', onData);
    s.once('close', done);
  });
}

/** Resolves when the proxy has closed `s` (FIN or reset). */
function closedByProxy(s: net.Socket): Promise<void> {
  return new Promise((r) => {
    s.once('close', () => r());
    s.once('end', () => {
      s.destroy();
      r();
    });
    s.resume();
  });
}

async function client(port: number, kind: 'reset' | 'garbage' | 'long' | 'stall'): Promise<number> {
  const s = await dial(port, HOST, HOST);
  s.on('error', () => {});
  await readUntil(s, /\r\n/);
  const t0 = Date.now();
  if (kind === 'long') {
    s.write(`a ${'x'.repeat(9000)}`);
    await closedByProxy(s);
    return Date.now() - t0;
  }
  // The upgrade is bounded from the command on (the backend's part included).
  const t1 = Date.now();
  s.write('a STARTTLS\r\nb LOGIN injected pass\r\n');
  if (kind === 'reset') {
    s.resetAndDestroy();
    return 0;
  }
  const ok = await readUntil(s, /a OK .*\r\n/);
  assert.match(ok, /a OK /);
  const t2 = Date.now();
  if (kind === 'garbage') s.write('GET / HTTP/1.0\r\n\r\n');
  await closedByProxy(s);
  return Date.now() - (kind === 'stall' ? t1 : t2);
}

/** A good client: upgrades, verifies mail.a.test, gets an answer from inside TLS. */
async function good(port: number, ca: string): Promise<boolean> {
  const s = await dial(port, HOST, HOST);
  await readUntil(s, /\r\n/);
  s.write('a STARTTLS\r\n');
  await readUntil(s, /a OK .*\r\n/);
  const t = tls.connect({ socket: s, servername: 'mail.a.test', ca: fs.readFileSync(ca) });
  const ok = await new Promise<boolean>((r) => t.once('secureConnect', () => r(true)).once('error', () => r(false)));
  if (!ok) return false;
  t.write('c NOOP\r\n');
  const line = await readUntil(t, /\r\n/);
  t.destroy();
  return /^c OK NOOP tls/.test(line);
}

test('STARTTLS listener under bad clients: resets, garbage after OK, long lines, stallers: no crash, bounded memory, nothing injected, a log line per kind per second', { timeout: 120_000 }, async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('faults', ['mail.a.test']);
  const bleaf = pki.leaf('backend', ['backend.test']);
  const be = await startFakeStarttls({ protocol: 'imap', host: BACKEND, cert: fs.readFileSync(bleaf.cert, 'utf8'), key: fs.readFileSync(bleaf.key, 'utf8') });
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const file = writeConfig(tmpDir('starttls'), `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", maxConnections: 0, starttls: "imap",
                  tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }], handshakeTimeout: "1s" } }],
    upstreams: { b: { servers: [{ address: "${BACKEND}:${be.port}", maxFails: 0 }], tls: { ca: "${pki.caFile}", servername: "backend.test" } } },
    log: { access: null },
  }`);
  const proxy = await startProxy(file);
  t.after(() => proxy.kill());
  assert.ok(await good(port, pki.caFile), 'a STARTTLS client is served before the faults');
  const before = memOf(proxy.pid).rss;
  const started = Date.now();
  const batch = async (kind: 'reset' | 'garbage' | 'long' | 'stall', n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => client(port, kind)))));
    return out;
  };
  await batch('reset', 100);
  const garbage = await batch('garbage', 100);
  const long = await batch('long', 100);
  const stalls = await batch('stall', 50);
  const faultMs = Date.now() - started;

  assert.equal(proxy.child.exitCode, null, `the proxy exited:\n${proxy.stderr()}`);
  assert.ok(await good(port, pki.caFile), 'a STARTTLS client is served after the faults');
  assert.ok(Math.max(...garbage) < 1000, `garbage after OK closed at once (slowest ${Math.max(...garbage)} ms)`);
  assert.ok(Math.max(...long) < 1000, `long lines closed at once (slowest ${Math.max(...long)} ms)`);
  assert.ok(Math.min(...stalls) >= 950 && Math.max(...stalls) < 4000, `stallers closed ${Math.min(...stalls)}-${Math.max(...stalls)} ms after their STARTTLS (handshakeTimeout 1s)`);
  const after = memOf(proxy.pid).rss;
  assert.ok(after - before < 32, `RSS grew ${(after - before).toFixed(1)} MB over 350 bad clients (${before.toFixed(1)} -> ${after.toFixed(1)} MB)`);
  assert.deepEqual(be.seen.filter((l) => /injected/.test(l)), [], 'no pipelined LOGIN ever reached the backend');
  // Clients that left mid-upgrade are not the backend's fault: no failed connect is counted.
  assert.doesNotMatch(proxy.stderr(), /connect to b\/.* failed/, 'no failure counted against the backend');

  await waitFor(() => proxy.stderr(), {
    what: 'the log lines per kind',
    until: (s) => /STARTTLS: client line over 8192 bytes before TLS, session closed/.test(s) && /TLS handshake failed: not a TLS ClientHello/.test(s) && /TLS handshake failed: handshake timeout/.test(s),
    timeoutMs: 5000,
  });
  const lines = proxy.stderr().split('\n').filter((l) => /STARTTLS:|TLS handshake failed/.test(l));
  const kinds = new Set(lines.map((l) => /listener \S+: (.*?)(?: \(client [^)]*\)$|: \d+ more in the last second$)/.exec(l)?.[1] ?? l));
  const bound = kinds.size * (Math.ceil(faultMs / 1000) + 2);
  assert.ok(lines.length <= bound, `${lines.length} log lines for 350 bad clients in ${faultMs} ms (${kinds.size} kinds; at most ${bound}):\n${lines.join('\n')}`);
  console.log(`starttls faults: ${lines.length} log lines (${[...kinds].join(' / ')}) in ${faultMs} ms; garbage closed within ${Math.max(...garbage)} ms, long lines within ${Math.max(...long)} ms, stallers ${Math.min(...stalls)}-${Math.max(...stalls)} ms after their STARTTLS; RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
});
