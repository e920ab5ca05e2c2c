/**
 * A listener behind a front tier (`acceptProxyProtocol`): the client named
 * by a v1 or v2 PROXY header from a trusted address is the client for
 * ip_hash (the same choice `ctl explain` names), allow/deny, the access log
 * and the PROXY header sent on to the backend; the bytes after the header
 * reach the backend intact. A header from an address outside `from`, a
 * malformed header or none in time: the connection is refused, no backend
 * is dialled, and the log says why once per kind. Runs on each engine
 * (TCPLB_ENGINE): the native engine serves such listeners on its JS path.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { buildProxyHeader } from '../../src/core/proxy-header.js';
import type { Explanation } from '../../src/runtime/explain.js';
import { startTestApp } from '../helpers/app.js';
import { listen, reservePort, waitFor } from '../helpers/net.js';

/** A backend that answers with its name and the first line it got (the PROXY header tcplb sent), then echoes. */
function recorder(name: string): (s: net.Socket) => void {
  return (s) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      s.off('data', onData);
      s.write(`${name} ${buf.slice(0, nl + 1)}`);
      const rest = buf.slice(nl + 1);
      if (rest !== '') s.write(rest);
      s.pipe(s);
    };
    s.on('data', onData);
  };
}

/** Connect from `local`, send `bytes`, read until the proxy or backend closes or `want` matches. */
function exchange(port: number, bytes: Buffer, opts: { local?: string; want?: RegExp; ms?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.local });
    let text = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), opts.ms ?? 3000);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (opts.want?.test(text)) done(false);
    });
    s.on('error', () => {});
    s.on('close', () => done(true));
  });
}

const hdr = (v: 'v1' | 'v2', src: string, srcPort = 51000): Buffer =>
  buildProxyHeader(v, { srcAddr: src, srcPort, dstAddr: src.includes(':') ? '2001:db8::1' : '192.0.2.1', dstPort: 143 });

test('acceptProxyProtocol: the front tier\'s client drives ip_hash, allow/deny, logs and the header sent on; untrusted, malformed and late headers are refused', async (t) => {
  const names = ['A', 'B', 'C'];
  const backs = await Promise.all(names.map((n) => listen(recorder(n))));
  t.after(() => Promise.all(backs.map((b) => b.close())));
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ name: "mx", listen: "127.0.0.1:${port}", upstream: "u", proxyProtocol: "v1",
                  deny: ["203.0.113.66"], acceptProxyProtocol: { from: ["127.0.0.1/32"], timeout: "300ms" } }],
    upstreams: { u: { balance: "ip_hash", servers: [${backs.map((b) => `"127.0.0.1:${b.port}"`).join(', ')}] } },
  }`);
  t.after(() => app.stopNow());
  const nameOf = new Map(backs.map((b, i) => [`u/127.0.0.1:${b.port}`, names[i]!]));

  // 30 clients named by v1 and v2 headers: each reaches the backend explain names, which sees the header naming it.
  const seen = new Set<string>();
  for (let i = 1; i <= 30; i++) {
    const client = i % 3 === 0 ? `2001:db8::${i.toString(16)}` : `198.51.100.${i}`;
    const v = i % 2 === 0 ? 'v2' : 'v1';
    const r = await exchange(port, Buffer.concat([hdr(v, client, 40000 + i), Buffer.from(`hello ${i}\n`)]), { want: new RegExp(`hello ${i}\\n`) });
    const chosen = (app.actions.explain(client, 'mx') as Explanation).chosen!;
    const want = nameOf.get(chosen)!;
    seen.add(want);
    const fam = client.includes(':') ? 'TCP6' : 'TCP4';
    assert.match(r.text, new RegExp(`^${want} PROXY ${fam} ${client.replace(/[.]/g, '\\.')} \\S+ ${40000 + i} \\d+\\r\\nhello ${i}\\n$`), `client ${client} (${v}): ${JSON.stringify(r.text)}`);
  }
  assert.equal(seen.size, 3, 'ip_hash spread the named clients over every backend');
  await waitFor(() => app.records.length, { until: (n) => n >= 30, what: 'records', timeoutMs: 3000 });
  assert.equal(app.records[0]!.client, '198.51.100.1', 'the access log names the front tier\'s client');
  assert.equal(app.records[0]!.clientPort, 40001);

  // deny applies to the named client.
  const denied = await exchange(port, Buffer.concat([hdr('v1', '203.0.113.66'), Buffer.from('x\n')]));
  assert.equal(denied.text, '');
  assert.equal(denied.closed, true);
  await waitFor(() => app.records.find((r) => r.client === '203.0.113.66'), { what: 'the denied record', timeoutMs: 3000 });
  assert.equal(app.records.find((r) => r.client === '203.0.113.66')!.reason, 'denied');

  // Not the front tier: refused even with a valid header naming someone else (no spoofing).
  const before = app.records.length;
  const spoof = await exchange(port, Buffer.concat([hdr('v1', '198.51.100.1'), Buffer.from('x\n')]), { local: '127.0.0.9' });
  assert.deepEqual(spoof, { text: '', closed: true });
  await waitFor(() => app.records.length, { until: (n) => n > before, what: 'the refused record', timeoutMs: 3000 });
  const last = app.records.at(-1)!;
  assert.equal(last.client, '127.0.0.9');
  assert.equal(last.reason, 'denied');
  assert.equal(last.backend, '');

  // From the front tier but malformed, or nothing in time: refused, logged once per kind.
  assert.deepEqual(await exchange(port, Buffer.from('EHLO not-a-header\r\n')), { text: '', closed: true });
  assert.deepEqual(await exchange(port, Buffer.from('PROXY TCP4 evil.example 192.0.2.1 1 2\r\n')), { text: '', closed: true });
  const t0 = Date.now();
  const late = await exchange(port, Buffer.alloc(0), { ms: 3000 });
  assert.equal(late.closed, true);
  assert.ok(Date.now() - t0 >= 250 && Date.now() - t0 < 2500, `closed after ${Date.now() - t0} ms (timeout 300 ms)`);
  for (let i = 0; i < 20; i++) await exchange(port, Buffer.from('garbage\r\n'));
  const logged = app.lines.filter((l) => l.includes('PROXY header refused'));
  assert.ok(logged.some((l) => /no PROXY header/.test(l)), logged.join('\n'));
  assert.ok(logged.some((l) => /not TCP4 literals/.test(l)), logged.join('\n'));
  assert.ok(logged.some((l) => /no complete header within 300 ms/.test(l)), logged.join('\n'));
  assert.ok(logged.length <= 6, `one line per kind, not per connection: ${logged.length}\n${logged.join('\n')}`);
});
