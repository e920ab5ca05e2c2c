/**
 * Passive health (nginx's `max_fails` / `fail_timeout`): failed client
 * connects, counted in a sliding window, take a server out for a while.
 * Pure decisions, no clocks or timers: the runtime store feeds it the time,
 * keeps the state and runs the timer that brings the server back.
 */
import { formatDuration } from '../config/duration.js';

/** A server's `maxFails` (0 = no passive checks) and `failTimeout` in ms. */
export interface PassiveLimits {
  readonly maxFails: number;
  readonly failTimeoutMs: number;
}

/** What the store keeps per backend. */
export interface PassiveState {
  /** Times of the recent connect failures (within `failTimeoutMs` of the last one). */
  readonly fails: readonly number[];
  /** When the running timeout ends (epoch ms); 0: none running. */
  readonly until: number;
}

/** The outcome of one failed connect. */
export type PassiveDecision =
  /** `maxFails: 0`: nothing counted, nothing changes. */
  | { readonly kind: 'off' }
  /** Counted; the server stays as it is. */
  | { readonly kind: 'counted'; readonly fails: number[] }
  /** `maxFails` reached: out until `until`; the count starts again from zero. */
  | { readonly kind: 'out'; readonly until: number; readonly count: number; readonly reason: string };

/** One failed connect at `now` (`detail`: what failed, for the reason shown). */
export function connectFailure(s: PassiveState, now: number, { maxFails, failTimeoutMs }: PassiveLimits, detail: string): PassiveDecision {
  if (maxFails <= 0) return { kind: 'off' };
  // Only failures within the window count: a slow trickle never takes a server out.
  const fails = s.fails.filter((t) => now - t < failTimeoutMs);
  fails.push(now);
  // A timeout already running is not restarted by more failures: the server comes back on time.
  if (fails.length < maxFails || s.until !== 0) return { kind: 'counted', fails };
  const reason = `${fails.length} connect failure${fails.length > 1 ? 's' : ''} within ${formatDuration(failTimeoutMs)} (${detail})`;
  return { kind: 'out', until: now + failTimeoutMs, count: fails.length, reason };
}

/** Why a server is back once its timeout ran out. */
export function timeoutPassed(failTimeoutMs: number): string {
  return `fail_timeout ${formatDuration(failTimeoutMs)} passed`;
}
