/**
 * PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that
 * tell a backend the real client address. Only building is needed here: the
 * balancer sends the header, backends (dovecot, postfix) parse it.
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

/** Build a v1 (text) or v2 (binary) header. Mixed families fall back to UNKNOWN / LOCAL. */
export function buildProxyHeader(version: 'v1' | 'v2', e: Endpoints): Buffer {
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
  const out = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY command
  out[13] = fam === 4 ? 0x11 : 0x21; // AF_INET|AF_INET6, STREAM
  out.writeUInt16BE(addrLen, 14);
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
