/**
 * The routing half of the data-plane policy, shared by every engine: the
 * current RoutingTable, one balancer per upstream, and the pick for one
 * connection attempt. Engines own the live per-backend counts it reads.
 */
import { createBalancer } from '../balancers/registry.js';
import type { Balancer } from '../balancers/types.js';
import type { BackendId, BalanceAlgorithm } from '../core/types.js';
import { selectBackend } from './select.js';
import type { RouteBackend, RoutingTable } from '../core/dataplane.js';

const EMPTY_TABLE: RoutingTable = { version: 0, upstreams: new Map() };

export class Router {
  #table: RoutingTable = EMPTY_TABLE;
  #balancers = new Map<string, { algo: BalanceAlgorithm; balancer: Balancer }>();

  get table(): RoutingTable {
    return this.#table;
  }

  /**
   * Replace the table; balancers keep their rotation state unless the
   * algorithm changed. With `changed`, only those upstreams are looked at.
   */
  set(table: RoutingTable, changed?: ReadonlySet<string>): void {
    this.#table = table;
    for (const name of changed ?? table.upstreams.keys()) {
      const up = table.upstreams.get(name);
      const cur = this.#balancers.get(name);
      if (up === undefined) this.#balancers.delete(name);
      else if (cur === undefined || cur.algo !== up.balance) {
        this.#balancers.set(name, { algo: up.balance, balancer: createBalancer(up.balance) });
      }
    }
    if (changed === undefined) for (const name of this.#balancers.keys()) if (!table.upstreams.has(name)) this.#balancers.delete(name);
  }

  /** Next backend of `upstream` for `clientIp`, skipping `tried`; undefined when none is usable. */
  pick(upstream: string, clientIp: string, tried: ReadonlySet<BackendId>, active: ReadonlyMap<BackendId, number>): RouteBackend | undefined {
    const up = this.#table.upstreams.get(upstream);
    const bal = this.#balancers.get(upstream);
    if (up === undefined || bal === undefined) return undefined;
    return selectBackend(up, bal.balancer, clientIp, tried, active);
  }
}

/** Add one to a count in a map. */
export function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/** Take one from a count in a map, deleting it at zero. */
export function dec<K>(m: Map<K, number>, k: K): void {
  const n = (m.get(k) ?? 1) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
