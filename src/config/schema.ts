/**
 * The schema of `config.json5` (DESIGN.md, "Configuration"): every key, its
 * type, bounds and default. Cross-references between sections (listener ->
 * upstream, duplicate addresses, http-only check keys) live in ./validate.ts.
 *
 * Bounds, and why:
 * - ports 1-65535 (check.port also 0 = the server's own port);
 * - names of listeners and upstreams: 1-64 of `A-Z a-z 0-9 _ . -`, starting
 *   with a letter or digit: they appear in `U/S` backend ids, log lines and
 *   metrics labels, so no `/`, spaces or quotes;
 * - weight 1..1000 (nginx caps lower, HAProxy at 256; 1000 leaves room);
 * - maxFails 0..1000 (0 = no passive accounting, as nginx `max_fails=0`);
 * - rise/fall 1..100;
 * - maxConnections, maxConnectionsPerClient, maxConns 0..10,000,000 (0 = no limit);
 * - durations: connectTimeout 1ms..1h, idleTimeout 1ms..7d, failTimeout
 *   1ms..1d, check.interval 10ms..1h (tests use fast probes; below 10ms is a
 *   busy loop), check.timeout 1ms..10m, shutdownTimeout 0..1d (0 = close at
 *   once), leaveDelay 0..10m (keepalived and BGP notice in seconds). All
 *   stay far below setTimeout's 24.8-day limit;
 * - instance: 1-64 of the name characters (a metrics label value);
 * - workers 1..1024 or "auto";
 * - check.send up to 64 KiB; servername up to 253 (a DNS name); paths up to 4096.
 */
import { isAbsolute, resolve } from 'node:path';
import type { ValueNode } from '@humanwhocodes/momoa';
import { BALANCE_ALGORITHMS, CHECK_TYPES, formatHostPort } from '../core/types.js';
import { canonicalHost, cidrProblem, formatListen, parseAddress } from './address.js';
import {
  arrayOf, bool, defaultsObj, duration, int, maybe, nullable, oneOf, opt, posOf, readArray, readObject, req, str, uniqueMembers, childPath,
  type Ctx, type Item, type Obj, type Pos, type Reader, type Spec, type ValuesOf,
} from './readers.js';
import { describe, quote } from './suggest.js';
import { loadCertificatePair, parseCertificate, readPem } from './certificates.js';
import { ACME_CHALLENGES, STARTTLS_PROTOCOLS, type TlsCertificate, type UpstreamTlsConfig } from '../core/config.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MAX_COUNT = 10_000_000;

/** Default HTTP probe request (nginx_tcp_proxy_module's default). */
export const DEFAULT_HTTP_SEND = 'GET / HTTP/1.0\r\n\r\n';
/** Accepted HTTP status classes by default. */
export const DEFAULT_HTTP_EXPECT: readonly string[] = ['2xx', '3xx'];
/** Longest unix socket path: sun_path is 108 bytes on Linux, 104 on BSD/macOS, minus the NUL. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Whether `s` is a valid listener/upstream name. */
export function isValidName(s: string): boolean {
  return NAME.test(s);
}

/** Message for an invalid listener/upstream name. */
export function nameProblem(s: string): string {
  return `invalid name ${quote(s)}: use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit`;
}

const name: Reader<string> = (node, path, ctx) => {
  const s = str()(node, path, ctx);
  if (s === undefined) return undefined;
  if (!isValidName(s)) return void ctx.error(posOf(node), path, nameProblem(s));
  return s;
};

/** A parsed address plus its canonical text. */
export interface Address {
  readonly host: string;
  readonly port: number;
  /** `host:port`, `[v6]:port` or `*:port`, canonical (lower-case names, compressed IPv6). */
  readonly text: string;
  /** As the operator wrote it (trimmed); `*:port` for a bare port. Used in messages. */
  readonly written: string;
  readonly pos: Pos;
}

