/**
 * Messages between the primary (control plane) and its relay worker
 * processes, over the cluster IPC channel. Plain JSON: Maps travel as entry
 * lists. Workers report in batches (at most one message per flush interval),
 * so a busy worker costs the primary one message per 100 ms, not one per
 * connection.
 */
import type { ListenerConfig } from '../core/config.js';
import type { BackendId, EndReason } from '../core/types.js';
import { LayeredMap } from '../core/layered-map.js';
import type { BoundAddress, ListenerResult, RouteUpstream, RoutingTable, SessionRecord, TlsSides } from '../core/dataplane.js';

/**
 * A routing table on the wire: whole, or (`partial`) only the upstreams that
 * changed, with `removed` naming those that are gone — so a state change of
 * one backend among 10,000 upstreams sends one upstream, not all of them.
 */
export interface WireTable {
  readonly version: number;
  readonly upstreams: [string, RouteUpstream][];
  readonly partial?: true;
  readonly removed?: string[];
}

/** The whole table, or with `changed` only those upstreams. */
export function toWire(t: RoutingTable, changed?: ReadonlySet<string>): WireTable {
  if (changed === undefined) return { version: t.version, upstreams: [...t.upstreams] };
  const upstreams: [string, RouteUpstream][] = [];
  const removed: string[] = [];
  for (const name of changed) {
    const up = t.upstreams.get(name);
    if (up === undefined) removed.push(name);
    else upstreams.push([name, up]);
  }
  return { version: t.version, upstreams, partial: true, removed };
}

/**
 * Back to a table, with each backend's `maxConns` split between `workers`
 * (each worker only sees its own connections; rounded up so a limit never
 * becomes 0 = unlimited).
 */
export function fromWire(w: WireTable, workers: number, prev?: RoutingTable): RoutingTable {
  const changes = new Map<string, RouteUpstream | undefined>();
  for (const name of w.removed ?? []) changes.set(name, undefined);
  for (const [name, up] of w.upstreams) {
    const backends = workers <= 1 ? up.backends : up.backends.map((b) => (b.maxConns > 0 ? { ...b, maxConns: Math.ceil(b.maxConns / workers) } : b));
    changes.set(name, { ...up, backends });
  }
  // A partial table applies to the worker's current one (a LayeredMap: cost of the change only).
  if (w.partial === true && prev !== undefined && prev.upstreams instanceof LayeredMap) {
    return { version: w.version, upstreams: (prev.upstreams as LayeredMap<string, RouteUpstream>).with(changes) };
  }
  const base = new Map(w.partial === true && prev !== undefined ? prev.upstreams : []);
  for (const [name, up] of changes) {
    if (up === undefined) base.delete(name);
    else base.set(name, up);
  }
  return { version: w.version, upstreams: LayeredMap.of(base) };
}

/** Primary -> worker. */
export type ToWorker =
  | { t: 'routes'; table: WireTable }
  | { t: 'prepare'; seq: number; listeners: ListenerConfig[] }
  | { t: 'commit'; seq: number }
  | { t: 'abort'; seq: number }
  | { t: 'kill'; backend: BackendId; reason: EndReason }
  | { t: 'shutdown'; timeoutMs: number }
  | { t: 'closeNow' };

/** A live session as first reported: [id, listener, client, backend, start]. */
/** [id, listener, client, backend, start, tls] (tls: where TLS is terminated so far, '-' none). */
export type WireSession = [number, string, string, string, number, TlsSides];

/** Worker -> primary. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'prepared'; seq: number; phase: 'p' | 'c'; ok: boolean; results: ListenerResult[]; bound: [string, BoundAddress][] }
  | { t: 'log'; line: string }
  | {
      t: 'batch';
      /** sessionOpened calls per backend since the last batch (before `closed`). */
      opened: [BackendId, number][];
      connectOk: BackendId[];
      connectFailed: [BackendId, string][];
      closed: SessionRecord[];
      /** Worker session ids of the `closed` records, same order. */
      closedIds: number[];
      /** Sessions open longer than one flush, not reported before. */
      live: WireSession[];
      /** [id, bytesIn, bytesOut, tls] of reported live sessions whose counts moved (a STARTTLS upgrade moves them). */
      bytes: [number, number, number, TlsSides][];
      perListener: [string, number][];
      perBackend: [BackendId, number][];
      total: number;
      liveBytes: number;
    }
  | { t: 'stopped' };
