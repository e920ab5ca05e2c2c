/**
 * What changed between two valid configs, as one human line per change
 * (`+listener smtps *:465`, `-server imap/10.0.0.3:143`,
 * `~upstream imap balance round_robin->ip_hash`). Pure; used for the reload log.
 */
import { formatDuration } from './duration.js';
import type { Config, ListenerConfig, ListenerTlsConfig, ServerConfig, UpstreamConfig, UpstreamTlsConfig } from '../core/config.js';

/** Config-file names for the loaded config's fields (`idleTimeoutMs` is written `idleTimeout`). */
const SHOWN: Record<string, string> = { listenText: 'listen', stateFile: 'stateFile' };

/** A value as the operator wrote it: durations as `10s`, lists and strings bare. */
function show(key: string, v: unknown): string {
  if (key.endsWith('Ms') && typeof v === 'number') return formatDuration(v);
  if (Array.isArray(v)) return `[${v.join(',')}]`;
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'object' && 'challenge' in v) return String((v as { challenge: unknown }).challenge);
  return String(v);
}

function fields<T extends object>(a: T, b: T, keys: readonly (keyof T)[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const key = String(k);
    if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
    const name = SHOWN[key] ?? key.replace(/Ms$/, '');
    out.push(`${name} ${show(key, a[k])}->${show(key, b[k])}`);
  }
  return out;
}

const LISTENER_KEYS: readonly (keyof ListenerConfig)[] = [
  'listenText', 'upstream', 'connectTimeoutMs', 'idleTimeoutMs', 'proxyProtocol', 'maxConnections', 'maxConnectionsPerClient', 'allow', 'deny', 'acceptProxyProtocol',
  'starttls', 'requireTls', 'acme',
];
const SERVER_KEYS: readonly (keyof ServerConfig)[] = ['weight', 'maxFails', 'failTimeoutMs', 'backup', 'down', 'maxConns'];
const UPSTREAM_KEYS: readonly (keyof UpstreamConfig)[] = ['balance', 'onMarkedDown'];

/**
 * A listener's TLS settings as one line: each certificate by its names and
 * serial (never the PEM), so a renewed certificate shows as a change.
 */
export function showListenerTls(t: ListenerTlsConfig | undefined): string {
  if (t === undefined) return 'off';
  const certs = t.certificates.map((c) => `${c.names[0] ?? c.subject}#${c.serial.slice(-8)}`).join(',');
  return `[${certs}] ${t.minVersion}${t.alpn.length > 0 ? ` alpn=${t.alpn.join(',')}` : ''}${t.strictSni ? ' strictSni' : ''} handshake=${formatDuration(t.handshakeTimeoutMs)}`;
}

/** What decides a listener's TLS behaviour; equal keys mean nothing to reload. */
export function listenerTlsKey(t: ListenerTlsConfig | undefined): string {
  if (t === undefined) return 'off';
  return JSON.stringify([t.certificates.map((c) => [c.fingerprint, c.key]), t.minVersion, t.alpn, t.strictSni, t.handshakeTimeoutMs]);
}

function showUpstreamTls(t: UpstreamTlsConfig | undefined): string {
  if (t === undefined) return 'off';
  return `verify=${t.verify}${t.caFile === null ? '' : ` ca=${t.caFile}`}${t.servername === '' ? '' : ` servername=${t.servername}`}${t.certFile === null ? '' : ` cert=${t.certFile}`}`;
}

