/**
 * Backend selection for one connection attempt: apply the per-connection
 * filters the data plane owns (already-tried backends, `maxConns`), prefer
 * primaries over backups, then let the upstream's balancer pick.
 */
import type { Balancer, Candidate } from '../balancers/types.js';
import type { BackendId } from '../core/types.js';
import type { RouteBackend, RouteUpstream } from '../core/dataplane.js';

interface Pickable extends Candidate {
  readonly backend: RouteBackend;
}

/**
 * Pick a backend of `up` for `clientIp`, skipping `tried`. `active` gives the
 * live session count per backend. Returns undefined when nothing is usable.
 */
export function selectBackend(
  up: RouteUpstream,
  balancer: Balancer,
  clientIp: string,
  tried: ReadonlySet<BackendId> | undefined,
  active: ReadonlyMap<BackendId, number>,
): RouteBackend | undefined {
  const primaries: Pickable[] = [];
  const backups: Pickable[] = [];
  for (const b of up.backends) {
    if (!b.usable || (tried !== undefined && tried.has(b.id))) continue;
    const n = active.get(b.id) ?? 0;
    if (b.maxConns > 0 && n >= b.maxConns) continue;
    (b.backup ? backups : primaries).push({ id: b.id, weight: b.weight, active: n, backend: b });
  }
  const pool = primaries.length > 0 ? primaries : backups;
  if (pool.length === 0) return undefined;
  const picked = balancer.pick(pool, { clientIp }) as Pickable | undefined;
  return picked?.backend;
}
