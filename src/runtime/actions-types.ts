/**
 * The operator actions, one module for the console keys and `ctl` commands
 * alike. Every action names a backend as `upstream/host:port` and answers
 * with a result an operator can read; none throws.
 */
import type { BackendId, ProbeResult } from '../core/types.js';
import type { EventView, Snapshot } from './snapshot.js';
import type { Explanation } from './explain.js';
import type { Readiness } from './instance.js';
import type { CertsReport } from './cert-status.js';

/**
 * Who asked: shown in the event log (`drain imap/10.0.0.2:143 by console`).
 * A control socket client is named by the kernel's record of its process
 * (`ctl (user alice, pid 4242)`, control/peer.ts), or `ctl (peer unknown)`.
 */
export type Actor = 'console' | 'ctl' | `ctl (${string})` | 'statefile' | 'signal' | 'watcher' | 'acme';

export interface ActionResult {
  readonly ok: boolean;
  /** One line: `imap/10.0.0.2:143 draining (3 open connections continue)` or the error. */
  readonly message: string;
}

/**
 * The answer of drain/disable/enable. The state applies at once; saving it to
 * the state file takes a moment more, so the result carries that save.
 */
export interface AdminResult extends ActionResult {
  /**
   * Set when a state file is configured and the action was applied: resolves
   * with `undefined` once the state is on disk, or with the save's error (the
   * state stays applied, only not persisted; an event says so). Never rejects.
   */
  readonly persisted?: Promise<string | undefined>;
}

export interface ReloadResult extends ActionResult {
  /** One line per applied change (`+listener smtps 0.0.0.0:465`). */
  readonly changes: readonly string[];
}

export interface Actions {
  drain(id: BackendId, by: Actor): AdminResult;
  disable(id: BackendId, by: Actor): AdminResult;
  enable(id: BackendId, by: Actor): AdminResult;
  /** Probe now; resolves when the probe finished. */
  check(id: BackendId, by: Actor): Promise<ActionResult & { result?: ProbeResult }>;
  /** Close the backend's open connections (reason `killed`). */
  kill(id: BackendId, by: Actor): ActionResult;
  /** Re-read the config file and apply it as a diff. */
  reload(by: Actor): Promise<ReloadResult>;
  /**
   * Standby on: report not ready on purpose (keepalived/BGP move the address
   * away) while every open and new connection is still served; off: ready
   * again when the checks allow. Saved to the state file like drain.
   */
  standby(on: boolean, by: Actor): AdminResult;
  /** Ready for new clients (`tcplb-console health`), and why (not). */
  readiness(): Readiness;
  /** Where a client would go on a listener (default: the first) and the backend set's digest. */
  explain(client: string, listener?: string): Explanation | { error: string };
  /**
   * Each TLS listener's certificates (names, issuer, expiry, since when) and
   * its last certificate reload (`ctl certs`). Optional: absent, `certs` is
   * answered with an error.
   */
  certs?(): CertsReport;
  /** `ctl acme renew [DOMAIN]`: order the ACME certificate now (docs/tls.md#acme). Absent or resolving not ok without `acme`. */
  acmeRenew?(domain?: string): Promise<{ ok: boolean; message: string }>;
  /** Everything an operator can see; `connLimit` bounds the connection list. */
  snapshot(connLimit?: number): Snapshot;
  /**
   * Call `listener` with each event-log entry as it is recorded (what
   * `snapshot().events` gains); returns the unsubscribe. Optional: an Actions
   * without it has no event stream (`watch` then streams snapshots only).
   */
  onEvent?(listener: (e: EventView) => void): () => void;
}
