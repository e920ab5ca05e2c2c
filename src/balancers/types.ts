/**
 * The balancer contract. A balancer is pure: it gets the candidates that are
 * eligible right now (health, operator state, limits and retry exclusions were
 * already applied by the caller) and picks one. No sockets, timers or I/O.
 */
import type { BackendId } from '../core/types.js';

export interface Candidate {
  readonly id: BackendId;
  /** Configured weight, >= 1. */
  readonly weight: number;
  /** Connections currently open to this backend (least_conn reads it). */
  readonly active: number;
}

export interface PickContext {
  /** Client address as Node reports it (`127.0.0.5`, `::1`, `::ffff:10.0.0.1`). */
  readonly clientIp: string;
}

export interface Balancer {
  /** Pick one of `candidates`, or undefined when the list is empty. */
  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined;
}

export type BalancerFactory = () => Balancer;
