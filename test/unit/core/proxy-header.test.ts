/**
 * buildProxyHeader against HAProxy's proxy-protocol.txt, byte for byte.
 *
 * The expected bytes are written out literally from the spec (section 2.1 for
 * the v1 text line, 2.2 for the v2 binary block) and, for good measure, read
 * back by a small parser written here from the spec alone (proxy-protocol-js is
 * not installed, so no third-party parser is used).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProxyHeader, type Endpoints } from '../../../src/core/proxy-header.js';

// ---------------------------------------------------------------------------
// an independent reader, straight from the spec

/** \x0D \x0A \x0D \x0A \x00 \x0D \x0A \x51 \x55 \x49 \x54 \x0A */
const SIG = '0d0a0d0a000d0a515549540a';

type Parsed =
  | { version: 1; proto: 'TCP4' | 'TCP6'; src: string; dst: string; sport: number; dport: number }
  | { version: 1; proto: 'UNKNOWN' }
  | { version: 2; command: 'LOCAL' | 'PROXY'; family: number; transport: number; length: number; src?: string; dst?: string; sport?: number; dport?: number };

/** Parse one v1 line or v2 block; the header must be all of `buf`. */
function parse(buf: Buffer): Parsed {
  if (buf.subarray(0, 12).toString('hex') === SIG) {
    assert.ok(buf.length >= 16, 'v2: 16-byte fixed part');
    const verCmd = buf[12]!;
    assert.equal(verCmd >> 4, 2, 'v2: version nibble is 2');
    const cmd = verCmd & 0x0f;
    assert.ok(cmd === 0 || cmd === 1, `v2: command 0 (LOCAL) or 1 (PROXY), got ${cmd}`);
    const famByte = buf[13]!;
    const length = buf.readUInt16BE(14);
    assert.equal(buf.length, 16 + length, 'v2: len covers exactly the rest of the block');
    const family = famByte >> 4;
    const transport = famByte & 0x0f;
    const out: Parsed = { version: 2, command: cmd === 0 ? 'LOCAL' : 'PROXY', family, transport, length };
    if (family === 1) {
      assert.ok(length >= 12, 'v2 AF_INET: 12 address bytes');
      out.src = [...buf.subarray(16, 20)].join('.');
      out.dst = [...buf.subarray(20, 24)].join('.');
      out.sport = buf.readUInt16BE(24);
      out.dport = buf.readUInt16BE(26);
    } else if (family === 2) {
      assert.ok(length >= 36, 'v2 AF_INET6: 36 address bytes');
      const v6 = (b: Buffer) => Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
      out.src = v6(buf.subarray(16, 32));
      out.dst = v6(buf.subarray(32, 48));
      out.sport = buf.readUInt16BE(48);
      out.dport = buf.readUInt16BE(50);
    }
    return out;
  }
  const text = buf.toString('latin1');
  assert.ok(text.startsWith('PROXY '), `v1 starts with "PROXY ": ${JSON.stringify(text)}`);
  assert.ok(text.endsWith('\r\n'), 'v1 ends with CRLF');
  assert.equal(text.indexOf('\r\n'), text.length - 2, 'v1: one line');
  assert.ok(buf.length <= 107, 'v1: at most 107 bytes including CRLF');
  const parts = text.slice(0, -2).split(' ');
  if (parts[1] === 'UNKNOWN') return { version: 1, proto: 'UNKNOWN' };
  assert.equal(parts.length, 6, `v1: PROXY proto src dst sport dport (single spaces): ${JSON.stringify(text)}`);
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  assert.ok(proto === 'TCP4' || proto === 'TCP6', `v1 protocol ${proto}`);
  for (const p of [sport, dport]) assert.match(p, /^(0|[1-9]\d{0,4})$/, 'v1 port: decimal, no leading zeros');
  if (proto === 'TCP4') {
    for (const a of [src, dst]) assert.match(a, /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/, 'v1 TCP4 dotted quad');
  } else {
    for (const a of [src, dst]) assert.match(a, /^[0-9a-fA-F:.]+$/, 'v1 TCP6 address characters');
  }
  return { version: 1, proto, src, dst, sport: Number(sport), dport: Number(dport) };
}

/** Hex from a commented listing: the first word of each line is hex, the rest is comment. */
const hex = (s: string) =>
  Buffer.from(
    s.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').join(''),
    'hex',
  );
const ep = (srcAddr: string, srcPort: number, dstAddr: string, dstPort: number): Endpoints => ({ srcAddr, srcPort, dstAddr, dstPort });

