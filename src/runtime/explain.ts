/**
 * `ctl explain CLIENT [LISTENER]`: which backend this instance sends a
 * client to and why, and a digest of the backend set, so operators of a
 * pair or a BGP set can compare instances at a glance: one config gives one
 * ranking everywhere (ip_hash keys backends by upstream and configured
 * address, balancers/ip-hash.ts); the digest differs exactly when the
 * instances disagree on the set (names, weights, backup, usable).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { ipHashRanking } from '../balancers/ip-hash.js';
import type { Config } from '../core/config.js';
import type { BackendId } from '../core/types.js';
import { displayState, type DisplayState } from './backend.js';
import type { Runtime } from './store.js';

export interface RankedBackend {
  readonly id: BackendId;
  readonly weight: number;
  readonly backup: boolean;
  /** A new client may be sent there now (health, operator state, passive failures, `down`). */
  readonly usable: boolean;
  readonly state: DisplayState;
}

export interface Explanation {
  readonly client: string;
  readonly listener: string;
  readonly upstream: string;
  readonly balance: string;
  /** ip_hash: best first, the order tried as better ones become unusable; other balancers: config order. */
  readonly ranking: readonly RankedBackend[];
  /** ip_hash: where a new connection from `client` goes now (undefined: nowhere usable). Other balancers: undefined. */
  readonly chosen?: BackendId;
  /** 8 hex digits over the backend set: equal on instances that see the same set. */
  readonly digest: string;
}

/** The explanation, or an error message naming what is wrong. */
export function explain(config: Config, runtime: Runtime, client: string, listenerName: string | undefined, now = Date.now()): Explanation | { error: string } {
  if (net.isIP(client) === 0) return { error: `"${client}" is not an IP address (explain CLIENT [LISTENER], e.g. explain 203.0.113.7 imap)` };
  const listener = listenerName === undefined ? config.listeners[0] : config.listeners.find((l) => l.name === listenerName);
  if (listener === undefined) return { error: `no listener named "${listenerName}" (one of ${config.listeners.map((l) => l.name).join(', ')})` };
  const up = config.upstreams[listener.upstream];
  const route = runtime.routes.upstreams.get(listener.upstream);
  if (up === undefined || route === undefined) return { error: `listener ${listener.name}: upstream ${listener.upstream} is not loaded` };
  const backends: RankedBackend[] = route.backends.map((b) => {
    const st = runtime.backend(b.id);
    return { id: b.id, weight: b.weight, backup: b.backup, usable: b.usable, state: st === undefined ? 'UNKNOWN' : displayState(st, now) };
  });
  const digest = backendDigest(backends);
  const base = { client, listener: listener.name, upstream: up.name, balance: up.balance, digest };
  if (up.balance !== 'ip_hash') return { ...base, ranking: backends };
  const ranking = ipHashRanking(backends, client).map(({ score: _s, ...b }) => b);
  // As select.ts picks: usable primaries first, backups only when no primary is usable.
  const chosen = ranking.find((b) => b.usable && !b.backup) ?? ranking.find((b) => b.usable && b.backup);
  return { ...base, ranking, ...(chosen === undefined ? {} : { chosen: chosen.id }) };
}

/** The backend set's digest: sha256 over `id weight backup usable` lines in config order, 8 hex digits. */
export function backendDigest(backends: readonly RankedBackend[]): string {
  const lines = backends.map((b) => `${b.id} w${b.weight}${b.backup ? ' backup' : ''} ${b.usable ? 'usable' : 'unusable'}`);
  return crypto.createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 8);
}

/** The explanation as `ctl explain` prints it. */
export function formatExplanation(e: Explanation): string {
  const lines = [`client ${e.client} on listener ${e.listener} -> upstream ${e.upstream} (${e.balance})`];
  if (e.balance === 'ip_hash') {
    lines.push(e.chosen === undefined ? '  no usable backend: the client would be refused' : `  goes to ${e.chosen}`);
    lines.push('  ranking (tried in this order as better ones become unusable):');
  } else {
    lines.push(`  ${e.balance} does not rank by client: the pick depends on the order of connections`);
  }
  const w = Math.max(...e.ranking.map((b) => b.id.length));
  e.ranking.forEach((b, i) => {
    const mark = b.id === e.chosen ? '  <- chosen' : '';
    lines.push(`  ${String(i + 1).padStart(2)}. ${b.id.padEnd(w)}  weight ${b.weight}${b.backup ? ' backup' : ''}  ${b.usable ? 'usable' : `not usable (${b.state})`}${mark}`);
  });
  const usable = e.ranking.filter((b) => b.usable).length;
  lines.push(`backend set: ${e.ranking.length} backends, ${usable} usable, digest ${e.digest}`);
  return lines.join('\n');
}
