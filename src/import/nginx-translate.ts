/**
 * nginx `tcp {}` (nginx_tcp_proxy_module) / `stream {}` directive trees ->
 * a commented tcplb config tree (see ./index.ts for the JSON5 text). Every
 * directive ends up as a value, a comment, or a `not translated` comment plus
 * a warning: nothing is dropped silently.
 */
import { isIPv4 } from 'node:net';
import { CHECK_TYPES, formatHostPort } from '../core/types.js';
import { canonicalHost, cidrProblem, parseAddress } from '../config/address.js';
import { formatDuration } from '../config/duration.js';
import { asWritten, type Directive } from './nginx-parse.js';

/** A JSON5 value for the emitter. */
export type J = string | number | boolean | JObj | JArr;
/** An object; entries without `key` and `value` are comment-only lines. */
export interface JObj { readonly kind: 'obj'; readonly entries: JEntry[] }
/** An array; entries' keys are ignored. */
export interface JArr { readonly kind: 'arr'; readonly items: JEntry[] }
/** A member or element with comment lines above it and an optional trailing comment. */
export interface JEntry { key?: string; value?: J; above?: string[]; after?: string }

/** The translated config: the tree, header comment lines, and one warning per untranslated directive. */
export interface Translation { readonly root: JObj; readonly header: string[]; readonly warnings: string[] }

/** Which nginx module a block belongs to: nginx_tcp_proxy_module's `tcp {}` or nginx's `stream {}`. */
export type Flavor = 'tcp' | 'stream';
/** Build an object / array node. */
export const obj = (entries: JEntry[]): JObj => ({ kind: 'obj', entries });
export const arr = (items: JEntry[]): JArr => ({ kind: 'arr', items });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const fmt = formatDuration;

/** nginx process-level directives that have no meaning for tcplb: noted, not warned about. */
export const PROCESS = new Set(['user', 'worker_processes', 'events', 'http', 'error_log', 'pid', 'worker_rlimit_nofile', 'worker_cpu_affinity',
  'worker_priority', 'load_module', 'daemon', 'master_process', 'env', 'lock_file', 'pcre_jit', 'thread_pool', 'timer_resolution',
  'working_directory', 'worker_shutdown_timeout', 'ssl_engine', 'google_perftools_profiles']);

/** TLS directives tcplb has no equivalent for (ssl_ciphers, ssl_session_cache, proxy_ssl_*, ssl_preread). */
const TLS = 'no tcplb equivalent: tcplb terminates TLS from listen … ssl, ssl_certificate, ssl_certificate_key and ssl_protocols only';
const REASONS: Readonly<Record<string, string>> = {
  so_keepalive: 'tcplb sets no TCP keepalive on client connections', tcp_nodelay: 'tcplb always sets TCP_NODELAY',
  access_log: 'tcplb writes its own access log: set log.access', error_log: 'tcplb logs to stderr: set log.level',
  resolver: 'tcplb resolves backend names with the system resolver', resolver_timeout: 'tcplb resolves names with the system resolver',
  proxy_buffer: 'tcplb has no buffer setting', proxy_buffer_size: 'tcplb has no buffer setting', ssl: TLS, ssl_preread: TLS,
  health_check: 'NGINX Plus health checks: add a check: {...} to the upstream', limit_conn: 'see maxConnectionsPerClient',
  proxy_next_upstream: 'tcplb always tries the next backend when a connect fails', max_busy: 'see maxConns',
  busyness: 'no busyness balancer: least_conn is the closest', server_name: 'tcplb does not route by name',
  slow_start: 'tcplb gives a recovered server its full weight at once', resolve: 'tcplb resolves names when it connects',
};
/** Why a directive named `name` has no translation. */
export const reasonFor = (name: string): string => REASONS[name] ?? (name.startsWith('ssl_') || name.startsWith('proxy_ssl') ? TLS : 'no tcplb equivalent');

