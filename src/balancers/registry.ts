/**
 * Config name → balancer factory, as gobetween's src/balance/registry.go.
 * The `balance` key is validated against BALANCE_ALGORITHMS by the config
 * loader, so every name that reaches here has an entry; the Record type makes
 * the compiler insist on that when an algorithm is added. An unknown name
 * (only possible by bypassing the types) throws LB_ERR_CONFIG_INVALID.
 */
import { ERR_CONFIG_INVALID, LbError } from '../core/errors.js';
import type { BalanceAlgorithm } from '../core/types.js';
import type { Balancer, BalancerFactory } from './types.js';
import { createIpHash } from './ip-hash.js';
import { createLeastConn } from './least-conn.js';
import { createRoundRobin } from './round-robin.js';

/** Every algorithm by its config name. Frozen: nothing registers at run time. */
export const BALANCERS: Readonly<Record<BalanceAlgorithm, BalancerFactory>> = Object.freeze({
  round_robin: createRoundRobin,
  least_conn: createLeastConn,
  ip_hash: createIpHash,
});

/**
 * A fresh balancer for `name`. Each upstream gets its own instance because
 * round_robin and least_conn keep per-upstream rotation state.
 */
export function createBalancer(name: BalanceAlgorithm): Balancer {
  // hasOwn, not `in`: a name such as "toString" must not reach Object.prototype.
  if (!Object.hasOwn(BALANCERS, name)) {
    throw new LbError(ERR_CONFIG_INVALID, `unknown balance algorithm "${String(name)}"`);
  }
  return BALANCERS[name]();
}
