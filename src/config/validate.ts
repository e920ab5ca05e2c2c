/**
 * Whole-document rules that a per-key schema cannot express (listener ->
 * upstream references, default listener names, address clashes, duplicate
 * servers, http-only check keys), and the final build of the Config.
 */
import { resolve } from 'node:path';
import type { CheckConfig, Config, ListenerConfig, ServerConfig, UpstreamConfig } from './types.js';
import { isWildcardHost } from './address.js';
import { childPath, type Ctx, type Item, type ValuesOf } from './readers.js';
import {
  LISTENER_SPEC, ROOT_SPEC, SERVER_SPEC, CHECK_SPEC, UPSTREAM_SPEC,
  type Address, type ListenerObj, type RootObj, type UpstreamEntry,
} from './schema.js';
import { quote } from './suggest.js';

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

/** Listener and metrics addresses must not clash: same port on the same host, or on a wildcard and anything. */
function checkAddresses(endpoints: Array<{ label: string; path: string; addr: Address }>, ctx: Ctx): void {
  endpoints.sort((a, b) => a.addr.pos.line - b.addr.pos.line || a.addr.pos.column - b.addr.pos.column);
  const byPort = new Map<number, { wildcard?: (typeof endpoints)[number]; hosts: Map<string, (typeof endpoints)[number]> }>();
  for (const e of endpoints) {
    let slot = byPort.get(e.addr.port);
    if (slot === undefined) byPort.set(e.addr.port, (slot = { hosts: new Map() }));
    const wild = isWildcardHost(e.addr.host);
    const clash = slot.wildcard ?? (wild ? slot.hosts.values().next().value : slot.hosts.get(e.addr.host));
    if (clash !== undefined) {
      const how = clash.addr.text === e.addr.text ? 'already used by' : 'conflicts with';
      ctx.error(e.addr.pos, e.path, `address ${quote(e.addr.text)} ${how} ${clash.label} (${quote(clash.addr.text)})`);
      continue;
    }
    if (wild) slot.wildcard = e;
    else slot.hosts.set(e.addr.host, e);
  }
}

/** Run the cross-reference rules; report problems to ctx. */
export function crossCheck(root: RootObj, ctx: Ctx): Map<number, string> {
  const entries = root.values.upstreams ?? [];
  const upstreams = new Map(entries.map((e) => [e.name, e]));
  const upstreamNames = [...upstreams.keys()];
  checkUpstreams(entries, ctx);
  const items = root.values.listeners ?? [];
  const endpoints: Array<{ label: string; path: string; addr: Address }> = [];
  for (const { value: l, index } of items) {
    const u = l.values.upstream;
    if (u !== undefined && !upstreams.has(u)) {
      ctx.error(l.at.upstream!, childPath(l.path, 'upstream'), `no upstream named ${quote(u)}${ctx.suggest(u, upstreamNames)}`);
    }
    if (l.values.listen !== undefined) endpoints.push({ label: `listeners[${index}]`, path: childPath(l.path, 'listen'), addr: l.values.listen });
  }
  const metrics = root.values.metrics?.listen;
  if (metrics) endpoints.push({ label: 'metrics.listen', path: 'metrics.listen', addr: metrics });
  checkAddresses(endpoints, ctx);
  return listenerNames(items, upstreams, ctx);
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
  return v.check === undefined ? up : { ...up, check: buildCheck(v.check.values as ValuesOf<typeof CHECK_SPEC>) };
}

/**
 * Build the Config from a document that produced no issues (every required
 * value is then present, so the casts below hold).
 */
export function build(root: RootObj, names: ReadonlyMap<number, string>, file: string): Config {
  const v = root.values as ValuesOf<typeof ROOT_SPEC>;
  const listeners = v.listeners.map(({ value, index }): ListenerConfig => {
    const l = value.values as ValuesOf<typeof LISTENER_SPEC>;
    return {
      name: names.get(index)!, listen: { host: l.listen.host, port: l.listen.port }, listenText: l.listen.text, upstream: l.upstream,
      connectTimeoutMs: l.connectTimeout, idleTimeoutMs: l.idleTimeout, proxyProtocol: l.proxyProtocol,
      maxConnections: l.maxConnections, maxConnectionsPerClient: l.maxConnectionsPerClient, allow: [...l.allow], deny: [...l.deny],
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
    metrics: { listen: metrics ? { host: metrics.host, port: metrics.port } : null },
    stateFile: v.stateFile,
    shutdownTimeoutMs: v.shutdownTimeout,
    workers: v.workers,
    engine: v.engine,
  };
}