/** Parse an nginx time (`5s`, `1m30s`, `500ms`); a bare number counts `bareMs` (seconds in nginx directives). */
export function parseNginxTime(text: string, bareMs = 1000): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: HOUR, d: DAY, w: 7 * DAY, M: 30 * DAY, y: 365 * DAY };
  const re = /(\d+)(ms|s|m|h|d|w|M|y)?\s*/y;
  const t = text.trim();
  let total = 0;
  if (t === '') return undefined;
  while (re.lastIndex < t.length) {
    const m = re.exec(t);
    if (m === null || (m[2] === undefined && re.lastIndex < t.length)) return undefined;
    total += Number(m[1]) * (m[2] === undefined ? bareMs : units[m[2]]!);
  }
  return total;
}

/** Collects warnings and formats comments. */
export class Notes {
  readonly warnings: string[] = [];
  /** A `not translated` comment (and its warning); `what` defaults to the directive as written. */
  skip(d: Directive, reason: string, what = asWritten(d)): string {
    this.warnings.push(`${d.src.file}:${d.line}: not translated: ${what} -- ${reason}`);
    return `not translated: ${what} (${at(d)}) -- ${reason}`;
  }
}
/** `file:line` of a directive, as shown in comments. */
export const at = (d: Directive): string => `${d.src.ref}:${d.line}`;

/** A valid tcplb name (letters, digits, `_ . -`, at most 64) made from `s`, unique within `taken`. */
export function uniqueName(s: string, taken: Set<string>): string {
  let base = s.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 60) || 'upstream';
  let name = base;
  for (let k = 2; taken.has(name); k++) name = `${base}-${k}`;
  taken.add(name);
  return name;
}

interface Timed { readonly ms: number; readonly d: Directive }
/** Listener settings of a `tcp {}`/`stream {}` block or one of its servers (servers inherit the block's). */
export interface Settings {
  connect?: Timed; idle: Record<string, Timed>; pp?: { v: false | 'v1'; d: Directive }; acl?: Directive[]; aclOwn: boolean;
  /** ssl_certificate / ssl_certificate_key (paired in order, as nginx does for RSA + ECDSA) and ssl_protocols, for `listen … ssl`. */
  certs?: Directive[]; keys?: Directive[]; protocols?: Directive;
  /** Set at this level (a server's own replace the block's, as nginx inherits arrays). */
  certsOwn?: boolean; keysOwn?: boolean;
}
const IDLE: Record<Flavor, readonly string[]> = { tcp: ['timeout', 'proxy_timeout', 'proxy_read_timeout', 'proxy_send_timeout'], stream: ['proxy_timeout'] };

/** Read a listener setting valid at block or server level into `s`; false if `c` is not one. */
export function setting(c: Directive, s: Settings, flavor: Flavor, n: Notes, out: string[]): boolean {
  if (c.name === 'proxy_connect_timeout' || IDLE[flavor].includes(c.name)) {
    const ms = c.args.length === 1 ? parseNginxTime(c.args[0]!) : undefined;
    const max = c.name === 'proxy_connect_timeout' ? HOUR : 7 * DAY;
    if (ms === undefined || ms < 1 || ms > max) out.push(n.skip(c, ms === undefined ? 'not an nginx time' : `outside tcplb's range 1ms..${fmt(max)}`));
    else if (c.name === 'proxy_connect_timeout') s.connect = { ms, d: c };
    else s.idle[c.name] = { ms, d: c };
    return true;
  }
  if (c.name === 'proxy_protocol') {
    if (c.args[0] === 'on' || c.args[0] === 'off') s.pp = { v: c.args[0] === 'on' ? 'v1' : false, d: c };
    else out.push(n.skip(c, 'expected on or off'));
    return true;
  }
  if (c.name === 'ssl_certificate' || c.name === 'ssl_certificate_key') {
    const v = c.args[0] ?? '';
    if (c.args.length !== 1 || v.includes('$') || v.startsWith('data:') || v.startsWith('engine:')) {
      out.push(n.skip(c, 'tcplb reads a certificate and key from files (no variables, data: or engine: keys)'));
      return true;
    }
    if (c.name === 'ssl_certificate') {
      if (!s.certsOwn) [s.certs, s.certsOwn] = [[], true];
      s.certs!.push(c);
    } else {
      if (!s.keysOwn) [s.keys, s.keysOwn] = [[], true];
      s.keys!.push(c);
    }
    return true;
  }
  if (c.name === 'ssl_protocols') {
    s.protocols = c;
    return true;
  }
  if (c.name !== 'allow' && c.name !== 'deny') return false;
  if (!s.aclOwn) [s.acl, s.aclOwn] = [[], true]; // rules at a level replace the inherited ones, as in nginx
  s.acl!.push(c);
  return true;
}