/** An address reader; `allowAll` admits a bare port and `*:port` (all interfaces). */
function address(allowAll: boolean, example: string): Reader<Address> {
  return (node, path, ctx) => {
    if (node.type !== 'String' && !(allowAll && node.type === 'Number')) {
      const what = allowAll ? `an address like "${example}" or a port number` : `an address like "${example}"`;
      return void ctx.error(posOf(node), path, `must be ${what} (got ${describe(node)})`);
    }
    const r = parseAddress(node.value, allowAll);
    if (!r.ok) {
      return void ctx.error(posOf(node), path, node.type === 'String' ? `invalid address ${quote(node.value)}: ${r.reason}` : r.reason);
    }
    const host = canonicalHost(r.host);
    const text = host === '' ? formatListen({ host, port: r.port }) : formatHostPort(host, r.port);
    const written = host === '' || typeof node.value !== 'string' ? text : node.value.trim();
    return { host, port: r.port, text, written, pos: posOf(node) };
  };
}

/** A path; relative ones are resolved against the config's folder (Ctx.baseDir). */
function filePath(what: string, maxBytes = 4096): Reader<string> {
  return (node, path, ctx) => {
    const s = str({ nonEmpty: true })(node, path, ctx);
    if (s === undefined) return undefined;
    if (s.includes('\0')) return void ctx.error(posOf(node), path, `${what} path must not contain NUL`);
    const abs = isAbsolute(s) ? s : resolve(ctx.baseDir, s);
    const bytes = Buffer.byteLength(abs);
    if (bytes > maxBytes) return void ctx.error(posOf(node), path, `${what} path too long (${bytes} bytes once resolved, at most ${maxBytes})`);
    return abs;
  };
}

const cidr: Reader<string> = (node, path, ctx) => {
  if (node.type !== 'String') return void ctx.error(posOf(node), path, `must be a CIDR string like "10.0.0.0/8" (got ${describe(node)})`);
  const problem = node.value.includes('%') ? `zone ids are not allowed in ${quote(node.value)}` : cidrProblem(node.value);
  if (problem !== undefined) return void ctx.error(posOf(node), path, problem);
  return node.value;
};
const cidrList = arrayOf(cidr, 'an array of CIDR strings like ["10.0.0.0/8", "::1"]');

const statusClass: Reader<string> = (node, path, ctx) => {
  if (node.type === 'String' && /^[2-5]xx$/i.test(node.value)) return node.value.toLowerCase();
  const got = node.type === 'String' ? quote(node.value) : describe(node);
  return void ctx.error(posOf(node), path, `must be a status class "2xx", "3xx", "4xx" or "5xx" (got ${got})`);
};
const expectList: Reader<string[]> = (node, path, ctx) => {
  const items = arrayOf(statusClass, 'an array of status classes like ["2xx", "3xx"]')(node, path, ctx);
  if (items !== undefined && node.type === 'Array' && node.elements.length === 0) {
    return void ctx.error(posOf(node), path, 'must list at least one status class');
  }
  return items;
};

const proxyProtocol = oneOf([false, 'v1', 'v2'] as const);

const workers: Reader<number | 'auto'> = (node, path, ctx) => {
  if (node.type === 'String' && node.value === 'auto') return 'auto';
  if (node.type === 'Number' && Number.isInteger(node.value) && node.value >= 1 && node.value <= 1024) return node.value;
  const got = node.type === 'String' ? quote(node.value) : node.type === 'Number' ? String(node.value) : describe(node);
  return void ctx.error(posOf(node), path, `must be a number of processes from 1 to 1024 or "auto" (got ${got})`);
};

/**
 * A section read into plain values: undefined if any required or defaulted
 * key ended up missing (already reported).
 */
