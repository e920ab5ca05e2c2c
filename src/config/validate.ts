/**
 * Whole-document rules that a per-key schema cannot express (listener ->
 * upstream references, default listener names, address clashes, duplicate
 * servers, http-only check keys), and the final build of the Config.
 */
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import type { CheckConfig, Config, ListenerConfig, ServerConfig, UpstreamConfig } from '../core/config.js';
import { clashKey, isWildcardHost } from './address.js';
import { childPath, type Ctx, type Item, type ValuesOf } from './readers.js';
import {
  LISTENER_SPEC, ROOT_SPEC, SERVER_SPEC, CHECK_SPEC, UPSTREAM_SPEC,
  type Address, type ListenerObj, type RootObj, type UpstreamEntry,
} from './schema.js';
import { quote } from './suggest.js';
import { storedCertificate } from './acme-store.js';

/** Keys that only make sense for `type: "http"`. */
const HTTP_ONLY = ['send', 'expect'] as const;

function checkUpstreams(entries: readonly UpstreamEntry[], ctx: Ctx): void {
  for (const { obj } of entries) {
    const seen = new Map<string, number>();
    for (const item of obj.values.servers ?? []) {
      const addr = item.value.values.address;
      if (addr === undefined) continue;
      const first = seen.get(addr.text);
      // A "host:port" shorthand has the address at the element itself.
      const shorthand = addr.pos.line === item.value.pos.line && addr.pos.column === item.value.pos.column;
      const path = shorthand ? item.value.path : childPath(item.value.path, 'address');
      if (first !== undefined) ctx.error(addr.pos, path, `duplicate server ${quote(addr.text)} (also servers[${first}])`);
      else seen.set(addr.text, item.index);
    }
    const check = obj.values.check;
    const type = check?.values.type;
    if (check === undefined || type === undefined) continue;
    // ssl_hello speaks TLS itself; MySQL has no implicit-TLS port to wrap.
    if ((type === 'ssl_hello' || type === 'mysql') && check.values.tls === true) {
      const at = check.keyAt['tls'];
      if (at !== undefined) ctx.error(at, childPath(check.path, 'tls'), `not valid with type ${quote(type)}${type === 'ssl_hello' ? ' (it sends its own ClientHello)' : ' (MySQL has no implicit TLS)'}`);
    }
    if (check.values.verify === true && check.values.tls !== true) {
      const at = check.keyAt['verify'];
      if (at !== undefined) ctx.error(at, childPath(check.path, 'verify'), 'needs tls: true (there is no certificate to verify without TLS)');
    }
    if (type === 'http') continue;
    for (const key of HTTP_ONLY) {
      const at = check.keyAt[key];
      if (at !== undefined) ctx.error(at, childPath(check.path, key), `only valid with type "http" (type is ${quote(type)})`);
    }
  }
}

/**
 * Effective listener names: explicit ones must be unique; an unnamed listener
 * takes its upstream's name unless another listener has or defaults to it.
 */
function listenerNames(items: ReadonlyArray<Item<ListenerObj>>, upstreams: ReadonlyMap<string, UpstreamEntry>, ctx: Ctx): Map<number, string> {
  const names = new Map<number, string>();
  const explicit = new Map<string, number>();
  // Per upstream, the first two unnamed listeners using it: enough to name "the other one" in O(1).
  const implicit = new Map<string, number[]>();
  for (const { value: l, index } of items) {
    const n = l.values.name;
    if (n !== undefined) {
      const first = explicit.get(n);
      if (first !== undefined) ctx.error(l.at.name!, childPath(l.path, 'name'), `duplicate listener name ${quote(n)} (also listeners[${first}])`);
      else explicit.set(n, index);
      names.set(index, n);
    } else if (l.keyAt.name === undefined && l.values.upstream !== undefined && upstreams.has(l.values.upstream)) {
      const list = implicit.get(l.values.upstream) ?? [];
      if (list.length < 2) list.push(index);
      implicit.set(l.values.upstream, list);
    }
  }
  const suggested = new Set<string>();
  for (const { value: l, index } of items) {
    const u = l.values.upstream;
    if (l.keyAt.name !== undefined || u === undefined || !upstreams.has(u)) continue;
    const pair = implicit.get(u) ?? [];
    const other = explicit.get(u) ?? (pair.length > 1 ? (pair[0] === index ? pair[1] : pair[0]) : undefined);
    if (other === undefined) {
      names.set(index, u);
      continue;
    }
    // Suggest "<upstream>-<port>", made unique against explicit names and earlier suggestions.
    const base = `${u}-${l.values.listen?.port ?? index + 1}`;
    let hint = base;
    for (let k = 2; k < 100 && (explicit.has(hint) || upstreams.has(hint) || suggested.has(hint)); k++) hint = `${base}-${k}`;
    suggested.add(hint);
    ctx.error(l.pos, l.path, `needs a "name": it would default to its upstream ${quote(u)}, which listeners[${other}] also uses (e.g. name: ${quote(hint)})`);
  }
  return names;
}