function ipToBig(ip: string): bigint {
  if (isIPv4(ip)) return ip.split('.').reduce((a, p) => (a << 8n) | BigInt(p), 0n);
  let s = ip;
  const dot = s.lastIndexOf(':');
  if (s.includes('.')) s = `${s.slice(0, dot + 1)}${(Number(ipToBig(s.slice(dot + 1))) >>> 16).toString(16)}:${(Number(ipToBig(s.slice(dot + 1))) & 0xffff).toString(16)}`;
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}
function bigToIp(v6: boolean, n: bigint): string {
  const parts = Array.from({ length: v6 ? 8 : 4 }, (_, i) => Number((n >> BigInt((v6 ? 7 - i : 3 - i) * (v6 ? 16 : 8))) & (v6 ? 0xffffn : 0xffn)));
  return v6 ? parts.map((p) => p.toString(16)).join(':') : parts.join('.');
}
interface Range { v6: boolean; lo: bigint; hi: bigint }
function rangeOf(cidr: string): Range[] {
  if (cidr === 'all') return [rangeOf('0.0.0.0/0')[0]!, rangeOf('::/0')[0]!];
  const [ip = '', bits] = cidr.split('/');
  const v6 = !isIPv4(ip);
  const width = v6 ? 128n : 32n;
  const host = width - BigInt(bits ?? width);
  const lo = (ipToBig(ip) >> host) << host;
  return [{ v6, lo, hi: lo + (1n << host) - 1n }];
}
const inside = (a: Range, b: Range): boolean => a.v6 === b.v6 && a.lo >= b.lo && a.hi <= b.hi;
const overlap = (a: Range, b: Range): boolean => inside(a, b) || inside(b, a);

/**
 * nginx's ordered allow/deny rules (first match wins, then allow) as tcplb's
 * allow/deny lists (deny wins; empty allow = everyone), verified address
 * range by address range; where no lists are exact, a warning names an address.
 */
