/**
 * One backend's state: what the operator set (admin), what checks concluded
 * (op), what passive failures imposed (passiveUntil), failed connects. Only
 * the runtime store writes these; everything else reads snapshots.
 */
import type { AdminState, BackendId, ChangeCause, OpState, ProbeResult } from '../core/types.js';
import type { ServerConfig } from '../core/config.js';

/** What the console and `ctl status` show as a backend's state. */
export type DisplayState = 'UP' | 'DOWN' | 'UNKNOWN' | 'DRAINING' | 'DISABLED';

export interface BackendState {
  readonly id: BackendId;
  readonly upstream: string;
  server: ServerConfig;
  admin: AdminState;
  op: OpState;
  /** Why op is what it is (`2 connect failures within 10s`, `timeout after 2000 ms`). */
  opReason: string;
  opCause: ChangeCause;
  /** Epoch ms of the last change of the display state. */
  since: number;
  /** Consecutive probe passes / failures (rise/fall progress). */
  passes: number;
  fails: number;
  /** Passive failure timestamps within the current failTimeout window. */
  passiveFails: number[];
  /** Epoch ms until which passive failures keep the backend out; 0 = not out (cleared by a timer, not by reading the clock). */
  passiveUntil: number;
  lastProbe: (ProbeResult & { at: number }) | undefined;
  /**
   * Failed connects. Connections open now are the engine's count
   * (activeByBackend); totals and bytes are in the runtime's Tally.
   */
  connectFailures: number;
}

export function newBackendState(upstream: string, id: BackendId, server: ServerConfig, op: OpState): BackendState {
  return {
    id,
    upstream,
    server,
    admin: 'ready',
    op,
    opReason: op === 'up' ? 'no active check' : 'not probed yet',
    opCause: 'config',
    since: Date.now(),
    passes: 0,
    fails: 0,
    passiveFails: [],
    passiveUntil: 0,
    lastProbe: undefined,
    connectFailures: 0,
  };
}

/** The single state shown for a backend: admin overrides health; `down: true` and passive failures are DOWN. */
export function displayState(b: BackendState, now: number): DisplayState {
  if (b.admin === 'disabled') return 'DISABLED';
  if (b.admin === 'drain') return 'DRAINING';
  if (b.server.down || b.op === 'down' || b.passiveUntil !== 0) return 'DOWN';
  return b.op === 'up' ? 'UP' : 'UNKNOWN';
}