/** A listen address and where it is in the document. */
export interface Endpoint {
  readonly label: string;
  readonly path: string;
  readonly addr: Address;
}

/** Host names of listen addresses -> the IP each was resolved to (filled by ./resolve.ts; empty for pure validation). */
export type Resolved = ReadonlyMap<Address, string>;

/** Every listen address of the document: the listeners' and metrics.listen. */
export function listenEndpoints(root: RootObj): Endpoint[] {
  const out: Endpoint[] = [];
  for (const { value: l, index } of root.values.listeners ?? []) {
    if (l.values.listen !== undefined) out.push({ label: `listeners[${index}]`, path: childPath(l.path, 'listen'), addr: l.values.listen });
  }
  const metrics = root.values.metrics?.listen;
  if (metrics) out.push({ label: 'metrics.listen', path: 'metrics.listen', addr: metrics });
  return out;
}

/**
 * Listener and metrics addresses must not clash: same port on the same host,
 * or on a wildcard and anything. Hosts are compared as bound (resolved,
 * IPv4-mapped IPv6 as IPv4); messages show each address as written, with
 * what it became when that differs.
 */
function checkAddresses(endpoints: Endpoint[], resolved: Resolved, ctx: Ctx): void {
  endpoints.sort((a, b) => a.addr.pos.line - b.addr.pos.line || a.addr.pos.column - b.addr.pos.column);
  const byPort = new Map<number, { wildcard?: Endpoint; hosts: Map<string, Endpoint> }>();
  const keyOf = (e: Endpoint): string => clashKey(resolved.get(e.addr) ?? e.addr.host);
  const shown = (e: Endpoint): string => {
    const bound = resolved.get(e.addr);
    return quote(e.addr.written) + (bound === undefined ? '' : ` (${e.addr.host} is ${bound})`);
  };
  for (const e of endpoints) {
    let slot = byPort.get(e.addr.port);
    if (slot === undefined) byPort.set(e.addr.port, (slot = { hosts: new Map() }));
    const key = keyOf(e);
    const wild = isWildcardHost(key);
    const clash = slot.wildcard ?? (wild ? slot.hosts.values().next().value : slot.hosts.get(key));
    if (clash !== undefined) {
      const same = keyOf(clash) === key;
      const how = !same ? 'conflicts with' : clash.addr.written === e.addr.written ? 'already used by' : 'is the same address as';
      ctx.error(e.addr.pos, e.path, `address ${shown(e)} ${how} ${clash.label} (${shown(clash)})`);
      continue;
    }
    if (wild) slot.wildcard = e;
    else slot.hosts.set(key, e);
  }
}

/**
 * Run the cross-reference rules; report problems to ctx. `resolved` holds
 * the addresses listen host names were resolved to (for the clash check).
 */