export function translateAcl(rules: readonly Directive[], n: Notes): { allow: string[]; deny: string[]; above: string[] } {
  const above = [`${rules.map(asWritten).join(' ')} (${at(rules[0]!)})`];
  const live: Array<{ d: Directive; allow: boolean; cidr: string; r: Range[] }> = [];
  for (const d of rules) {
    const cidr = d.args[0] ?? '';
    if (live.some((x) => x.cidr === 'all')) above.push(`ignored: ${asWritten(d)} (${at(d)}) -- nginx never gets past the "all" rule before it`);
    else if (d.args.length !== 1 || (cidr !== 'all' && cidrProblem(cidr) !== undefined)) above.push(n.skip(d, 'tcplb filters IPv4/IPv6 addresses and CIDRs only'));
    else live.push({ d, allow: d.name === 'allow', cidr, r: rangeOf(cidr) });
  }
  const cidrs = live.filter((x) => x.cidr !== 'all');
  const defaultDeny = live.some((x) => x.cidr === 'all' && !x.allow);
  let allow: string[] = [];
  let deny: string[];
  if (defaultDeny) {
    allow = cidrs.filter((x) => x.allow).map((x) => x.cidr);
    // A deny matters only where a later allow would otherwise let its addresses in.
    deny = cidrs.filter((x, i) => !x.allow && cidrs.slice(i + 1).some((y) => y.allow && overlap(x.r[0]!, y.r[0]!))).map((x) => x.cidr);
    if (allow.length === 0) deny = ['0.0.0.0/0', '::/0'];
    above.push(allow.length > 0 ? 'deny all after the allows: only the allow list gets in' : 'deny all: nobody gets in');
  } else {
    deny = cidrs.filter((x, i) => !x.allow && !cidrs.slice(0, i).some((y) => y.allow && inside(x.r[0]!, y.r[0]!))).map((x) => x.cidr);
  }
  const nginx = (v6: boolean, ip: bigint): boolean => live.find((x) => x.r.some((r) => r.v6 === v6 && ip >= r.lo && ip <= r.hi))?.allow ?? true;
  const within = (list: string[], v6: boolean, ip: bigint): boolean => list.some((c) => rangeOf(c).some((r) => r.v6 === v6 && ip >= r.lo && ip <= r.hi));
  for (const v6 of [false, true]) {
    const max = v6 ? (1n << 128n) - 1n : (1n << 32n) - 1n;
    const points = [0n, ...live.flatMap((x) => x.r.filter((r) => r.v6 === v6).flatMap((r) => [r.lo, r.hi + 1n]))].filter((p) => p <= max);
    const bad = points.find((p) => nginx(v6, p) !== ((allow.length === 0 || within(allow, v6, p)) && !within(deny, v6, p)));
    if (bad !== undefined) {
      const ip = bigToIp(v6, bad);
      above.push(n.skip(rules[0]!, `the rule order cannot be expressed exactly (in tcplb deny wins over allow): nginx ${nginx(v6, bad) ? 'allows' : 'denies'} ${ip}, these lists do not: review them`, 'allow/deny order'));
      break;
    }
  }
  return { allow, deny, above };
}

/** Check parameters (`check interval=5000 ...`): interval/timeout are milliseconds in nginx_tcp_proxy_module. */
function translateCheck(c: Directive, ports: number[], send: Directive | undefined, expect: Directive | undefined, n: Notes, above: string[]): JObj | undefined {
  const p = new Map<string, string>();
  const notes: string[] = [];
  for (const a of c.args) {
    const eq = a.indexOf('=');
    if (eq > 0) p.set(a.slice(0, eq), a.slice(eq + 1));
    else above.push(n.skip(c, 'unknown check parameter', a));
  }
  const type = p.get('type') ?? 'tcp';
  if (!(CHECK_TYPES as readonly string[]).includes(type)) {
    above.push(n.skip(c, `type=${type} has no tcplb probe (${CHECK_TYPES.join(', ')})`));
    return undefined;
  }
  const num = (key: string, def: number, min: number, max: number, ms: boolean): number => {
    const raw = p.get(key);
    p.delete(key);
    if (raw === undefined) return notes.push(`${key}=${def}`), def;
    const v = /^\d+$/.test(raw) ? Number(raw) : ms ? parseNginxTime(raw, 1) : undefined;
    if (v !== undefined && v >= min && v <= max) return v;
    above.push(n.skip(c, `must be ${min}..${max}${ms ? ' ms' : ''}; using ${def}`, `${key}=${raw}`));
    return def;
  };
  p.delete('type');
  const entries: JEntry[] = [{ key: 'type', value: type }];
  entries.push({ key: 'interval', value: fmt(num('interval', 30_000, 10, HOUR, true)) });
  entries.push({ key: 'rise', value: num('rise', 2, 1, 100, false) }, { key: 'fall', value: num('fall', 5, 1, 100, false) });
  entries.push({ key: 'timeout', value: fmt(num('timeout', 1000, 1, 10 * 60_000, true)) });
  if (p.has('port')) entries.push({ key: 'port', value: num('port', 0, 0, 65535, false) });
  const dd = p.get('default_down');
  p.delete('default_down');
  for (const [k, v] of p) above.push(n.skip(c, 'unknown check parameter', `${k}=${v}`));
  above.unshift(`${asWritten(c)} (${at(c)}) -- interval= and timeout= are milliseconds here${notes.length ? `; module defaults: ${notes.join(' ')}` : ''}`);
  if (dd !== undefined) above.push(`default_down=${dd}: not needed, tcplb's first probe runs at once and decides up or down`);
  const tlsPort: Record<number, string> = { 993: 'imap', 995: 'pop3', 465: 'smtp', 443: 'http' };
  const proto = ports.length > 0 && ports.every((x) => x === ports[0]) ? tlsPort[ports[0]!] : undefined;
  if (proto && type === 'tcp') above.push(`hint: port ${ports[0]} speaks ${proto.toUpperCase()} inside TLS: type: "${proto}", tls: true would check the service itself`);
  else if (proto && type !== 'ssl_hello') {
    above.push(`hint: port ${ports[0]} speaks TLS first: a plain "${type}" probe gets no answer there and marks every server down (in nginx too): add tls: true`);
  }
  for (const d of [send, expect]) {
    if (d === undefined) continue;
    if (type !== 'http') above.push(`ignored: ${asWritten(d)} (${at(d)}) -- only type=http uses it (nginx ignores it too)`);
    else if (d === send && d.args.length === 1 && d.args[0] !== '' && d.args[0]!.length <= 65536) entries.push({ key: 'send', value: d.args[0]!, after: `${d.name} (${at(d)})` });
    else if (d === expect && d.args.length > 0 && d.args.every((a) => /^http_[2-5]xx$/.test(a))) entries.push({ key: 'expect', value: arr(d.args.map((a) => ({ value: a.slice(5) }))), after: `${d.name} (${at(d)})` });
    else above.push(n.skip(d, d === send ? 'expected one non-empty request string' : 'tcplb accepts http_2xx..http_5xx'));
  }
  return obj(entries);
}

