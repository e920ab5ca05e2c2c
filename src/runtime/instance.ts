/**
 * The instance as a member of an HA pair or a BGP set: whether it is ready
 * to be sent new clients (`tcplb-console health`, the command keepalived's
 * vrrp_script and ExaBGP's healthcheck run), and the two ways it is not on
 * purpose: standby (`ctl standby on`, a planned handover, kept across
 * restarts in the state file) and leaving (SIGTERM with `leaveDelay`: not
 * ready first, accepting stops after the delay).
 *
 * Ready means: not in standby, not leaving, and every upstream of
 * `health.require` (default: all) has a backend this instance would send a
 * new client to *and* has seen answer — a backend that was never probed
 * yet is routed to optimistically at start, but it does not make the
 * instance ready, or a freshly started balancer whose backends are
 * unreachable from it would pull the address to itself.
 */
import type { Config } from '../core/config.js';
import type { Actor } from './actions-types.js';
import { displayState, type BackendState } from './backend.js';
import type { StandbyRecord } from './state-file.js';
import type { Runtime } from './store.js';

export interface Readiness {
  readonly ready: boolean;
  /** One line: `ready: imap 2/2, smtp 1/2 usable` or `not ready: standby since 12:00 by ctl (user alice, pid 42)`. */
  readonly why: string;
}

/** Instance-level state: standby and leaving. Owned by the app, read by readiness and the snapshot. */
export class InstanceStatus {
  standby: StandbyRecord | null = null;
  /** Set on SIGTERM with a leaveDelay: epoch ms when accepting stops. */
  leavingUntil: number | null = null;
  /** Set once the proxy stops accepting (after the leave delay, or at once without one). */
  stopping = false;

  setStandby(on: boolean, by: Actor, now = Date.now()): boolean {
    if (on === (this.standby !== null)) return false;
    this.standby = on ? { by, since: now } : null;
    return true;
  }
}

/** `HH:MM:SS` of an epoch ms, local time (what the console's clock shows). */
function clock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * Would a new client be sent here, and has it been seen answering (or is it
 * unchecked)? The routing table's rule (store.ts #routeUpstream) without its
 * start-up optimism for backends not probed yet.
 */
function confirmedUsable(b: BackendState): boolean {
  return b.admin === 'ready' && !b.server.down && b.passiveUntil === 0 && b.op === 'up';
}

/** Readiness of the instance now. Pure over its inputs; cheap (one pass over the required upstreams). */
export function readiness(config: Config, runtime: Runtime, status: InstanceStatus, now = Date.now()): Readiness {
  if (status.stopping) return { ready: false, why: 'not ready: shutting down' };
  if (status.leavingUntil !== null) {
    const left = Math.max(0, Math.ceil((status.leavingUntil - now) / 1000));
    return { ready: false, why: `not ready: leaving (SIGTERM): stops accepting in ${left} s` };
  }
  if (status.standby !== null) return { ready: false, why: `not ready: standby since ${clock(status.standby.since)} by ${status.standby.by}` };
  const names = config.health.require ?? Object.keys(config.upstreams);
  const parts: string[] = [];
  for (const name of names) {
    const states = runtime.backendsOf(name);
    const ok = states.filter(confirmedUsable).length;
    if (ok === 0) return { ready: false, why: `not ready: upstream ${name} has no usable backend (${tally(states, now)})` };
    parts.push(`${name} ${ok}/${states.length}`);
  }
  return { ready: true, why: parts.length === 0 ? 'ready: no upstream required' : `ready: ${parts.join(', ')} usable` };
}

/** `2 DOWN, 1 DRAINING, 1 not probed yet`: why an upstream has nothing usable. */
function tally(states: readonly BackendState[], now: number): string {
  if (states.length === 0) return 'no servers';
  const n = new Map<string, number>();
  for (const b of states) {
    const s = displayState(b, now);
    const k = s === 'UNKNOWN' ? 'not probed yet' : s;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return [...n].map(([k, c]) => `${c} ${k}`).join(', ');
}