function section<S extends Spec>(spec: S): Reader<ValuesOf<S>> {
  return (node, path, ctx) => {
    const o = readObject(node, path, ctx, spec);
    if (o === undefined) return undefined;
    for (const [key, field] of Object.entries(spec)) {
      if ((field.required || field.def !== undefined) && !Object.hasOwn(o.values, key)) return undefined;
    }
    return o.values as ValuesOf<S>;
  };
}

/** `listeners[].tls.certificates[]` entries: paths relative to the config's folder. */
export const CERT_PAIR_SPEC = {
  cert: req(filePath('certificate')),
  key: req(filePath('key')),
};

/**
 * One certificate + key pair, read and checked now (config/certificates.ts):
 * a problem is reported at the `cert` or `key` value it is about.
 */
const certPair: Reader<TlsCertificate> = (node, path, ctx) => {
  const o = readObject(node, path, ctx, CERT_PAIR_SPEC);
  const { cert, key } = o?.values ?? {};
  if (o === undefined || cert === undefined || key === undefined) return undefined;
  const r = loadCertificatePair(cert, key, ctx.now);
  if (!r.ok) {
    const which = r.problem.which;
    return void ctx.error(o.at[which] ?? o.pos, childPath(path, which), r.problem.message);
  }
  for (const w of r.warnings) ctx.warn(o.at.cert ?? o.pos, childPath(path, 'cert'), w);
  return r.certificate;
};

const certificates: Reader<TlsCertificate[]> = (node, path, ctx) => {
  const items = arrayOf(certPair, 'an array of { cert, key } pairs')(node, path, ctx);
  if (items !== undefined && node.type === 'Array' && node.elements.length === 0) {
    return void ctx.error(posOf(node), path, 'needs at least one { cert, key } pair (the first is the default certificate)');
  }
  if (items !== undefined && node.type === 'Array' && items.length < node.elements.length) return undefined;
  return items;
};

/** An ALPN protocol id: 1-255 printable ASCII bytes (`h2`, `http/1.1`, `imap`). */
const alpnId: Reader<string> = (node, path, ctx) => {
  const s = str({ nonEmpty: true, max: 255 })(node, path, ctx);
  if (s === undefined) return undefined;
  if (!/^[\x21-\x7e]+$/.test(s)) return void ctx.error(posOf(node), path, `invalid ALPN protocol ${quote(s)}: use printable ASCII without spaces, e.g. "h2", "http/1.1", "imap"`);
  return s;
};

/** `listeners[].tls`: TLS terminated at the balancer (docs/tls.md). */
export const LISTENER_TLS_SPEC = {
  /** Required unless `acme` (validate.ts): then the ACME certificate comes first and these follow. */
  certificates: opt(certificates, [] as TlsCertificate[]),
  /** Serve the certificate of the top-level `acme` block and answer tls-alpn-01 challenges. */
  acme: opt(bool(), false),
  minVersion: opt(oneOf(['TLSv1.2', 'TLSv1.3'] as const), 'TLSv1.2'),
  alpn: opt(arrayOf(alpnId, 'an array of ALPN protocol names like ["imap"]'), [] as string[]),
  strictSni: opt(bool(), false),
  handshakeTimeout: opt(duration(1, 10 * MINUTE), 10 * SECOND),
};

/** A PEM file read now; its text. */
function pemFile(what: string, check?: (text: string, file: string) => string | undefined): Reader<{ file: string; text: string }> {
  return (node, path, ctx) => {
    const file = filePath(what)(node, path, ctx);
    if (file === undefined) return undefined;
    const r = readPem(file, what);
    if ('error' in r) return void ctx.error(posOf(node), path, r.error);
    const problem = check?.(r.text, file);
    if (problem !== undefined) return void ctx.error(posOf(node), path, problem);
    return { file, text: r.text };
  };
}

