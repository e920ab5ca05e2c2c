/**
 * The operator actions, one module for the console keys and `ctl` commands
 * alike. Every action names a backend as `upstream/host:port` and answers
 * with a result an operator can read; none throws.
 */
import type { BackendId, ProbeResult } from '../core/types.js';
import type { Snapshot } from './snapshot.js';

/** Who asked: shown in the event log (`drain imap/10.0.0.2:143 by console`). */
export type Actor = 'console' | 'ctl' | 'statefile' | 'signal' | 'watcher';

export interface ActionResult {
  readonly ok: boolean;
  /** One line: `imap/10.0.0.2:143 draining (3 open connections continue)` or the error. */
  readonly message: string;
}

export interface ReloadResult extends ActionResult {
  /** One line per applied change (`+listener smtps 0.0.0.0:465`). */
  readonly changes: readonly string[];
}

export interface Actions {
  drain(id: BackendId, by: Actor): ActionResult;
  disable(id: BackendId, by: Actor): ActionResult;
  enable(id: BackendId, by: Actor): ActionResult;
  /** Probe now; resolves when the probe finished. */
  check(id: BackendId, by: Actor): Promise<ActionResult & { result?: ProbeResult }>;
  /** Close the backend's open connections (reason `killed`). */
  kill(id: BackendId, by: Actor): ActionResult;
  /** Re-read the config file and apply it as a diff. */
  reload(by: Actor): Promise<ReloadResult>;
  /** Everything an operator can see; `connLimit` bounds the connection list. */
  snapshot(connLimit?: number): Snapshot;
}
