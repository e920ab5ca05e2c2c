/**
 * The data-plane interface. An engine accepts, connects, relays, counts and
 * reports; every policy decision is made by the control plane and handed to it
 * as data (a RoutingTable of usable backends, listener settings). The JS engine
 * in this folder is one implementation; a worker-process or native engine can
 * implement the same interface.
 */
import type { BackendId, EndReason } from './types.js';
import type { BalanceAlgorithm } from './types.js';
import type { ListenerConfig } from './config.js';

/** One backend as the data plane sees it. */
export interface RouteBackend {
  readonly id: BackendId;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** 0 = no limit. Enforced by the engine (it owns the live counts). */
  readonly maxConns: number;
  readonly backup: boolean;
  /** Decided by the control plane: health, operator state, passive failures, `down`. */
  readonly usable: boolean;
}

export interface RouteUpstream {
  readonly name: string;
  readonly balance: BalanceAlgorithm;
  readonly backends: readonly RouteBackend[];
}

/** Immutable snapshot; the control plane replaces it whenever anything in it changes. */
export interface RoutingTable {
  readonly version: number;
  readonly upstreams: ReadonlyMap<string, RouteUpstream>;
}

/** One finished client connection: the access-log line. */
export interface SessionRecord {
  /** Epoch ms when the client connected. */
  readonly start: number;
  readonly durationMs: number;
  readonly listener: string;
  readonly client: string;
  readonly clientPort: number;
  /** '' when no backend was reached. */
  readonly backend: BackendId | '';
  /** client -> backend */
  readonly bytesIn: number;
  /** backend -> client */
  readonly bytesOut: number;
  readonly reason: EndReason;
  /** Extra words for the log (`ECONNRESET from backend`), '' usually. */
  readonly detail: string;
  /** Where TLS was terminated (absent = '-', none). */
  readonly tls?: TlsSides;
}

/**
 * Which legs of a session the balancer spoke TLS on: `client` (implicit TLS
 * or STARTTLS at the listener), `backend` (upstream `tls`), both, or none.
 */
export type TlsSides = '-' | 'client' | 'backend' | 'client+backend';

export function tlsSides(client: boolean, backend: boolean): TlsSides {
  return client ? (backend ? 'client+backend' : 'client') : backend ? 'backend' : '-';
}

/** A live connection as the console and `ctl status` list it. */
export interface SessionInfo {
  readonly id: number;
  readonly listener: string;
  readonly client: string;
  readonly backend: BackendId | '';
  readonly start: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Where TLS is terminated (absent = '-'). */
  readonly tls?: TlsSides;
}

/** Where the engine reports. Calls are synchronous and must be cheap. */
export interface EngineSink {
  /** A connect to a backend failed (refused, timeout, unreachable). */
  connectFailed(id: BackendId, detail: string): void;
  /** A connect to a backend succeeded (clears passive failure counts). */
  connectOk(id: BackendId): void;
  sessionOpened(id: BackendId): void;
  sessionClosed(rec: SessionRecord): void;
}

/** What happened to one listener when settings were applied. */
export interface ListenerResult {
  readonly name: string;
  readonly ok: boolean;
  /** One-line error naming the listener, when !ok. */
  readonly error?: string;
}

/** Listeners bound but not yet serving (phase one of a reload). */
export interface PreparedListeners {
  /** False when a bind failed; `results` then holds only the failures and nothing changed. */
  readonly ok: boolean;
  readonly results: ListenerResult[];
  /** Phase two: serve on the new set (stop removed listeners, start the new ones). */
  commit(): void;
  /** Give up: close what was bound, keep the running set. */
  abort(): void;
}

/** Where a listener is bound (port 0 in tests resolves here). */
export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export interface Engine {
  /** `js`, `js x2 workers`, `native`: shown in the console header and `ctl status`. */
  readonly name: string;
  /** True when bytes are relayed on the main thread, which the console's rendering then shares. */
  readonly relaysOnMainThread: boolean;
  /**
   * Replace the routing table; takes effect for the next connection.
   * `changed` names the upstreams whose entries differ from the previous
   * table (undefined: any may), so an engine can limit its work to them.
   */
  setRoutes(table: RoutingTable, changed?: ReadonlySet<string>): void;
  /**
   * Make the set of listeners equal to `listeners`: start new ones, stop
   * removed ones (their sessions continue), restart those whose address
   * changed, update the settings of the rest in place.
   */
  setListeners(listeners: readonly ListenerConfig[], beforeCommit?: () => void): Promise<ListenerResult[]>;
  /** Addresses bound, by listener name. */
  boundAddresses(): ReadonlyMap<string, BoundAddress>;
  /** Bytes relayed so far by the open sessions (both directions). */
  liveBytes(): number;
  /** Close every open session to `backend` with `reason`. Returns how many. */
  killBackend(backend: BackendId, reason: EndReason): number;
  /** Up to `limit` live sessions, and the total count. */
  sessions(limit: number): { total: number; list: SessionInfo[] };
  /** Open session count per listener. */
  activeByListener(): ReadonlyMap<string, number>;
  /** Open session count per backend. */
  activeByBackend(): ReadonlyMap<BackendId, number>;
  /** Stop accepting everywhere; resolve when every session ended or `timeoutMs` passed (then close them with `shutdown`). */
  shutdown(timeoutMs: number): Promise<void>;
  /** Close everything now. */
  closeAllNow(): void;
  /**
   * Which data path serves each listener, for an engine that runs listeners
   * on two (native: `native` = the addon's relay threads, TLS termination
   * included; `js` = its embedded JavaScript engine). Shown by `ctl certs`.
   */
  listenerEngines?(): ReadonlyMap<string, 'native' | 'js'>;
  /** Release what the engine holds beyond sessions (worker processes, native threads) after a shutdown. */
  dispose?(): void;
}
