/**
 * A plain, serialisable picture of everything an operator can see: what the
 * console renders and what `ctl status` prints (headless parity). Built on
 * demand from the store and the engine; never shared mutable state.
 */
import type { BackendId, ProbeStatus } from '../core/types.js';
import type { SessionInfo } from '../core/dataplane.js';
import type { DisplayState } from './backend.js';

export interface BackendView {
  readonly id: BackendId;
  readonly address: string;
  readonly state: DisplayState;
  /** Why it is in that state (`3 consecutive failures: timeout after 2000 ms`, `drained by operator`). */
  readonly reason: string;
  /** Epoch ms of the last state change. */
  readonly since: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly active: number;
  readonly total: number;
  readonly connectFailures: number;
  /** client -> backend, backend -> client, over finished and open connections. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** rise/fall progress: `2/2` (up, rise), `fail 3/5` (counting failures), '' without checks. */
  readonly progress: string;
  readonly lastProbe?: {
    readonly at: number;
    readonly ok: boolean;
    readonly status: ProbeStatus;
    readonly latencyMs: number;
    readonly detail: string;
  };
  /** From TLS probes: whole days until the certificate expires, and whether it covers `servername`. */
  readonly cert?: { readonly daysLeft: number; readonly coversName?: boolean; readonly trusted: boolean; readonly subject: string };
  /**
   * A console steering a fleet (control/fleet.ts): the backend's state on
   * each instance, in fleet order; the other fields are summed (counts) or
   * taken from the first instance that reports the backend.
   */
  readonly instances?: readonly InstanceState[];
}

/** One instance's view of a backend in a fleet. */
export interface InstanceState {
  readonly name: string;
  /** `UNREACHABLE`: the instance cannot be asked now; `ABSENT`: its config has no such backend. */
  readonly state: DisplayState | 'UNREACHABLE' | 'ABSENT';
}

export interface UpstreamView {
  readonly name: string;
  readonly balance: string;
  /** `imap every 5s rise 2 fall 5`, or '' without active checks. */
  readonly check: string;
  readonly backends: readonly BackendView[];
}

export interface ListenerView {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  /** TLS listeners: the earliest expiry (epoch ms) of their certificates (the console's mark; `ctl certs` has the detail). */
  readonly certExpiry?: number;
}

/** What the console header shows of ACME (docs/tls.md#acme-the-balancer-gets-its-own-certificate). */
export interface AcmeView {
  readonly ordering: boolean;
  /** Failed orders since the last success (the certificate in service keeps serving). */
  readonly failures: number;
  readonly lastError: string | null;
  /** Epoch ms of the next order (renewal or retry), or null. */
  readonly nextAttempt: number | null;
  readonly hasCertificate: boolean;
}

/** One line of the event log: probes, state changes, operator actions, reloads. */
export interface EventView {
  readonly time: number;
  readonly kind: 'probe' | 'transition' | 'action' | 'reload' | 'error';
  readonly backend?: BackendId;
  /** For probes: pass or fail; for transitions: the new state. */
  readonly ok?: boolean;
  readonly text: string;
}

export interface ConfigView {
  readonly file: string;
  /** `watching` (file watcher on), `static` (no watcher), or `refused` (last reload failed). */
  readonly watch: 'watching' | 'static' | 'refused';
  /** Epoch ms of the last successful (re)load. */
  readonly loadedAt: number;
  /** `config.json5:14:7: unknown key "wieght"` when the last reload was refused. */
  readonly error?: string;
}

/** The instance as an HA member: its name, readiness (`tcplb-console health`), standby. */
export interface InstanceView {
  /** `instance` in the config, or the host name. */
  readonly name: string;
  readonly ready: boolean;
  /** `ready: imap 2/2 usable`, `not ready: standby since 12:00:03 by ctl (user alice, pid 42)`. */
  readonly why: string;
  /** Set while in standby (`ctl standby on`). */
  readonly standby?: { readonly by: string; readonly since: number };
  /** SIGTERM received: not ready, accepting stops after leaveDelay. */
  readonly leaving: boolean;
}

export interface Snapshot {
  readonly time: number;
  readonly version: string;
  readonly pid: number;
  readonly engine: string;
  readonly config: ConfigView;
  /** Absent from a tcplb older than readiness (protocol 1 clients ignore it). */
  readonly instance?: InstanceView;
  readonly listeners: readonly ListenerView[];
  /** The ACME client's state when the config has `acme` (the console header's mark; `ctl certs` has the detail). */
  readonly acme?: AcmeView;
  readonly totals: {
    readonly active: number;
    /** Accepted connections over the process's life. */
    readonly accepted: number;
    /** Rates over the last few seconds. */
    readonly connPerSec: number;
    readonly bytesPerSec: number;
  };
  readonly upstreams: readonly UpstreamView[];
  /** Newest last; bounded. */
  readonly events: readonly EventView[];
  /** Top `limit` open connections (oldest first) and the total. */
  readonly connections: { readonly total: number; readonly list: readonly SessionInfo[] };
}
