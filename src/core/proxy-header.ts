/**
 * PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that
 * tell a backend the real client address. Only building is needed here: the
 * balancer sends the header, backends (dovecot, postfix) parse it.
 *
 * On a listener that terminates TLS, v2 also carries what HAProxy's
 * `send-proxy-v2-ssl` sends (proxy-protocol.txt section 2.2): PP2_TYPE_SSL
 * with the PP2_CLIENT_SSL flag, `verify` 0 (no client certificate was asked
 * for, so none failed: HAProxy sends OpenSSL's X509_V_OK then too) and the
 * SSL_VERSION and SSL_CIPHER sub-TLVs; the SNI name as PP2_TYPE_AUTHORITY;
 * the negotiated ALPN as PP2_TYPE_ALPN, for mail protocols only (see
 * FORWARDED_ALPN).
 */
import net from 'node:net';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Strip the IPv4-mapped prefix so a v4 client is reported as TCP4. */
function plain(addr: string): string {
  return addr.startsWith('::ffff:') && net.isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

export interface Endpoints {
  readonly srcAddr: string;
  readonly srcPort: number;
  readonly dstAddr: string;
  readonly dstPort: number;
}

/** The client's TLS session, for the v2 TLS fields. */
export interface TlsSession {
  /** `TLSv1.3`, as OpenSSL names it. */
  readonly version: string;
  readonly cipher: string;
  /** SNI name, '' when the client sent none. */
  readonly servername: string;
  /** Negotiated ALPN protocol, '' when none. */
  readonly alpn: string;
}

/**
 * ALPN ids forwarded as PP2_TYPE_ALPN. Dovecot 2.4 drops a connection whose
 * PROXY header names any other ALPN (it only knows imap, pop3 and
 * submission), and the other usual ids (h2, http/1.1) tell an HTTP backend
 * nothing its first bytes do not: so only these go, whatever was negotiated.
 */
export const FORWARDED_ALPN: ReadonlySet<string> = new Set(['imap', 'pop3', 'submission']);

const PP2_TYPE_ALPN = 0x01;
const PP2_TYPE_AUTHORITY = 0x02;
const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CIPHER = 0x23;
const PP2_CLIENT_SSL = 0x01;

function tlv(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(3 + value.length);
  out[0] = type;
  out.writeUInt16BE(value.length, 1);
  value.copy(out, 3);
  return out;
}

/** The TLVs describing a TLS session (ALPN, AUTHORITY, SSL with its sub-TLVs). */
export function tlsTlvs(t: TlsSession): Buffer {
  const parts: Buffer[] = [];
  if (t.alpn !== '' && FORWARDED_ALPN.has(t.alpn)) parts.push(tlv(PP2_TYPE_ALPN, Buffer.from(t.alpn, 'latin1')));
  // A DNS name is at most 253 bytes: well within a TLV.
  if (t.servername !== '') parts.push(tlv(PP2_TYPE_AUTHORITY, Buffer.from(t.servername.slice(0, 255), 'latin1')));
  const head = Buffer.alloc(5); // client flags (1), verify (4)
  head[0] = PP2_CLIENT_SSL;
  const subs: Buffer[] = [head];
  if (t.version !== '') subs.push(tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(t.version, 'latin1')));
  if (t.cipher !== '') subs.push(tlv(PP2_SUBTYPE_SSL_CIPHER, Buffer.from(t.cipher, 'latin1')));
  parts.push(tlv(PP2_TYPE_SSL, Buffer.concat(subs)));
  return Buffer.concat(parts);
}

/**
 * Build a v1 (text) or v2 (binary) header. Mixed families fall back to
 * UNKNOWN / LOCAL. `tls` (v2 only) adds the TLS fields of a session the
 * balancer terminated.
 */
export function buildProxyHeader(version: 'v1' | 'v2', e: Endpoints, tls?: TlsSession): Buffer {
  const src = plain(e.srcAddr);
  const dst = plain(e.dstAddr);
  const fam = net.isIPv4(src) && net.isIPv4(dst) ? 4 : net.isIPv6(src) && net.isIPv6(dst) ? 6 : 0;
  if (version === 'v1') {
    if (fam === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    return Buffer.from(`PROXY TCP${fam} ${src} ${dst} ${e.srcPort} ${e.dstPort}\r\n`, 'latin1');
  }
  if (fam === 0) {
    // LOCAL command, no address block.
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const addrLen = fam === 4 ? 12 : 36;
  const tlvs = tls === undefined ? undefined : tlsTlvs(tls);
  const extra = tlvs?.length ?? 0;
  const out = Buffer.alloc(16 + addrLen + extra);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY command
  out[13] = fam === 4 ? 0x11 : 0x21; // AF_INET|AF_INET6, STREAM
  out.writeUInt16BE(addrLen + extra, 14);
  tlvs?.copy(out, 16 + addrLen);
  const a = ipBytes(src, fam);
  const b = ipBytes(dst, fam);
  a.copy(out, 16);
  b.copy(out, 16 + a.length);
  out.writeUInt16BE(e.srcPort, 16 + a.length * 2);
  out.writeUInt16BE(e.dstPort, 18 + a.length * 2);
  return out;
}

function ipBytes(ip: string, fam: 4 | 6): Buffer {
  if (fam === 4) return Buffer.from(ip.split('.').map((x) => Number(x)));
  // Expand `::` and embedded dotted quads into 8 groups.
  let s = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const q = dotted[1]!.split('.').map(Number);
    s = s.slice(0, -dotted[1]!.length) + ((q[0]! << 8) | q[1]!).toString(16) + ':' + ((q[2]! << 8) | q[3]!).toString(16);
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return out;
}