/** One upstream `server` line -> a servers[] element (or a comment-only element). */
function translateServer(d: Directive, flavor: Flavor, seen: Map<string, number>, n: Notes): JEntry {
  let addr = d.args[0] ?? '';
  if (flavor === 'tcp' && /^[^:[\]]+$/.test(addr)) addr += ':80'; // the module's default port
  const a = parseAddress(addr, false);
  if (!a.ok) return { above: [n.skip(d, addr.startsWith('unix:') ? 'tcplb connects to TCP backends only' : a.reason)] };
  const address = formatHostPort(canonicalHost(a.host), a.port);
  const dup = seen.get(address);
  if (dup !== undefined) return { above: [n.skip(d, `same address as line ${dup}: tcplb lists each backend once, raise its weight instead`)] };
  seen.set(address, d.line);
  const above: string[] = [];
  const entries: JEntry[] = [{ key: 'address', value: address }];
  const ints: Record<string, [string, number, number]> = { weight: ['weight', 1, 1000], max_fails: ['maxFails', 0, 1000], max_conns: ['maxConns', 0, 10_000_000] };
  for (const p of d.args.slice(1)) {
    const [k = '', v] = p.split(/=(.*)/s);
    const int = ints[k];
    const ms = k === 'fail_timeout' && v !== undefined ? parseNginxTime(v) : undefined;
    if (int && v !== undefined && /^\d+$/.test(v) && Number(v) >= int[1] && Number(v) <= int[2]) entries.push({ key: int[0], value: Number(v) });
    else if (ms !== undefined && ms >= 1 && ms <= DAY) entries.push({ key: 'failTimeout', value: fmt(ms) });
    else if ((p === 'backup' || p === 'down') && v === undefined) entries.push({ key: p, value: true });
    else above.push(n.skip(d, int || k === 'fail_timeout' ? 'value outside what tcplb accepts' : reasonFor(k), `${p} (in "${asWritten(d)}")`));
  }
  return entries.length === 1 ? { value: address, above } : { value: obj(entries), above };
}

/** A translated upstream: its tcplb name, its `upstreams` member, and whether it has a usable server. */
export interface Ups { readonly name: string; readonly entry: JEntry; readonly ok: boolean }