// ---------------------------------------------------------------------------
// v1

test('v1 TCP4: "PROXY TCP4 src dst sport dport\\r\\n", exactly', () => {
  const h = buildProxyHeader('v1', ep('192.168.0.1', 56324, '192.168.0.11', 443));
  assert.equal(h.toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'); // the spec's own example
  assert.deepEqual(parse(h), { version: 1, proto: 'TCP4', src: '192.168.0.1', dst: '192.168.0.11', sport: 56324, dport: 443 });
  // extreme ports
  assert.equal(buildProxyHeader('v1', ep('1.2.3.4', 0, '5.6.7.8', 65535)).toString('latin1'), 'PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n');
});

test('v1 TCP6: addresses as given, ports decimal', () => {
  const h = buildProxyHeader('v1', ep('2001:db8::1', 40000, '2001:db8::2', 993));
  assert.equal(h.toString('latin1'), 'PROXY TCP6 2001:db8::1 2001:db8::2 40000 993\r\n');
  assert.deepEqual(parse(h), { version: 1, proto: 'TCP6', src: '2001:db8::1', dst: '2001:db8::2', sport: 40000, dport: 993 });
  assert.equal(buildProxyHeader('v1', ep('::1', 1, '::1', 2)).toString('latin1'), 'PROXY TCP6 ::1 ::1 1 2\r\n');
});

test('v1 longest possible line (TCP6, full-length addresses, 5-digit ports) fits the 107-byte limit', () => {
  // the longest text inet_ntop (so socket.remoteAddress) produces for IPv6
  const a = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const h = buildProxyHeader('v1', ep(a, 65535, a, 65535));
  assert.equal(h.length, 104);
  assert.ok(h.length <= 107);
  assert.equal(parse(h).version, 1);
});

test('v1 v4-mapped IPv6 client (::ffff:1.2.3.4, dual-stack listener) is reported as TCP4', () => {
  const h = buildProxyHeader('v1', ep('::ffff:1.2.3.4', 5555, '::ffff:10.0.0.1', 143));
  assert.equal(h.toString('latin1'), 'PROXY TCP4 1.2.3.4 10.0.0.1 5555 143\r\n');
  // one side mapped, the other plain IPv4: still TCP4
  assert.equal(buildProxyHeader('v1', ep('::ffff:1.2.3.4', 5555, '10.0.0.1', 143)).toString('latin1'), 'PROXY TCP4 1.2.3.4 10.0.0.1 5555 143\r\n');
});

test('v1 mixed families or unknown addresses: "PROXY UNKNOWN\\r\\n"', () => {
  for (const e of [
    ep('1.2.3.4', 1000, '::1', 2000),
    ep('2001:db8::1', 1000, '10.0.0.1', 2000),
    ep('', 0, '', 0), // what the health scheduler passes
    ep('not-an-ip', 1, '1.2.3.4', 2),
  ]) {
    const h = buildProxyHeader('v1', e);
    assert.equal(h.toString('latin1'), 'PROXY UNKNOWN\r\n', JSON.stringify(e));
    assert.deepEqual(parse(h), { version: 1, proto: 'UNKNOWN' });
  }
});

// ---------------------------------------------------------------------------
// v2

test('v2 TCP4: signature, 0x21 (v2 PROXY), 0x11 (AF_INET STREAM), len 12, addresses, ports', () => {
  const h = buildProxyHeader('v2', ep('192.168.0.1', 56324, '192.168.0.11', 443));
  assert.deepEqual(
    h,
    hex(`
      0d0a0d0a000d0a515549540a   signature
      21                         version 2, command PROXY
      11                         AF_INET, SOCK_STREAM
      000c                       12 bytes follow
      c0a80001                   src 192.168.0.1
      c0a8000b                   dst 192.168.0.11
      dc04                       sport 56324
      01bb                       dport 443
    `),
  );
  assert.deepEqual(parse(h), {
    version: 2, command: 'PROXY', family: 1, transport: 1, length: 12,
    src: '192.168.0.1', dst: '192.168.0.11', sport: 56324, dport: 443,
  });
});

test('v2 TCP4 plain hex (no comment stripping involved)', () => {
  const h = buildProxyHeader('v2', ep('127.0.0.41', 65535, '127.0.0.40', 0));
  assert.equal(h.toString('hex'), SIG + '21' + '11' + '000c' + '7f000029' + '7f000028' + 'ffff' + '0000');
  assert.equal(h.length, 28);
});

test('v2 TCP6: 0x21 fam (AF_INET6 STREAM), len 36, 16-byte addresses', () => {
  const h = buildProxyHeader('v2', ep('2001:db8::1', 40000, '2001:db8:0:0:1::ff', 993));
  assert.equal(
    h.toString('hex'),
    SIG + '21' + '21' + '0024' +
      '20010db8000000000000000000000001' +
      '20010db8' + '00000000' + '00010000' + '000000ff' +
      '9c40' + '03e1',
  );
  assert.equal(h.length, 16 + 36);
  assert.deepEqual(parse(h), {
    version: 2, command: 'PROXY', family: 2, transport: 1, length: 36,
    src: '2001:db8:0:0:0:0:0:1', dst: '2001:db8:0:0:1:0:0:ff', sport: 40000, dport: 993,
  });
});

test('v2 TCP6 address spellings: ::1, ::, trailing ::, full form, upper case, embedded dotted quad', () => {
  const cases: [string, string][] = [
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['2001:DB8::ABCD', '20010db800000000000000000000abcd'],
    ['2001:db8::8:800:200c:417a', '20010db80000000000080800200c417a'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'], // NAT64, not v4-mapped: stays TCP6
    ['::1.2.3.4', '00000000000000000000000001020304'], // deprecated v4-compatible: stays TCP6
  ];
  for (const [addr, bytes] of cases) {
    const h = buildProxyHeader('v2', ep(addr, 1, '::1', 2));
    assert.equal(h[13], 0x21, `${addr}: AF_INET6`);
    assert.equal(h.subarray(16, 32).toString('hex'), bytes, addr);
    assert.equal(h.subarray(32, 48).toString('hex'), '00000000000000000000000000000001');
    assert.equal(h.readUInt16BE(48), 1);
    assert.equal(h.readUInt16BE(50), 2);
  }
});

test('v2 TCP6 round trip: random addresses, full and compressed spellings give the same 16 bytes', () => {
  const full = (b: Buffer) => Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  /** RFC 5952-ish: the longest run (>= 2) of zero groups becomes `::` */
  const compressed = (b: Buffer) => {
    const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; ) {
      if (g[i] !== 0) { i++; continue; }
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen) { best = i; bestLen = j - i; }
      i = j;
    }
    const h = g.map((x) => x.toString(16));
    if (best < 0) return h.join(':');
    return h.slice(0, best).join(':') + '::' + h.slice(best + bestLen).join(':');
  };
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
  for (let n = 0; n < 500; n++) {
    const b = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(rnd() % 4 === 0 ? 0 : rnd() & 0xffff, i * 2);
    if (b.subarray(0, 10).equals(Buffer.alloc(10)) && b.readUInt16BE(10) === 0xffff) continue; // v4-mapped: TCP4 by design
    for (const spelled of [full(b), compressed(b)]) {
      const h = buildProxyHeader('v2', ep(spelled, 7, '::1', 8));
      assert.equal(h[13], 0x21, spelled);
      assert.equal(h.subarray(16, 32).toString('hex'), b.toString('hex'), spelled);
    }
  }
});