/** `upstreams.X.tls`: re-encrypt to the servers. `cert`/`key` (a client certificate) go together (validate.ts). */
export const UPSTREAM_TLS_SPEC = {
  verify: opt(bool(), true),
  ca: maybe(pemFile('CA file', (text, file) => {
    const x = parseCertificate(text, file);
    return typeof x === 'string' ? x : undefined;
  })),
  servername: opt(str({ max: 253 }), ''),
  cert: maybe(filePath('certificate')),
  key: maybe(filePath('key')),
};

/** `upstreams.X.tls`, read into its final form (files read, the client pair checked). */
function upstreamTls(node: ValueNode, path: string, ctx: Ctx): UpstreamTlsConfig | undefined {
  const o = readObject(node, path, ctx, UPSTREAM_TLS_SPEC);
  if (o === undefined) return undefined;
  const v = o.values;
  if ((v.cert === undefined) !== (v.key === undefined)) {
    const [has, lacks] = v.cert !== undefined ? ['cert', 'key'] : ['key', 'cert'];
    if (o.keyAt[has as 'cert'] !== undefined) ctx.error(o.keyAt[has as 'cert']!, childPath(path, has), `a client certificate needs both "cert" and "key" ("${lacks}" is missing)`);
    return undefined;
  }
  let pair: TlsCertificate | undefined;
  if (v.cert !== undefined && v.key !== undefined) {
    const r = loadCertificatePair(v.cert, v.key, ctx.now);
    if (!r.ok) return void ctx.error(o.at[r.problem.which] ?? o.pos, childPath(path, r.problem.which), r.problem.message);
    for (const w of r.warnings) ctx.warn(o.at.cert ?? o.pos, childPath(path, 'cert'), w);
    pair = r.certificate;
  }
  if (v.verify === undefined || v.servername === undefined || (o.at.ca !== undefined && v.ca === undefined)) return undefined;
  return {
    verify: v.verify, ca: v.ca?.text ?? null, caFile: v.ca?.file ?? null, servername: v.servername,
    cert: pair?.cert ?? null, key: pair?.key ?? null, certFile: pair?.certFile ?? null, keyFile: pair?.keyFile ?? null,
  };
}

/** `listeners[]` entries. Defaults: see each line. */
/** A non-empty CIDR list: a trust list that names nobody is a mistake, not "trust no one". */
const trustedCidrs: Reader<string[]> = (node, path, ctx) => {
  const items = cidrList(node, path, ctx);
  if (items !== undefined && node.type === 'Array' && node.elements.length === 0) {
    return void ctx.error(posOf(node), path, 'must list the front tier\'s addresses, like ["10.0.0.0/8"]');
  }
  return items;
};

/**
 * `listeners[].acceptProxyProtocol`: this listener sits behind a front tier
 * (another balancer) that sends a PROXY v1/v2 header; only connections from
 * `from` are accepted, and each must start with a header within `timeout`.
 */
export const ACCEPT_PROXY_SPEC = {
  from: req(trustedCidrs),
  timeout: opt(duration(1, MINUTE), 5 * SECOND),
};

export const LISTENER_SPEC = {
  /** Defaults to the upstream name when no other listener uses that name (see validate.ts). */
  name: maybe(name),
  listen: req(address(true, '0.0.0.0:993')),
  upstream: req(str({ nonEmpty: true })),
  connectTimeout: opt(duration(1, HOUR), 5 * SECOND),
  idleTimeout: opt(duration(1, 7 * DAY), 10 * MINUTE),
  proxyProtocol: opt(proxyProtocol, false),
  maxConnections: opt(int(0, MAX_COUNT), 10_000),
  maxConnectionsPerClient: opt(int(0, MAX_COUNT), 0),
  allow: opt(cidrList, []),
  deny: opt(cidrList, []),
  /** Absent = clients connect directly (no PROXY header is read). */
  acceptProxyProtocol: maybe(section(ACCEPT_PROXY_SPEC)),
  /** Absent = no TLS at the balancer. */
  tls: maybe(section(LISTENER_TLS_SPEC)),
  /** STARTTLS answered by the balancer with `tls.certificates` (rules in validate.ts). */
  starttls: maybe(oneOf(STARTTLS_PROTOCOLS)),
  requireTls: opt(bool(), false),
  /** A plain listener (port 80) answering ACME http-01 challenges; every other request is relayed (docs/tls.md#acme). */
  acme: opt(bool(), false),
};

