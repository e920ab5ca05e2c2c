/**
 * The rise/fall verdict: a pure state machine fed one probe result at a time
 * (Envoy's HealthTransition, gobetween's worker `process()`). No clocks, no I/O.
 */
import type { ProbeResult } from '../core/types.js';

/**
 * A backend's check verdict. The counters measure progress toward a change only:
 * `fails` counts consecutive failures while `up`, `passes` consecutive passes while
 * `down`; both are 0 right after a change and while `unknown`.
 */
export interface Verdict {
  readonly state: 'unknown' | 'up' | 'down';
  readonly passes: number;
  readonly fails: number;
}

/** `changed`: the state flipped; `pending`: the result disagrees but the threshold is not reached. */
export type Transition = 'unchanged' | 'changed' | 'pending';

/** Consecutive results needed to flip: `rise` passes to go up, `fall` failures to go down. */
export interface Thresholds {
  readonly rise: number;
  readonly fall: number;
}

/** The verdict before any probe answered. */
export const UNKNOWN: Verdict = Object.freeze({ state: 'unknown', passes: 0, fails: 0 });

const UP: Verdict = Object.freeze({ state: 'up', passes: 0, fails: 0 });
const DOWN: Verdict = Object.freeze({ state: 'down', passes: 0, fails: 0 });

/**
 * What one probe result says about the backend: `true` it passed, `false` it failed,
 * `null` nothing at all. A LOCAL_ERROR probe never reached the backend: tcplb itself was
 * out of descriptors, ports or socket memory, and every backend would "fail" alike.
 */
export function evidence(r: Pick<ProbeResult, 'ok' | 'status'>): boolean | null {
  return r.status === 'LOCAL_ERROR' ? null : r.ok;
}

/** Feed one probe's evidence (see `evidence`) into verdict `v`. */
export function step(v: Verdict, ok: boolean | null, { rise, fall }: Thresholds): { next: Verdict; transition: Transition } {
  // No evidence moves nothing, not even the counters: a balancer short of descriptors
  // must not take its backends down (nor break a run of real results in two).
  if (ok === null) return { next: v, transition: 'unchanged' };
  // The first answer decides at once: waiting for `rise` passes at start-up would mean
  // seconds without service (DESIGN.md, "Health checks").
  if (v.state === 'unknown') return { next: ok ? UP : DOWN, transition: 'changed' };
  const agrees = ok === (v.state === 'up');
  // Agreement wipes any progress toward a change: only consecutive results count.
  if (agrees) return { next: v.state === 'up' ? UP : DOWN, transition: 'unchanged' };
  // A threshold below 1 (not valid config) behaves as 1 rather than never flipping.
  if (v.state === 'up') {
    const fails = v.fails + 1;
    return fails >= Math.max(1, fall)
      ? { next: DOWN, transition: 'changed' }
      : { next: { state: 'up', passes: 0, fails }, transition: 'pending' };
  }
  const passes = v.passes + 1;
  return passes >= Math.max(1, rise)
    ? { next: UP, transition: 'changed' }
    : { next: { state: 'down', passes, fails: 0 }, transition: 'pending' };
}
