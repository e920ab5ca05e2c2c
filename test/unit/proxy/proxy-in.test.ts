/**
 * Reading PROXY headers from a trusted front tier: v1 and v2 framed out of
 * the stream (split anywhere), the client's bytes after the header kept,
 * LOCAL/UNKNOWN carry no client, and malformed or oversized headers refused
 * — including a seeded fuzz of random and mutated headers that must never
 * throw, never accept a non-IP address, and never hold more than the bound.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { buildProxyHeader } from '../../../src/core/proxy-header.js';
import { ProxyHeaderReader, readHeader, V2_MAX } from '../../../src/proxy/proxy-in.js';

const e4 = { srcAddr: '203.0.113.7', srcPort: 51000, dstAddr: '192.0.2.1', dstPort: 143 };
const e6 = { srcAddr: '2001:db8::7', srcPort: 51000, dstAddr: '2001:db8:0:0:1::1', dstPort: 993 };

test('v1 and v2 headers, IPv4 and IPv6, split at every byte; the bytes after the header are the client\'s', () => {
  for (const v of ['v1', 'v2'] as const) {
    for (const e of [e4, e6]) {
      const whole = Buffer.concat([buildProxyHeader(v, e), Buffer.from('a1 LOGIN x y\r\n')]);
      for (let cut = 1; cut < whole.length; cut++) {
        const r = new ProxyHeaderReader();
        let res = r.push(whole.subarray(0, cut));
        let after = whole.subarray(cut);
        if (res.state === 'more') {
          res = r.push(after);
          after = Buffer.alloc(0);
        }
        assert.equal(res.state, 'done', `${v} cut at ${cut}: ${JSON.stringify(res)}`);
        if (res.state !== 'done') return;
        assert.deepEqual(res.info, { version: v === 'v1' ? 1 : 2, kind: 'proxied', srcAddr: e.srcAddr, srcPort: 51000, dstAddr: e === e4 ? '192.0.2.1' : '2001:db8::1:0:0:1', dstPort: e.dstPort });
        assert.equal(Buffer.concat([res.rest, after]).toString(), 'a1 LOGIN x y\r\n');
      }
    }
  }
});

test('LOCAL and UNKNOWN name no client; anything else is refused with a reason', () => {
  assert.deepEqual(readHeader(Buffer.from('PROXY UNKNOWN\r\n')), { state: 'done', info: { version: 1, kind: 'local' }, rest: Buffer.alloc(0) });
  const local = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);
  assert.deepEqual(readHeader(local), { state: 'done', info: { version: 2, kind: 'local' }, rest: Buffer.alloc(0) });
  const bad = (s: string | Buffer): string => {
    const r = readHeader(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
    assert.equal(r.state, 'error', JSON.stringify(s));
    return (r as { error: string }).error;
  };
  assert.match(bad('* OK IMAP ready\r\n'), /no PROXY header/);
  assert.match(bad('PROXY TCP4 evil.example 192.0.2.1 1 2\r\n'), /not TCP4 literals/);
  assert.match(bad('PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n'), /not TCP4 literals/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), /port/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), /port/);
  assert.match(bad('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), /malformed v1|not TCP4/);
  assert.match(bad(`PROXY TCP4 ${'1'.repeat(120)}`), /without CRLF/);
  const huge = Buffer.concat([local.subarray(0, 14), Buffer.from([0x11, 0x00]), Buffer.alloc(0)]);
  huge.writeUInt16BE(V2_MAX, 14);
  huge[12] = 0x21;
  assert.match(bad(huge), /v2 header of \d+ bytes/);
  const v3 = Buffer.from(local);
  v3[12] = 0x31;
  assert.match(bad(v3), /version 3/);
  const udp = buildProxyHeader('v2', e4);
  udp[13] = 0x12;
  assert.match(bad(udp), /transport 2 is not TCP/);
});

test('fuzz: 20,000 random and mutated headers never throw, never yield a non-IP client, never need more than the bound', () => {
  let seed = Number(process.env.TCPLB_SEED ?? 20261203);
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const seeds = [buildProxyHeader('v1', e4), buildProxyHeader('v1', e6), buildProxyHeader('v2', e4), buildProxyHeader('v2', e6), Buffer.from('PROXY UNKNOWN\r\n')];
  const counts = { done: 0, error: 0, more: 0 };
  for (let i = 0; i < 20_000; i++) {
    let b: Buffer;
    if (i % 4 === 0) b = Buffer.from(Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
    else {
      b = Buffer.from(seeds[Math.floor(rnd() * seeds.length)]!);
      for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.3) b = b.subarray(0, Math.floor(rnd() * b.length));
    }
    const r = readHeader(b);
    counts[r.state]++;
    if (r.state === 'done' && r.info.kind === 'proxied') {
      assert.ok(net.isIP(r.info.srcAddr) !== 0 && net.isIP(r.info.dstAddr) !== 0, `accepted a non-IP client from ${b.toString('hex')}`);
      assert.ok(r.info.srcPort >= 0 && r.info.srcPort <= 65535);
    }
    if (r.state === 'more') assert.ok(b.length < V2_MAX, 'asked for more past the bound');
  }
  assert.ok(counts.done > 100 && counts.error > 1000, JSON.stringify(counts));
});