/** An `upstream name { ... }` block -> an `upstreams` member (ok false: no usable server, comments only). */
export function translateUpstream(d: Directive, name: string, flavor: Flavor, n: Notes): Ups {
  const top: string[] = [];
  const servers: JEntry[] = [];
  const seen = new Map<string, number>();
  let balance: JEntry | undefined;
  let check: Directive | undefined;
  let send: Directive | undefined;
  let expect: Directive | undefined;
  for (const c of d.block ?? []) {
    const hashKey = c.args[0] === '$remote_addr' || c.args[0] === '$binary_remote_addr';
    if (c.name === 'server') servers.push(translateServer(c, flavor, seen, n));
    else if (c.name === 'ip_hash' || (c.name === 'hash' && hashKey && c.args.length <= 2)) {
      const plain = c.name === 'hash' && c.args[1] !== 'consistent' ? ' (plain nginx hash remaps most clients when a server leaves)' : '';
      balance = { key: 'balance', value: 'ip_hash', above: [`${asWritten(c)} (${at(c)}) -- by client address; always consistent in tcplb: when a server leaves, only its clients move${plain}`] };
    } else if (c.name === 'least_conn' && c.args.length === 0) balance = { key: 'balance', value: 'least_conn', above: [`${asWritten(c)} (${at(c)})`] };
    else if (c.name === 'check') check = c;
    else if (c.name === 'check_http_send') send = c;
    else if (c.name === 'check_http_expect_alive') expect = c;
    else if (c.name === 'zone') top.push(`ignored: ${asWritten(c)} (${at(c)}) -- not needed, tcplb keeps upstream state in its own process`);
    else top.push(n.skip(c, c.name === 'hash' ? 'tcplb hashes only the client address ($remote_addr)' : reasonFor(c.name)));
  }
  const origin = `from ${flavor} { upstream ${d.args[0]} { … } } at ${at(d)}${name !== d.args[0] ? ` (renamed "${name}": tcplb names use letters, digits, _ . -)` : ''}`;
  const addressOf = (v: J | undefined): string | undefined => (typeof v === 'string' ? v : typeof v === 'object' && v.kind === 'obj' ? String(v.entries[0]!.value) : undefined);
  const ports = servers.flatMap((s) => addressOf(s.value) ?? []).map((a) => Number(a.slice(a.lastIndexOf(':') + 1)));
  if (ports.length === 0) return { name, ok: false, entry: { above: [origin, n.skip(d, 'no server of it could be translated'), ...top, ...servers.flatMap((s) => s.above ?? [])] } };
  const entries: JEntry[] = top.map((t) => ({ above: [t] }));
  if (balance) entries.push(balance);
  entries.push({ key: 'servers', value: arr(servers) });
  if (check) {
    const above: string[] = [];
    const value = translateCheck(check, ports, send, expect, n, above);
    entries.push(value ? { key: 'check', value, above } : { above });
  } else {
    for (const x of [send, expect]) if (x) entries.push({ above: [`ignored: ${asWritten(x)} (${at(x)}) -- there is no check directive`] });
  }
  return { name, ok: true, entry: { key: name, value: obj(entries), above: [origin] } };
}

/** A listener before naming and clash checks. */
export interface Draft { flavor: Flavor; host: string; port: number; listen: number | string; d: Directive; upstream: string; above: string[]; s: Settings; acl?: ReturnType<typeof translateAcl>; tls?: JObj }

/**
 * `listen … ssl` with its server's (or block's) ssl_certificate and
 * ssl_certificate_key pairs and ssl_protocols: the listener's `tls`, or why
 * not (a note). tcplb's lowest version is TLSv1.2: `minVersion` is the
 * lowest of ssl_protocols that tcplb has (older ones are noted).
 */