/** `upstreams.X.servers[]` entries (or a plain `"host:port"` string). */
export const SERVER_SPEC = {
  address: req(address(false, '10.0.0.1:993')),
  weight: opt(int(1, 1000), 1),
  maxFails: opt(int(0, 1000), 1),
  failTimeout: opt(duration(1, DAY), 10 * SECOND),
  backup: opt(bool(), false),
  down: opt(bool(), false),
  maxConns: opt(int(0, MAX_COUNT), 0),
};

/** `upstreams.X.check`. `send`/`expect` are http-only (enforced in validate.ts). */
export const CHECK_SPEC = {
  type: req(oneOf(CHECK_TYPES)),
  interval: opt(duration(10, HOUR), 5 * SECOND),
  rise: opt(int(1, 100), 2),
  fall: opt(int(1, 100), 5),
  timeout: opt(duration(1, 10 * MINUTE), 2 * SECOND),
  tls: opt(bool(), false),
  servername: opt(str({ max: 253 }), ''),
  verify: opt(bool(), false),
  port: opt(int(0, 65535), 0),
  send: opt(str({ nonEmpty: true, max: 65536 }), DEFAULT_HTTP_SEND),
  expect: opt(expectList, DEFAULT_HTTP_EXPECT as string[]),
  proxyProtocol: opt(proxyProtocol, false),
};

export type ServerObj = Obj<typeof SERVER_SPEC>;
export type CheckObj = Obj<typeof CHECK_SPEC>;
export type ListenerObj = Obj<typeof LISTENER_SPEC>;

const server: Reader<ServerObj> = (node, path, ctx) => {
  if (node.type === 'String') {
    // Shorthand: "host:port" with every other key defaulted.
    const a = address(false, '10.0.0.1:993')(node, path, ctx);
    return a === undefined ? undefined : defaultsObj(SERVER_SPEC, posOf(node), path, { address: a });
  }
  if (node.type !== 'Object') return void ctx.error(posOf(node), path, `must be "host:port" or an object with "address" (got ${describe(node)})`);
  return readObject(node, path, ctx, SERVER_SPEC);
};

const servers: Reader<Array<Item<ServerObj>>> = (node, path, ctx) => {
  const items = readArray(node, path, ctx, server, 'an array of servers');
  if (items !== undefined && node.type === 'Array' && node.elements.length === 0) {
    return void ctx.error(posOf(node), path, 'an upstream needs at least one server');
  }
  return items;
};

/** `upstreams.X`. */
export const UPSTREAM_SPEC = {
  balance: opt(oneOf(BALANCE_ALGORITHMS), 'round_robin'),
  onMarkedDown: opt(oneOf(['keep', 'shutdown'] as const), 'keep'),
  servers: req(servers),
  /** Absent = no active checks. */
  check: maybe((node: ValueNode, path: string, ctx: Ctx) => readObject(node, path, ctx, CHECK_SPEC)),
  /** Absent = plain TCP to the servers. */
  tls: maybe(upstreamTls),
};

export type UpstreamObj = Obj<typeof UPSTREAM_SPEC>;

/** One entry of the `upstreams` map. */
export interface UpstreamEntry {
  readonly name: string;
  readonly keyPos: Pos;
  readonly obj: UpstreamObj;
}

