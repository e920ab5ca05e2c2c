/**
 * Fault: bad input on a TLS listener. A real tcplb child with one TLS
 * listener (`handshakeTimeout: "1s"`) gets, in turn: 200 clients sending
 * plain text instead of a ClientHello, a client that sends half a
 * ClientHello and stalls, and 1,000 handshakes aborted mid-way (half a
 * ClientHello, then a reset), 50 at a time. The process must stay up and
 * keep serving TLS clients, the staller must be closed by the handshake
 * timeout, memory must stay bounded, no backend is dialled for a failed
 * handshake, and the log must say it per kind and second, not per client.
 *
 * Addresses: 127.0.0.66 (listener and backend), clients from 127.0.0.67.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { makePki } from '../fixtures/pki.js';
import { reservePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';
import { backendReport, dial, lo, memOf, startBackend, startProxy, tmpDir, writeConfig } from './helpers.js';

const HOST = lo(66);
const CLIENT = lo(67);

/** The first flight of a real TLS client (a ClientHello record), captured from node's tls. */
async function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, CLIENT, () => {
      const c = tls.connect({ host: CLIENT, port: (srv.address() as net.AddressInfo).port, servername: 'mail.a.test' });
      c.on('error', () => {});
    });
    srv.on('error', reject);
  });
}

/** A TLS client through the listener reads the backend's greeting. */
function tlsGreeted(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: HOST, port, servername: 'mail.a.test', ca: fs.readFileSync(ca), ...({ localAddress: CLIENT } as object) });
    const t = setTimeout(() => done(false), 5000);
    function done(ok: boolean): void {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    }
    s.once('data', (d: Buffer) => done(d.toString().startsWith('hello')));
    s.once('error', () => done(false));
  });
}

/** Connect, write `bytes`, then either reset at once or wait for the proxy to close; resolves when closed. */
async function badClient(port: number, bytes: Buffer, how: 'reset' | 'wait'): Promise<void> {
  const s = await dial(port, HOST, CLIENT);
  s.on('error', () => {});
  s.write(bytes);
  if (how === 'reset') {
    s.resetAndDestroy();
    return;
  }
  await new Promise<void>((r) => {
    s.once('close', () => r());
    s.once('end', () => {
      s.destroy();
      r();
    });
    s.resume();
  });
}

test('TLS listener under bad input: garbage, a staller, 1,000 aborted handshakes: no crash, bounded memory, closed on time, a log line per kind per second', { timeout: 120_000 }, async (t) => {
  const pki = makePki();
  const leaf = pki.leaf('faults', ['mail.a.test']);
  const be = await startBackend('greet', HOST);
  t.after(() => be.kill());
  const port = await reservePort(HOST);
  const file = writeConfig(tmpDir('tls'), `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "b", maxConnections: 0,
                  tls: { certificates: [{ cert: "${leaf.cert}", key: "${leaf.key}" }], handshakeTimeout: "1s" } }],
    upstreams: { b: { servers: [{ address: "${HOST}:${be.port}", maxFails: 0 }] } },
    log: { access: null },
  }`);
  const proxy = await startProxy(file);
  t.after(() => proxy.kill());
  assert.ok(await tlsGreeted(port, pki.caFile), 'a TLS client is served before the faults');
  const hello = await clientHello();
  const before = memOf(proxy.pid).rss;
  const started = Date.now();

  // 1. Plain text instead of a ClientHello, 200 clients, 20 at a time: each is closed by the proxy.
  for (let i = 0; i < 200; i += 20) {
    await Promise.all(Array.from({ length: 20 }, () => badClient(port, Buffer.from('GET / HTTP/1.0\r\nHost: x\r\n\r\n'), 'wait')));
  }

  // 2. Half a ClientHello, then silence: closed by the handshake timeout (1 s), not before, not much later.
  const t0 = Date.now();
  await badClient(port, hello.subarray(0, Math.floor(hello.length / 2)), 'wait');
  const stalled = Date.now() - t0;
  assert.ok(stalled >= 900 && stalled < 4000, `staller closed after ${stalled} ms (handshakeTimeout 1s)`);

  // 3. 1,000 handshakes aborted mid-way, 50 at a time.
  for (let i = 0; i < 1000; i += 50) {
    await Promise.all(Array.from({ length: 50 }, () => badClient(port, hello.subarray(0, 40), 'reset')));
  }
  const faultMs = Date.now() - started;

  // Still up, still serving TLS, nothing left open from the bad clients, memory bounded.
  assert.equal(proxy.child.exitCode, null, `the proxy exited:\n${proxy.stderr()}`);
  assert.ok(await tlsGreeted(port, pki.caFile), 'a TLS client is served after the faults');
  const after = memOf(proxy.pid).rss;
  assert.ok(after - before < 32, `RSS grew ${(after - before).toFixed(1)} MB over 1,201 failed handshakes (${before.toFixed(1)} -> ${after.toFixed(1)} MB)`);
  const report = await backendReport(be);
  assert.equal(report.conns, 2, 'only the two good clients reached the backend');

  // One line per kind per second (and a first line per kind), never one per client.
  // The summary of the last second comes at its end: wait for every failure to be counted.
  const handshakeLines = (): string[] => proxy.stderr().split('\n').filter((l) => l.includes('TLS handshake failed'));
  const countOf = (ls: string[]): number => ls.reduce((n, l) => n + (/: (\d+) more in the last second/.exec(l) ? Number(/: (\d+) more/.exec(l)![1]) : 1), 0);
  await waitFor(() => countOf(handshakeLines()), { what: 'every failed handshake counted in the log', until: (n) => n >= 1201, timeoutMs: 8000 }).catch(() => undefined);
  const lines = handshakeLines();
  assert.match(lines.join('\n'), /not a TLS ClientHello/);
  assert.match(lines.join('\n'), /handshake timeout/);
  assert.match(lines.join('\n'), /client (closed|reset) during the handshake/);
  const kinds = new Set(lines.map((l) => /TLS handshake failed: ([^:(]+)/.exec(l)?.[1]?.trim()));
  const bound = kinds.size * (Math.ceil((Date.now() - started) / 1000) + 2);
  assert.ok(lines.length <= bound, `${lines.length} handshake log lines for 1,201 failures in ${faultMs} ms (${kinds.size} kinds; at most ${bound}):\n${lines.join('\n')}`);
  const counted = countOf(lines);
  assert.equal(counted, 1201, 'every failure is counted in the log');
  console.log(`tls faults: ${lines.length} log lines (${[...kinds].join(' / ')}) for ${counted} failures counted in ${faultMs} ms; staller closed after ${stalled} ms; RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
  pki.cleanup();
});