test('v2 v4-mapped IPv6 client (::ffff:1.2.3.4) is reported as TCP4 (fam 0x11, 4-byte addresses)', () => {
  const h = buildProxyHeader('v2', ep('::ffff:1.2.3.4', 5555, '::ffff:10.0.0.1', 143));
  assert.equal(h.toString('hex'), SIG + '21' + '11' + '000c' + '01020304' + '0a000001' + '15b3' + '008f');
  assert.deepEqual(parse(h), {
    version: 2, command: 'PROXY', family: 1, transport: 1, length: 12,
    src: '1.2.3.4', dst: '10.0.0.1', sport: 5555, dport: 143,
  });
});

test('v2 mixed families or no addresses: LOCAL (0x20), family UNSPEC (0x00), len 0', () => {
  for (const e of [ep('1.2.3.4', 1000, '::1', 2000), ep('2001:db8::1', 1000, '10.0.0.1', 2000), ep('', 0, '', 0)]) {
    const h = buildProxyHeader('v2', e);
    assert.equal(h.toString('hex'), SIG + '20' + '00' + '0000', JSON.stringify(e));
    assert.deepEqual(parse(h), { version: 2, command: 'LOCAL', family: 0, transport: 0, length: 0 });
  }
});

test('v1 and v2 agree on what they report', () => {
  for (const e of [
    ep('10.1.2.3', 1234, '10.9.8.7', 25),
    ep('::ffff:127.0.0.41', 50000, '::ffff:127.0.0.40', 10143),
    ep('2001:db8::42', 61000, '2001:db8::1', 587),
  ]) {
    const one = parse(buildProxyHeader('v1', e));
    const two = parse(buildProxyHeader('v2', e));
    assert.equal(one.version, 1);
    assert.equal(two.version, 2);
    if (one.proto === 'UNKNOWN' || two.version !== 2) assert.fail('expected addresses');
    assert.equal(two.family, one.proto === 'TCP4' ? 1 : 2);
    assert.equal(two.sport, one.sport);
    assert.equal(two.dport, one.dport);
    if (one.proto === 'TCP4') {
      assert.equal(two.src, one.src);
      assert.equal(two.dst, one.dst);
    }
  }
});