export function crossCheck(root: RootObj, ctx: Ctx, resolved: Resolved = new Map()): Map<number, string> {
  const entries = root.values.upstreams ?? [];
  const upstreams = new Map(entries.map((e) => [e.name, e]));
  const upstreamNames = [...upstreams.keys()];
  checkUpstreams(entries, ctx);
  const items = root.values.listeners ?? [];
  for (const { value: l } of items) {
    const u = l.values.upstream;
    if (u !== undefined && !upstreams.has(u)) {
      ctx.error(l.at.upstream!, childPath(l.path, 'upstream'), `no upstream named ${quote(u)}${ctx.suggest(u, upstreamNames)}`);
    }
  }
  for (const { value: l } of items) {
    // The PROXY header goes in clear before the client's bytes; to a server
    // spoken to in TLS it would have to precede our handshake: not done yet.
    const up = l.values.upstream === undefined ? undefined : upstreams.get(l.values.upstream);
    // With STARTTLS the header goes first in clear, before the greeting: no conflict.
    if (up?.obj.values.tls !== undefined && l.values.starttls === undefined && l.values.proxyProtocol !== undefined && l.values.proxyProtocol !== false && l.at.proxyProtocol !== undefined) {
      ctx.error(l.at.proxyProtocol, childPath(l.path, 'proxyProtocol'), `not supported with upstream ${quote(up.name)}, which has "tls" (tcplb does not yet send a PROXY header ahead of its own TLS handshake)`);
    }
    // The header from the front tier would have to be read before our own TLS handshake: not done yet.
    if (l.values.acceptProxyProtocol !== undefined && l.values.tls !== undefined && l.at.acceptProxyProtocol !== undefined) {
      ctx.error(l.at.acceptProxyProtocol, childPath(l.path, 'acceptProxyProtocol'), 'not supported together with "tls" yet (the front tier\'s header comes before the TLS handshake); terminate TLS at the front tier, or relay it and terminate it on the backends');
    }
  }
  checkStarttls(items.map((i) => i.value), upstreams, ctx);
  checkAcme(root, ctx);
  checkAddresses(listenEndpoints(root), resolved, ctx);
  for (const { value: name, pos, index } of root.values.health?.require ?? []) {
    if (!upstreams.has(name)) ctx.error(pos, `health.require[${index}]`, `no upstream named ${quote(name)}${ctx.suggest(name, upstreamNames)}`);
  }
  return listenerNames(items, upstreams, ctx);
}

/**
 * `acme` and the listeners that use it (docs/tls.md#acme): a TLS listener
 * needs certificates or `tls.acme`; `tls.acme` and a listener's `acme`
 * (http-01) need the top-level block; the chosen challenge needs a listener
 * that answers it.
 */
function checkAcme(root: RootObj, ctx: Ctx): void {
  const acme = root.values.acme;
  // Present but invalid (already reported): not "missing" as well.
  const written = root.at.acme !== undefined;
  const items = (root.values.listeners ?? []).map((i) => i.value);
  let alpn = false;
  let http = false;
  for (const l of items) {
    const tls = l.values.tls;
    if (tls !== undefined && l.at.tls !== undefined) {
      if (tls.certificates.length === 0 && !tls.acme) {
        ctx.error(l.at.tls, childPath(l.path, 'tls'), 'needs "certificates": [{ cert, key }] or "acme": true (the certificate of the top-level "acme" block)');
      }
      if (tls.acme && !written) ctx.error(l.at.tls, childPath(childPath(l.path, 'tls'), 'acme'), 'needs the top-level "acme" block (email, domains) that says which certificate to obtain');
      if (tls.acme && l.values.starttls === undefined) alpn = true;
    }
    if (l.values.acme === true && l.keyAt.acme !== undefined) {
      const at = l.keyAt.acme;
      const path = childPath(l.path, 'acme');
      if (!written) ctx.error(at, path, 'needs the top-level "acme" block (email, domains)');
      else if (tls !== undefined) ctx.error(at, path, 'answers http-01 on a plain listener; on a TLS listener use "tls": { "acme": true } (tls-alpn-01)');
      else if (l.values.starttls !== undefined) ctx.error(at, path, 'answers http-01 (a plain HTTP listener, port 80), not on a STARTTLS listener');
      else if (l.values.acceptProxyProtocol !== undefined) ctx.error(at, path, 'not supported together with "acceptProxyProtocol" yet (the request line comes after the front tier\'s header)');
      else http = true;
    }
  }
  if (acme === undefined) return;
  const at = root.at.acme!;
  if (acme.challenge === 'tls-alpn-01' && !alpn) {
    ctx.error(at, 'acme.challenge', 'tls-alpn-01 needs a TLS listener with "tls": { "acme": true } (on port 443, where the CA connects), or set "challenge": "http-01"');
  }
  if (acme.challenge === 'http-01' && !http) {
    ctx.error(at, 'acme.challenge', 'http-01 needs a plain listener with "acme": true (on port 80, where the CA connects), or set "challenge": "tls-alpn-01"');
  }
  if (acme.retryMax < acme.retryMin) ctx.error(at, 'acme.retryMax', `must not be below retryMin`);
}