const upstreams: Reader<UpstreamEntry[]> = (node, path, ctx) => {
  if (node.type !== 'Object') return void ctx.error(posOf(node), path, `must be an object of named upstreams (got ${describe(node)})`);
  const out: UpstreamEntry[] = [];
  for (const { key, member } of uniqueMembers(node, path, ctx)) {
    if (!isValidName(key)) ctx.error(posOf(member.name), path, nameProblem(key));
    const obj = readObject(member.value, childPath(path, key), ctx, UPSTREAM_SPEC);
    if (obj !== undefined) out.push({ name: key, keyPos: posOf(member.name), obj });
  }
  return out;
};

const listeners: Reader<Array<Item<ListenerObj>>> = (node, path, ctx) => {
  const items = readArray(node, path, ctx, (n, p, c) => readObject(n, p, c, LISTENER_SPEC), 'an array of listeners');
  if (items !== undefined && node.type === 'Array' && node.elements.length === 0) {
    return void ctx.error(posOf(node), path, 'at least one listener is required');
  }
  return items;
};

/** `log`. Defaults: access "-" (stdout; null = off; relative paths resolved), format "text", level "info". */
export const LOG_SPEC = {
  access: opt(
    nullable<string>((node, path, ctx) => (node.type === 'String' && node.value === '-' ? '-' : filePath('log')(node, path, ctx))),
    '-',
  ),
  format: opt(oneOf(['text', 'json'] as const), 'text'),
  level: opt(oneOf(['debug', 'info', 'warn', 'error'] as const), 'info'),
};

/** `control`. Default socket null (no control socket). */
export const CONTROL_SPEC = { socket: opt(nullable(filePath('socket', MAX_SOCKET_PATH)), null) };

/** `metrics`. Default listen null (no endpoint); needs an explicit host ("0.0.0.0:9108" for all interfaces). */
export const METRICS_SPEC = { listen: opt(nullable(address(false, '127.0.0.1:9108')), null) };

/** An array of `read` values with their positions (for cross-checks that point at one element). */
function itemsOf<T>(read: Reader<T>, what?: string): Reader<Array<Item<T>>> {
  return (node, path, ctx) => readArray(node, path, ctx, read, what);
}

/**
 * `health`: what `tcplb-console health` (readiness for keepalived and ExaBGP)
 * requires. `require`: the upstreams that must each have a usable backend;
 * null (the default) = every upstream.
 */
export const HEALTH_SPEC = { require: opt(nullable(itemsOf(str({ nonEmpty: true }), 'an array of upstream names')), null) };

/** `instance`: this balancer's name in logs, metrics and fleet views: 1-64 of `A-Z a-z 0-9 _ . -` (a label value, a log word). */
const instanceName: Reader<string> = (node, path, ctx) => {
  if (node.type === 'String' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(node.value)) return node.value;
  const got = node.type === 'String' ? quote(node.value) : describe(node);
  return void ctx.error(posOf(node), path, `must be 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit (got ${got})`);
};

/** Directory shortcuts for `acme.directory`. */
export const ACME_DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

/**
 * A name an ACME CA can validate by http-01 or tls-alpn-01: a DNS name of
 * two labels or more, letters, digits and `-`; no wildcard (that needs
 * dns-01, which tcplb does not answer) and no IP address. Lower-cased.
 */
