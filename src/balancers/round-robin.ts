/**
 * `round_robin`: smooth weighted round-robin, exactly as nginx does it
 * (ngx_http_upstream_get_peer in ngx_http_upstream_round_robin.c).
 *
 * Each pick adds every candidate's weight to its `current`, takes the
 * candidate with the highest `current` (first one wins a tie, as in nginx) and
 * subtracts the total weight from the winner. Over any window of `total`
 * picks each backend is chosen exactly `weight` times, and heavy backends are
 * interleaved with light ones instead of served in a burst: {5,1,1} gives
 * `a a b a c a a`, not `a a a a a b c`.
 */
import type { BackendId } from '../core/types.js';
import type { Balancer, Candidate, PickContext } from './types.js';

interface Slot {
  /** nginx's `current_weight`. */
  current: number;
  /** Pick number at which this id was last a candidate; drives forgetting. */
  seen: number;
}

/**
 * The smooth weighted round-robin state machine, shared by `round_robin` and
 * by `least_conn` (which uses it to break ties).
 *
 * The candidate set may change between picks (health, drain, retry
 * exclusions, reload). An id that was a candidate in this pick or the one
 * before keeps its `current`, so a backend skipped for a single retry does
 * not lose its place; anything older is forgotten and starts again from 0 if
 * it comes back. The map therefore never holds more than the ids of the last
 * two picks.
 */
export class SmoothWeighted {
  readonly #slots = new Map<BackendId, Slot>();
  #tick = 0;

  /** Choose one of `candidates` and advance the state; undefined when empty. */
  pick(candidates: readonly Candidate[]): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const tick = ++this.#tick;
    let total = 0;
    let best: Candidate | undefined;
    let bestSlot: Slot | undefined;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      let slot = this.#slots.get(c.id);
      if (slot === undefined) {
        slot = { current: 0, seen: tick };
        this.#slots.set(c.id, slot);
      } else {
        slot.seen = tick;
      }
      slot.current += c.weight;
      total += c.weight;
      // Strict `>`: on equal current the earlier candidate wins, like nginx.
      if (bestSlot === undefined || slot.current > bestSlot.current) {
        best = c;
        bestSlot = slot;
      }
    }
    bestSlot!.current -= total;
    if (this.#slots.size > n) this.#forget(tick);
    return best;
  }

  /** Number of ids currently remembered (exposed for tests of the bound). */
  get size(): number {
    return this.#slots.size;
  }

  /** Drop ids that were not a candidate in this pick nor in the previous one. */
  #forget(tick: number): void {
    for (const [id, slot] of this.#slots) {
      if (slot.seen < tick - 1) this.#slots.delete(id);
    }
  }
}

/** Balancer for `balance: "round_robin"`. One instance per upstream. */
export class RoundRobinBalancer implements Balancer {
  readonly #swrr = new SmoothWeighted();

  /** Next candidate in smooth weighted order; the client address is ignored. */
  pick(candidates: readonly Candidate[], _ctx?: PickContext): Candidate | undefined {
    return this.#swrr.pick(candidates);
  }

  /** Number of backend ids holding state (bounded by the last two candidate sets). */
  get stateSize(): number {
    return this.#swrr.size;
  }
}

/** Factory registered as `round_robin`. */
export function createRoundRobin(): Balancer {
  return new RoundRobinBalancer();
}