/**
 * `starttls` / `requireTls` (docs/tls.md#starttls-at-the-balancer). A
 * listener is either implicit TLS (`tls` alone: TLS from the first byte) or
 * STARTTLS (`starttls` + `tls`: the certificates answer the upgrade), never
 * both: serve 993 and 143 with two listeners. The servers of an upstream
 * with `tls` either speak TLS at once or after STARTTLS, so one upstream
 * with `tls` cannot serve both kinds of listener.
 */
function checkStarttls(items: readonly ListenerObj[], upstreams: ReadonlyMap<string, UpstreamEntry>, ctx: Ctx): void {
  for (const l of items) {
    const st = l.values.starttls;
    const at = l.keyAt.starttls;
    if (l.values.requireTls === true && st === undefined && l.keyAt.requireTls !== undefined) {
      ctx.error(l.keyAt.requireTls, childPath(l.path, 'requireTls'), 'needs "starttls" ("imap", "pop3" or "smtp"): an implicit-TLS listener is TLS from the first byte anyway');
    }
    if (st === undefined || at === undefined) continue;
    if (l.at.tls === undefined) {
      ctx.error(at, childPath(l.path, 'starttls'), `needs "tls": { certificates: [{ cert, key }] }: the certificate the balancer presents when the client upgrades`);
      continue;
    }
    if ((l.values.tls?.alpn.length ?? 0) > 0) {
      ctx.error(at, childPath(l.path, 'starttls'), 'cannot go with "tls.alpn": a STARTTLS client negotiates no ALPN (remove "alpn", or use an implicit-TLS listener)');
    }
    const name = l.values.upstream;
    const up = name === undefined ? undefined : upstreams.get(name);
    if (up?.obj.values.tls === undefined) continue;
    const other = items.find((o) => o.values.upstream === name && o.values.starttls === undefined);
    if (other !== undefined) {
      ctx.error(at, childPath(l.path, 'starttls'), `upstream ${quote(name!)} has "tls" and also serves listener ${quote(other.values.name ?? name!)} without starttls: its servers cannot both speak TLS at once and after STARTTLS (use two upstreams)`);
    }
  }
}

function buildServer(v: ValuesOf<typeof SERVER_SPEC>): ServerConfig {
  return {
    address: v.address.text, host: v.address.host, port: v.address.port, weight: v.weight, maxFails: v.maxFails,
    failTimeoutMs: v.failTimeout, backup: v.backup, down: v.down, maxConns: v.maxConns,
  };
}

function buildCheck(v: ValuesOf<typeof CHECK_SPEC>): CheckConfig {
  return {
    type: v.type, intervalMs: v.interval, rise: v.rise, fall: v.fall, timeoutMs: v.timeout, tls: v.tls, servername: v.servername,
    verify: v.verify, port: v.port, send: v.send, expect: [...v.expect], proxyProtocol: v.proxyProtocol,
  };
}

function buildUpstream(e: UpstreamEntry): UpstreamConfig {
  const v = e.obj.values as ValuesOf<typeof UPSTREAM_SPEC>;
  const up: UpstreamConfig = {
    name: e.name, balance: v.balance, onMarkedDown: v.onMarkedDown,
    servers: v.servers.map((s) => buildServer(s.value.values as ValuesOf<typeof SERVER_SPEC>)),
  };
  const withCheck = v.check === undefined ? up : { ...up, check: buildCheck(v.check.values as ValuesOf<typeof CHECK_SPEC>) };
  return v.tls === undefined ? withCheck : { ...withCheck, tls: v.tls };
}