/** One line per change from `a` to `b`; empty when nothing that matters changed. */
export function diffConfigs(a: Config, b: Config): string[] {
  const out: string[] = [];
  const la = new Map(a.listeners.map((l) => [l.name, l]));
  const lb = new Map(b.listeners.map((l) => [l.name, l]));
  for (const [name, l] of la) if (!lb.has(name)) out.push(`-listener ${name} ${l.listenText}`);
  for (const [name, l] of lb) {
    const old = la.get(name);
    if (old === undefined) out.push(`+listener ${name} ${l.listenText} -> ${l.upstream}`);
    else {
      for (const f of fields(old, l, LISTENER_KEYS)) out.push(`~listener ${name} ${f}`);
      if (listenerTlsKey(old.tls) !== listenerTlsKey(l.tls)) out.push(`~listener ${name} tls ${showListenerTls(old.tls)}->${showListenerTls(l.tls)}`);
      // Same spelling, another address: a listen host name now resolves elsewhere (the listener is re-bound).
      if (old.listenText === l.listenText && old.listen.host !== l.listen.host) out.push(`~listener ${name} listen ${l.listenText} ${old.listen.host}->${l.listen.host}`);
    }
  }
  for (const [name, u] of Object.entries(a.upstreams)) if (!(name in b.upstreams)) out.push(`-upstream ${name} (${plural(u.servers.length, 'server')})`);
  for (const [name, u] of Object.entries(b.upstreams)) {
    const old = a.upstreams[name];
    if (old === undefined) {
      out.push(`+upstream ${name} ${u.balance} (${plural(u.servers.length, 'server')})`);
      continue;
    }
    for (const f of fields(old, u, UPSTREAM_KEYS)) out.push(`~upstream ${name} ${f}`);
    if (JSON.stringify(old.tls ?? null) !== JSON.stringify(u.tls ?? null)) out.push(`~upstream ${name} tls ${showUpstreamTls(old.tls)}->${showUpstreamTls(u.tls)}`);
    const ca = old.check === undefined ? 'none' : JSON.stringify(old.check);
    const cb = u.check === undefined ? 'none' : JSON.stringify(u.check);
    if (ca !== cb) {
      if (old.check === undefined) out.push(`~upstream ${name} check +${u.check!.type}`);
      else if (u.check === undefined) out.push(`~upstream ${name} check -${old.check.type}`);
      else for (const f of fields(old.check, u.check, Object.keys(u.check) as (keyof typeof u.check)[])) out.push(`~upstream ${name} check ${f}`);
    }
    const sa = new Map(old.servers.map((s) => [s.address, s]));
    const sb = new Map(u.servers.map((s) => [s.address, s]));
    for (const addr of sa.keys()) if (!sb.has(addr)) out.push(`-server ${name}/${addr}`);
    for (const [addr, s] of sb) {
      const o = sa.get(addr);
      if (o === undefined) out.push(`+server ${name}/${addr}`);
      else for (const f of fields(o, s, SERVER_KEYS)) out.push(`~server ${name}/${addr} ${f}`);
    }
  }
  for (const f of fields(a, b, ['shutdownTimeoutMs', 'stateFile', 'leaveDelayMs', 'instance'])) out.push(`~${f}`);
  for (const f of fields(a.health, b.health, ['require'])) out.push(`~health ${f}`);
  for (const f of fields(a, b, ['workers', 'engine'])) out.push(`~${f} (takes effect at restart)`);
  for (const f of fields(a.log, b.log, ['access', 'format', 'level'])) out.push(`~log ${f}`);
  for (const f of fields(a.control, b.control, ['socket'])) out.push(`~control ${f} (takes effect at restart)`);
  const ma = a.metrics.listen === null ? 'none' : `${a.metrics.listen.host}:${a.metrics.listen.port}`;
  const mb = b.metrics.listen === null ? 'none' : `${b.metrics.listen.host}:${b.metrics.listen.port}`;
  if (ma !== mb) out.push(`~metrics listen ${ma}->${mb} (takes effect at restart)`);
  if (JSON.stringify(a.acme ?? null) !== JSON.stringify(b.acme ?? null)) out.push(`~acme ${a.acme === undefined ? 'off' : a.acme.domains.join(',')}->${b.acme === undefined ? 'off' : b.acme.domains.join(',')}`);
  return out;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
