/**
 * Reading a PROXY protocol header (v1 text or v2 binary, HAProxy's
 * proxy-protocol.txt) that a trusted front tier sends ahead of a client's
 * bytes (`acceptProxyProtocol` on a listener). This module frames the header
 * out of the byte stream — how many bytes it is, bounded — and checks what
 * it says; the fields are decoded by `proxy-protocol-js`.
 *
 * Rules, from the specification and what HAProxy does:
 * - the header is the very first bytes; v1 ends with CRLF within 107 bytes,
 *   v2 is 16 bytes plus the length its header gives (bounded here);
 * - v1 `PROXY UNKNOWN` and v2 `LOCAL` (health checks of the front tier)
 *   carry no client: the connection's own address stands;
 * - addresses must be IP literals of the family the header names, ports
 *   0-65535 (v1 numbers without leading zeros), v1 single spaces only;
 * - v2 TLVs after the addresses are skipped (not trusted for anything).
 * Anything else is a malformed header: the caller refuses the connection.
 */
import net from 'node:net';
import { V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { canonicalHost } from '../config/address.js';

/** v1's longest header: `PROXY TCP6 ` + two 39-char addresses + two ports + spaces + CRLF (the spec's 107). */
export const V1_MAX = 107;
/** v2 headers longer than this (16 bytes + addresses + TLVs) are refused: a real front tier sends under 600 with TLS TLVs. */
export const V2_MAX = 4096;
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIG = Buffer.from('PROXY ', 'latin1');

/** What a complete header said. */
export type ProxyInfo =
  | { readonly version: 1 | 2; readonly kind: 'proxied'; readonly srcAddr: string; readonly srcPort: number; readonly dstAddr: string; readonly dstPort: number }
  /** No client named (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC/UNIX): use the connection's own addresses. */
  | { readonly version: 1 | 2; readonly kind: 'local' };

export type ReadResult =
  | { readonly state: 'more' }
  | { readonly state: 'done'; readonly info: ProxyInfo; /** Bytes after the header: the client's own, to relay. */ readonly rest: Buffer }
  | { readonly state: 'error'; readonly error: string };

/**
 * Accumulates the first bytes of a connection until the header is complete
 * (or proven malformed). Holds at most V2_MAX bytes.
 */
export class ProxyHeaderReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ReadResult {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    return readHeader(this.#buf);
  }
}

/** Frame and decode a header at the start of `buf`. */
export function readHeader(buf: Buffer): ReadResult {
  const n = Math.min(buf.length, V2_SIG.length);
  if (buf.subarray(0, n).equals(V2_SIG.subarray(0, n))) return buf.length < 16 ? { state: 'more' } : readV2(buf);
  const m = Math.min(buf.length, V1_SIG.length);
  if (buf.subarray(0, m).equals(V1_SIG.subarray(0, m))) return readV1(buf);
  return { state: 'error', error: 'no PROXY header (the connection did not start with one)' };
}

function readV1(buf: Buffer): ReadResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length >= V1_MAX ? { state: 'error', error: `v1 header without CRLF in its first ${V1_MAX} bytes` } : { state: 'more' };
  if (end + 2 > V1_MAX) return { state: 'error', error: `v1 header longer than ${V1_MAX} bytes` };
  const line = buf.toString('latin1', 0, end + 2);
  const rest = buf.subarray(end + 2);
  if (/^PROXY UNKNOWN(?: [^\r\n]*)?\r\n$/.test(line)) return { state: 'done', info: { version: 1, kind: 'local' }, rest };
  let p: V1ProxyProtocol;
  try {
    p = V1ProxyProtocol.parse(line);
  } catch {
    return { state: 'error', error: `malformed v1 header ${JSON.stringify(line.slice(0, 60))}` };
  }
  const fam = String(p.inetProtocol) === 'TCP4' ? 4 : 6;
  const src = p.source.ipAddress;
  const dst = p.destination.ipAddress;
  if (net.isIP(src) !== fam || net.isIP(dst) !== fam) return { state: 'error', error: `v1 header: addresses are not TCP${fam} literals` };
  const ports = line.slice(0, -2).split(' ').slice(4);
  if (!ports.every((x) => /^(?:0|[1-9][0-9]{0,4})$/.test(x) && Number(x) <= 65535)) return { state: 'error', error: 'v1 header: a port is not 0-65535' };
  // One spelling per address (RFC 5952 for v6), as Node reports clients: ip_hash and allow/deny see the same client however the front tier writes it.
  return { state: 'done', info: { version: 1, kind: 'proxied', srcAddr: canonicalHost(src), srcPort: p.source.port, dstAddr: canonicalHost(dst), dstPort: p.destination.port }, rest };
}

function readV2(buf: Buffer): ReadResult {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { state: 'error', error: `v2 header: version ${verCmd >> 4}` };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { state: 'error', error: `v2 header: unknown command ${cmd}` };
  const len = buf.readUInt16BE(14);
  if (16 + len > V2_MAX) return { state: 'error', error: `v2 header of ${16 + len} bytes (at most ${V2_MAX})` };
  if (buf.length < 16 + len) return { state: 'more' };
  const header = buf.subarray(0, 16 + len);
  const rest = buf.subarray(16 + len);
  const fam = buf[13]! >> 4;
  const proto = buf[13]! & 0x0f;
  // LOCAL: the front tier speaking for itself (its checks); UNSPEC/UNIX carry no IP client.
  if (cmd === 0 || fam === 0 || fam === 3) return { state: 'done', info: { version: 2, kind: 'local' }, rest };
  if (proto !== 1) return { state: 'error', error: `v2 header: transport ${proto} is not TCP (STREAM)` };
  let p: V2ProxyProtocol;
  try {
    p = V2ProxyProtocol.parse(new Uint8Array(header));
  } catch (e) {
    return { state: 'error', error: `malformed v2 header: ${(e as Error).message}` };
  }
  const a = p.proxyAddress as unknown as { sourceAddress: { address: number[] }; sourcePort: number; destinationAddress: { address: number[] }; destinationPort: number };
  // v6 in the form Node reports client addresses (RFC 5952), so ip_hash and allow/deny see one spelling.
  const ip = (bytes: number[]): string =>
    fam === 1 ? bytes.join('.') : canonicalHost(Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(':'));
  if (fam !== 1 && fam !== 2) return { state: 'error', error: `v2 header: address family ${fam}` };
  return { state: 'done', info: { version: 2, kind: 'proxied', srcAddr: ip(a.sourceAddress.address), srcPort: a.sourcePort, dstAddr: ip(a.destinationAddress.address), dstPort: a.destinationPort }, rest };
}

/**
 * Client sockets whose front tier's header named the client: the session
 * takes its client address from here (ip_hash, allow/deny, limits, logs)
 * and the PROXY header sent on names it. Weak: gone with the socket.
 */
export const proxiedClients = new WeakMap<object, Extract<ProxyInfo, { kind: 'proxied' }>>();

/** The client a front tier named for `sock`, if any. */
export function clientOf(sock: object): Extract<ProxyInfo, { kind: 'proxied' }> | undefined {
  return proxiedClients.get(sock);
}