/** The instance name when the config sets none: the host name, cut to a valid name (`lb1.example.net`). */
function instanceDefault(): string {
  const h = os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return h === '' ? 'tcplb' : h;
}

/**
 * Build the Config from a document that produced no issues (every required
 * value is then present, so the casts below hold).
 */
export function build(root: RootObj, names: ReadonlyMap<number, string>, file: string, resolved: Resolved = new Map()): Config {
  const v = root.values as ValuesOf<typeof ROOT_SPEC>;
  // Engines bind the resolved address; listenText keeps the operator's spelling for messages.
  const bound = (a: Address): { host: string; port: number } => ({ host: resolved.get(a) ?? a.host, port: a.port });
  const acme = v.acme === undefined ? undefined : {
    email: v.acme.email, directory: v.acme.directory, domains: [...v.acme.domains], challenge: v.acme.challenge,
    // Default: `acme/` beside the config file.
    storage: v.acme.storage !== '' ? v.acme.storage : resolve(file === '' ? '.' : dirname(resolve(file)), 'acme'),
    renewBeforeMs: v.acme.renewBefore ?? null, retryMinMs: v.acme.retryMin, retryMaxMs: v.acme.retryMax, order: v.acme.order,
  };
  // The certificate obtained before (a restart serves it and orders nothing); none yet, an expired or a broken one = none.
  const stored = acme === undefined ? undefined : storedCertificate(acme.storage, Date.now());
  const acmeCerts = stored?.ok === true ? [stored.certificate] : [];
  const listeners = v.listeners.map(({ value, index }): ListenerConfig => {
    const l = value.values as ValuesOf<typeof LISTENER_SPEC>;
    const answers = acme === undefined ? undefined
      : l.tls?.acme === true && l.starttls === undefined ? 'tls-alpn-01' as const
        : l.acme && l.tls === undefined ? 'http-01' as const : undefined;
    const upTls = v.upstreams.find((u) => u.name === l.upstream)?.obj.values.tls;
    return {
      name: names.get(index)!, listen: bound(l.listen), listenText: l.listen.written, upstream: l.upstream,
      connectTimeoutMs: l.connectTimeout, idleTimeoutMs: l.idleTimeout, proxyProtocol: l.proxyProtocol,
      maxConnections: l.maxConnections, maxConnectionsPerClient: l.maxConnectionsPerClient, allow: [...l.allow], deny: [...l.deny],
      ...(l.tls === undefined ? {} : {
        tls: {
          certificates: [...(l.tls.acme ? acmeCerts : []), ...l.tls.certificates], minVersion: l.tls.minVersion, alpn: [...l.tls.alpn],
          strictSni: l.tls.strictSni, handshakeTimeoutMs: l.tls.handshakeTimeout,
        },
      }),
      ...(upTls === undefined ? {} : { upstreamTls: upTls }),
      ...(l.starttls === undefined ? {} : { starttls: l.starttls, requireTls: l.requireTls }),
      ...(l.acceptProxyProtocol === undefined ? {} : { acceptProxyProtocol: { from: [...l.acceptProxyProtocol.from], timeoutMs: l.acceptProxyProtocol.timeout } }),
      ...(answers === undefined ? {} : { acme: { storage: acme!.storage, challenge: answers } }),
    };
  });
  const metrics = v.metrics?.listen;
  return {
    file: file === '' ? '' : resolve(file),
    listeners,
    // fromEntries defines own properties, so even odd names cannot touch the prototype.
    upstreams: Object.fromEntries(v.upstreams.map((e) => [e.name, buildUpstream(e)])),
    log: { ...v.log },
    control: { socket: v.control?.socket ?? null },
    metrics: { listen: metrics ? bound(metrics) : null },
    stateFile: v.stateFile,
    shutdownTimeoutMs: v.shutdownTimeout,
    health: { require: v.health?.require ? [...new Set(v.health.require.map((i) => i.value))] : null },
    leaveDelayMs: v.leaveDelay,
    instance: v.instance ?? instanceDefault(),
    workers: v.workers,
    engine: v.engine,
    ...(acme === undefined ? {} : { acme }),
  };
}