const acmeDomain: Reader<string> = (node, path, ctx) => {
  const s = str({ nonEmpty: true, max: 253 })(node, path, ctx);
  if (s === undefined) return undefined;
  const n = s.toLowerCase().replace(/\.$/, '');
  if (n.startsWith('*.')) return void ctx.error(posOf(node), path, `wildcard ${quote(s)} needs the dns-01 challenge, which tcplb does not answer: list the names`);
  if (/^[0-9.]+$/.test(n) || n.includes(':')) return void ctx.error(posOf(node), path, `${quote(s)} is an IP address: ACME certificates here are for DNS names`);
  const labels = n.split('.');
  const bad = labels.find((l) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
  if (bad !== undefined) return void ctx.error(posOf(node), path, `invalid domain name ${quote(s)}: each label is 1-63 letters, digits or "-", not starting or ending with "-"`);
  if (labels.length < 2) return void ctx.error(posOf(node), path, `${quote(s)} is not a public name (one label): the CA cannot reach it`);
  return n;
};

const acmeDomains: Reader<string[]> = (node, path, ctx) => {
  const items = arrayOf(acmeDomain, 'an array of domain names like ["www.example.net"]')(node, path, ctx);
  if (items === undefined || node.type !== 'Array') return items;
  if (node.elements.length === 0) return void ctx.error(posOf(node), path, 'needs at least one domain name (the first is the certificate\'s subject)');
  if (node.elements.length > 100) return void ctx.error(posOf(node), path, `at most 100 names in one certificate (got ${node.elements.length})`);
  const seen = new Set<string>();
  for (const [i, d] of items.entries()) {
    if (seen.has(d)) return void ctx.error(posOf(node.elements[i]!.value), `${path}[${i}]`, `${quote(d)} is listed twice`);
    seen.add(d);
  }
  return items.length < node.elements.length ? undefined : items;
};

const acmeEmail: Reader<string> = (node, path, ctx) => {
  const s = str({ nonEmpty: true, max: 254 })(node, path, ctx);
  if (s === undefined) return undefined;
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s)) return void ctx.error(posOf(node), path, `invalid e-mail address ${quote(s)} (the CA writes to it about expiring certificates)`);
  return s;
};

const acmeDirectory: Reader<string> = (node, path, ctx) => {
  const s = str({ nonEmpty: true, max: 2048 })(node, path, ctx);
  if (s === undefined) return undefined;
  const short = ACME_DIRECTORIES[s];
  if (short !== undefined) return short;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return void ctx.error(posOf(node), path, `must be an https:// URL of an ACME directory, "letsencrypt" or "letsencrypt-staging" (got ${quote(s)})`);
  }
  if (u.protocol !== 'https:') return void ctx.error(posOf(node), path, `the ACME directory must be https:// (got ${quote(s)})`);
  return u.href;
};

/** `acme` (docs/tls.md#acme). */
export const ACME_SPEC = {
  email: req(acmeEmail),
  directory: opt(acmeDirectory, ACME_DIRECTORIES.letsencrypt!),
  domains: req(acmeDomains),
  challenge: opt(oneOf(ACME_CHALLENGES), 'tls-alpn-01'),
  storage: opt(filePath('acme storage'), ''),
  /** Absent = at two thirds of the lifetime. */
  renewBefore: maybe(duration(60 * SECOND, 365 * DAY)),
  retryMin: opt(duration(10, DAY), MINUTE),
  retryMax: opt(duration(10, 7 * DAY), 12 * HOUR),
  order: opt(bool(), true),
};

/** The document root. */
export const ROOT_SPEC = {
  listeners: req(listeners),
  upstreams: req(upstreams),
  log: opt(section(LOG_SPEC), { access: '-', format: 'text', level: 'info' } as ValuesOf<typeof LOG_SPEC>),
  /** `control: null` is accepted as "no socket", like `metrics: null`. */
  control: opt(nullable(section(CONTROL_SPEC)), null),
  metrics: opt(nullable(section(METRICS_SPEC)), null),
  stateFile: opt(nullable(filePath('state file')), null),
  shutdownTimeout: opt(duration(0, DAY), 30 * SECOND),
  health: opt(nullable(section(HEALTH_SPEC)), null),
  /** SIGTERM: report not ready (standby) for this long before accepting stops, so keepalived/BGP move the address first. */
  leaveDelay: opt(duration(0, 10 * MINUTE), 0),
  /** Default: the host name. */
  instance: opt(nullable(instanceName), null),
  workers: opt(workers, 1 as number | 'auto'),
  engine: opt(oneOf(['auto', 'js', 'native'] as const), 'auto'),
  acme: maybe(section(ACME_SPEC)),
};

export type RootObj = Obj<typeof ROOT_SPEC>;
