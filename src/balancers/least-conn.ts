/**
 * `least_conn`: the candidate with the fewest open connections per unit of
 * weight, as nginx's ngx_http_upstream_least_conn_module chooses.
 */
import type { Balancer, Candidate, PickContext } from './types.js';
import { SmoothWeighted } from './round-robin.js';

/**
 * Balancer for `balance: "least_conn"`. One instance per upstream.
 *
 * `active/weight` is compared by cross-multiplying
 * (`a.active * b.weight < b.active * a.weight`) so no float rounding can make
 * two equal loads look different. When several candidates share the lowest
 * load, smooth weighted round-robin among just those breaks the tie: with
 * idle backends the balancer then behaves like `round_robin`, instead of
 * always sending the burst of new connections to the first one listed.
 */
export class LeastConnBalancer implements Balancer {
  readonly #tieBreak = new SmoothWeighted();

  /** Least-loaded candidate; ties rotate by weight. The client address is ignored. */
  pick(candidates: readonly Candidate[], _ctx?: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    let best = candidates[0]!;
    let tied = 1;
    for (let i = 1; i < n; i++) {
      const c = candidates[i]!;
      const lhs = c.active * best.weight;
      const rhs = best.active * c.weight;
      if (lhs < rhs) {
        best = c;
        tied = 1;
      } else if (lhs === rhs) {
        tied++;
      }
    }
    // A single winner is returned as is, without touching the round-robin
    // state (nginx does the same: `current_weight` only moves among ties).
    if (tied === 1) return best;
    const ties: Candidate[] = [];
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (c.active * best.weight === best.active * c.weight) ties.push(c);
    }
    return this.#tieBreak.pick(ties);
  }
}

/** Factory registered as `least_conn`. */
export function createLeastConn(): Balancer {
  return new LeastConnBalancer();
}