export function translateTls(l: Directive, s: Settings, n: Notes, above: string[]): JObj | undefined {
  const certs = s.certs ?? [];
  const keys = s.keys ?? [];
  if (certs.length === 0) {
    above.push(n.skip(l, 'ssl without ssl_certificate: add tls: { certificates: [{ cert, key }] } to the listener', `ssl (in "${asWritten(l)}")`));
    return undefined;
  }
  if (keys.length !== certs.length) {
    above.push(n.skip(l, `${certs.length} ssl_certificate but ${keys.length} ssl_certificate_key: tcplb pairs them in order`, `ssl (in "${asWritten(l)}")`));
    return undefined;
  }
  const pairs = certs.map((c, i) => ({ value: obj([{ key: 'cert', value: c.args[0]! }, { key: 'key', value: keys[i]!.args[0]! }]) }));
  const rel = certs.concat(keys).some((d) => !d.args[0]!.startsWith('/'));
  const e: JEntry[] = [{
    key: 'certificates', value: arr(pairs),
    above: [`from ${certs.concat(keys).map((d) => `${asWritten(d)} (${at(d)})`).join(' ')}: the first is the default for clients without SNI`,
      ...(rel ? ['relative paths: nginx reads them from its prefix (conf) folder, tcplb from this file\'s folder: make them absolute or move the files'] : [])],
  }];
  const p = s.protocols;
  if (p !== undefined) {
    const known = p.args.filter((v) => v === 'TLSv1.2' || v === 'TLSv1.3');
    const old = p.args.filter((v) => v !== 'TLSv1.2' && v !== 'TLSv1.3');
    if (known.length === 0) above.push(n.skip(p, 'tcplb speaks TLSv1.2 and TLSv1.3 only: minVersion left at TLSv1.2'));
    else {
      const after = `${asWritten(p)} (${at(p)})${old.length > 0 ? `: ${old.join(' ')} not offered (tcplb's lowest is TLSv1.2)` : ''}`;
      if (old.length > 0) n.warnings.push(`${p.src.file}:${p.line}: not translated: ${old.join(' ')} (in "${asWritten(p)}") -- tcplb's lowest TLS version is TLSv1.2`);
      e.push({ key: 'minVersion', value: known.includes('TLSv1.2') ? 'TLSv1.2' : 'TLSv1.3', after });
    }
  }
  return obj(e);
}

/** Build a listener object from a draft; `name` already unique. */
export function listenerObj(l: Draft, name: string): JObj {
  const e: JEntry[] = [{ key: 'name', value: name }, { key: 'listen', value: l.listen }, { key: 'upstream', value: l.upstream }];
  const { connect, idle, pp } = l.s;
  if (connect) e.push({ key: 'connectTimeout', value: fmt(connect.ms), after: `${asWritten(connect.d)} (${at(connect.d)})` });
  const idles = Object.values(idle);
  if (idles.length > 0) {
    const ms = Math.max(...idles.map((t) => t.ms));
    const above = idles.length > 1 ? ['tcplb has one idle timer (no byte either way): the longest of nginx\'s timeouts'] : [];
    e.push({ key: 'idleTimeout', value: fmt(ms), above, after: idles.map((t) => `${asWritten(t.d)} (${at(t.d)})`).join(' ') });
  }
  if (pp?.v === 'v1') e.push({ key: 'proxyProtocol', value: 'v1', after: `${asWritten(pp.d)} (${at(pp.d)}): nginx sends version 1` });
  if (l.tls) e.push({ key: 'tls', value: l.tls, above: ['TLS terminated here (nginx: listen … ssl); the backends get the decrypted bytes, as from nginx'] });
  if (l.acl) {
    if (l.acl.allow.length > 0) e.push({ key: 'allow', value: arr(l.acl.allow.map((c) => ({ value: c }))), above: l.acl.above });
    if (l.acl.deny.length > 0) e.push({ key: 'deny', value: arr(l.acl.deny.map((c) => ({ value: c }))), above: l.acl.allow.length > 0 ? [] : l.acl.above });
    if (l.acl.allow.length + l.acl.deny.length === 0) e.push({ above: l.acl.above });
  }
  return obj(e);
}