// ---------------------------------------------------------------------------
// TLS fields (proxy-protocol.txt 2.2: PP2_TYPE_ALPN 0x01, PP2_TYPE_AUTHORITY 0x02,
// PP2_TYPE_SSL 0x20 = client(1) verify(4) sub-TLVs; PP2_SUBTYPE_SSL_VERSION 0x21,
// PP2_SUBTYPE_SSL_CIPHER 0x23; PP2_CLIENT_SSL 0x01)

/** The TLVs after a v2 TCP4 address block, as type -> value. */
function tlvs(buf: Buffer, from: number, to: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = from;
  while (i < to) {
    const type = buf[i]!;
    const len = buf.readUInt16BE(i + 1);
    assert.ok(i + 3 + len <= to, `TLV 0x${type.toString(16)} overruns the block`);
    out.set(type, buf.subarray(i + 3, i + 3 + len));
    i += 3 + len;
  }
  assert.equal(i, to, 'TLVs end exactly at the end of the block');
  return out;
}

const TLS_E: Endpoints = { srcAddr: '192.0.2.7', srcPort: 51000, dstAddr: '198.51.100.1', dstPort: 993 };

test('v2 with a TLS session: SSL (client flag SSL, verify 0, version and cipher sub-TLVs), AUTHORITY = SNI, ALPN imap', () => {
  const h = buildProxyHeader('v2', TLS_E, { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', servername: 'mail.a.test', alpn: 'imap' });
  assert.equal(h.readUInt16BE(14), h.length - 16, 'len covers addresses and TLVs');
  const t = tlvs(h, 28, h.length);
  assert.equal(t.get(0x01)?.toString(), 'imap');
  assert.equal(t.get(0x02)?.toString(), 'mail.a.test');
  const ssl = t.get(0x20)!;
  assert.equal(ssl[0], 0x01, 'PP2_CLIENT_SSL');
  assert.equal(ssl.readUInt32BE(1), 0, 'verify: 0');
  const sub = tlvs(ssl, 5, ssl.length);
  assert.equal(sub.get(0x21)?.toString(), 'TLSv1.3');
  assert.equal(sub.get(0x23)?.toString(), 'TLS_AES_256_GCM_SHA384');
  // The address block is unchanged by the TLVs.
  assert.deepEqual(h.subarray(0, 28).subarray(16), buildProxyHeader('v2', TLS_E).subarray(16, 28));
});

test('v2 TLS fields: no SNI -> no AUTHORITY; ALPN only when negotiated and one Dovecot accepts (imap, pop3, submission)', () => {
  const base = { version: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256', servername: '', alpn: '' };
  const none = tlvs(buildProxyHeader('v2', TLS_E, base), 28, buildProxyHeader('v2', TLS_E, base).length);
  assert.deepEqual([...none.keys()], [0x20]);
  for (const alpn of ['h2', 'http/1.1', 'smtp']) {
    const h = buildProxyHeader('v2', TLS_E, { ...base, alpn });
    assert.equal(tlvs(h, 28, h.length).has(0x01), false, `${alpn} is not forwarded`);
  }
  for (const alpn of ['imap', 'pop3', 'submission']) {
    const h = buildProxyHeader('v2', TLS_E, { ...base, alpn });
    assert.equal(tlvs(h, 28, h.length).get(0x01)?.toString(), alpn);
  }
  // v1 cannot carry them: the same line as without TLS.
  assert.deepEqual(buildProxyHeader('v1', TLS_E, base), buildProxyHeader('v1', TLS_E));
});
