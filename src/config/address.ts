/**
 * Addresses in the config: `host:port`, `[v6]:port`, a bare port or `*:port`
 * for "all interfaces" (listeners only), and CIDR lists for allow/deny.
 * Nothing here resolves names: validation must stay pure and instant (the
 * file loader resolves listen host names once, in ./resolve.ts).
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { formatHostPort } from '../core/types.js';

/** A parsed address; `host` is '' for "all interfaces". */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parse outcome with an operator-readable reason, so messages say *what* is wrong. */
export type AddressResult = { ok: true; host: string; port: number } | { ok: false; reason: string };

/** Longest DNS name (RFC 1035); anything longer is garbage, not a host. */
const MAX_HOST = 253;
/** A DNS label; `_` is tolerated because container and service names use it. */
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

function parsePort(text: string): number | string {
  if (!/^\d{1,5}$/.test(text)) return `invalid port ${JSON.stringify(text.slice(0, 20))}`;
  const port = Number(text);
  if (port < 1 || port > 65535) return `port ${port} out of range (1-65535)`;
  return port;
}

/** Why `host` is not an IPv4 address or DNS name, or undefined if it is fine. */
function hostProblem(host: string): string | undefined {
  const shown = JSON.stringify(host.slice(0, 60));
  if (host.length > MAX_HOST) return 'host name too long';
  const labels = (host.endsWith('.') ? host.slice(0, -1) : host).split('.');
  // All-numeric dotted names are meant as IPv4: "999.1.1.1" must not pass as a host name.
  if (labels.every((l) => /^\d+$/.test(l))) return isIPv4(host) ? undefined : `invalid IPv4 address ${shown}`;
  if (!labels.every((l) => LABEL.test(l))) return `invalid host name ${shown}`;
  return undefined;
}

/**
 * Parse an address with a reason on failure.
 *
 * Forms: `host:port`, `[v6]:port`, and with `allowAllInterfaces` also a bare
 * port (`"993"` or `993`) and `*:port`, both giving host ''. `port` is 1-65535.
 */
export function parseAddress(input: string | number, allowAllInterfaces: boolean): AddressResult {
  const needHost = 'needs a host and a port, e.g. "10.0.0.1:993"';
  if (typeof input === 'number') {
    if (!allowAllInterfaces) return { ok: false, reason: needHost };
    if (!Number.isInteger(input)) return { ok: false, reason: `invalid port ${input}` };
    if (input < 1 || input > 65535) return { ok: false, reason: `port ${input} out of range (1-65535)` };
    return { ok: true, host: '', port: input };
  }
  const s = input.trim();
  if (s === '') return { ok: false, reason: 'empty address' };
  if (s.length > MAX_HOST + 10) return { ok: false, reason: 'address too long' };
  if (/^\d+$/.test(s)) {
    if (!allowAllInterfaces) return { ok: false, reason: needHost };
    const p = parsePort(s);
    return typeof p === 'string' ? { ok: false, reason: p } : { ok: true, host: '', port: p };
  }
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return { ok: false, reason: 'missing "]" after IPv6 address' };
    host = s.slice(1, close);
    if (!isIPv6(host)) return { ok: false, reason: `invalid IPv6 address ${JSON.stringify(host.slice(0, 60))}` };
    if (s[close + 1] !== ':') return { ok: false, reason: 'missing port (use "[v6]:port")' };
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: 'missing port (use "host:port")' };
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) {
      // Unbracketed IPv6: "::1:993" is ambiguous, so we insist on "[::1]:993" and show it.
      if (isIP(host) === 6 && /^\d{1,5}$/.test(portText)) return { ok: false, reason: `IPv6 addresses need brackets, e.g. "[${host}]:${portText}"` };
      if (isIP(s) === 6) return { ok: false, reason: `IPv6 addresses need brackets and a port, e.g. "[${s.slice(0, 45)}]:993"` };
      return { ok: false, reason: `invalid address ${JSON.stringify(s.slice(0, 60))}` };
    }
    if (host === '*') {
      if (!allowAllInterfaces) return { ok: false, reason: 'needs a specific host, not "*"' };
      host = '';
    } else if (host === '') {
      return { ok: false, reason: 'missing host before ":"' };
    } else {
      const problem = hostProblem(host);
      if (problem !== undefined) return { ok: false, reason: problem };
    }
  }
  const port = parsePort(portText);
  if (typeof port === 'string') return { ok: false, reason: port };
  return { ok: true, host, port };
}

/**
 * Parse `host:port`, `[::1]:port`, a bare port (`"993"` or `993`) or `*:993`
 * (the last two mean all interfaces: host ''). Undefined when malformed.
 */
export function parseHostPort(s: string | number): HostPort | undefined {
  const r = parseAddress(s, true);
  return r.ok ? { host: r.host, port: r.port } : undefined;
}

/**
 * Canonical spelling of a host for identity and duplicate checks: DNS names
 * lower-cased, IPv6 compressed (`::0001` -> `::1`). Never resolves names.
 */
export function canonicalHost(host: string): string {
  if (isIPv6(host)) {
    try {
      // WHATWG URL serialises IPv6 in RFC 5952 form; a zone id makes it throw, keep those as written.
      return new URL(`http://[${host}]/`).hostname.slice(1, -1);
    } catch {
      return host.toLowerCase();
    }
  }
  return host.toLowerCase();
}

/**
 * The host two listen addresses are compared by: canonical, and an
 * IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is
 * (on Linux binding either takes the same IPv4 port).
 */
export function clashKey(host: string): string {
  const h = canonicalHost(host);
  // RFC 5952 form of a mapped address is "::ffff:" and two hex groups (WHATWG URL writes it so).
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (m === null) return h;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** `host:port` for display, `*:port` for all interfaces, IPv6 bracketed. */
export function formatListen(a: HostPort): string {
  return a.host === '' ? `*:${a.port}` : formatHostPort(a.host, a.port);
}

/** '' / 0.0.0.0 / :: all bind every interface (on Linux :: also takes IPv4), so they clash with any host on that port. */
export function isWildcardHost(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::';
}

/** True for 127.0.0.0/8, ::1 and localhost: endpoints there are not reachable from other hosts. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./.test(host);
}

/**
 * Why `text` is not a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or single address
 * (`192.0.2.7`, `::1`), or undefined if it is fine. Host bits under the mask
 * are allowed, as in nginx and HAProxy.
 */
export function cidrProblem(text: string): string | undefined {
  const shown = JSON.stringify(text.slice(0, 60));
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return `invalid address in CIDR ${shown}`;
  if (slash < 0) return undefined;
  const bits = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `invalid prefix length in ${shown} (0-${max} for IPv${family})`;
  return undefined;
}
