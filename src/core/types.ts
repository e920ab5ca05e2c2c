/**
 * Shared vocabulary of tcplb. Leaf module: imports nothing internal, so every
 * other folder can depend on it without cycles.
 */

/** A backend is named `upstream/host:port` everywhere (ctl, logs, console, state file). */
export type BackendId = string;

/** Build the canonical backend id from its parts. IPv6 hosts are bracketed. */
export function backendId(upstream: string, address: string): BackendId {
  return `${upstream}/${address}`;
}

/** Format `host:port`, bracketing IPv6 literals (`[::1]:143`). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What the operator asked for. Orthogonal to what the checks saw (HAProxy's srv_admin vs srv_state). */
export type AdminState = 'ready' | 'drain' | 'disabled';

/** What the health checks (active or passive) concluded. */
export type OpState = 'unknown' | 'up' | 'down';

/** Who caused a state change: shown in logs and the console. */
export type ChangeCause = 'probe' | 'passive' | 'operator' | 'config' | 'statefile';

/** Why a client connection ended; the last field of each access-log line. */
export type EndReason =
  | 'closed'
  | 'idle_timeout'
  | 'connect_failed'
  | 'no_backend'
  | 'denied'
  | 'limit'
  | 'shutdown'
  | 'killed'
  | 'backend_down'
  | 'tls_failed'
  | 'error';

/** The seven protocol probes, named as in nginx_tcp_proxy_module's `check type=`. */
export const CHECK_TYPES = ['tcp', 'ssl_hello', 'http', 'smtp', 'mysql', 'pop3', 'imap'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

/** Load-balancing algorithms, named as in the config's `balance` key. */
export const BALANCE_ALGORITHMS = ['round_robin', 'least_conn', 'ip_hash'] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

/**
 * Layered probe status in HAProxy's spirit (check-t.h): the layer that answered
 * and how. The console prints it as is.
 */
export type ProbeStatus =
  | 'L4_OK' // TCP connect succeeded (tcp probe passes here)
  | 'L4_TIMEOUT' // connect did not finish in time
  | 'L4_REFUSED' // connection refused, reset or unreachable
  | 'L6_OK' // TLS handshake / ServerHello fine
  | 'L6_TIMEOUT' // TLS did not answer in time
  | 'L6_BAD' // TLS answered wrongly (not a ServerHello, handshake failure, bad certificate with check.verify)
  | 'L6_VERIFY' // the certificate of a server spoken to in TLS (upstreams.X.tls, verify on) did not verify
  | 'L7_OK' // protocol answer as expected
  | 'L7_TIMEOUT' // protocol answer did not come in time
  | 'L7_BAD_STATUS' // protocol answered with a failure status (HTTP 503, -ERR, 554, * BYE)
  | 'L7_BAD_RESPONSE' // protocol answer is not that protocol
  | 'SOCK_ERROR' // anything else (DNS failure, unexpected socket error): counts as a failure
  | 'LOCAL_ERROR' // the probe could not run for tcplb's own lack of resources (EMFILE...): counts as nothing
  | 'ABORTED'; // the probe was cancelled (reload, shutdown)

/** Certificate facts recorded by TLS probes. */
export interface CertInfo {
  /** Subject CN or first SAN, for display. */
  subject: string;
  /** Expiry as epoch milliseconds. */
  validTo: number;
  /** Whole days until expiry (negative when expired). */
  daysLeft: number;
  /** Whether the certificate covers the configured `servername`; undefined without servername. */
  coversName?: boolean;
  /** Whether the chain verified against the system trust store. */
  trusted: boolean;
}

/** Result of one probe. Never a bare boolean: the console shows status and detail. */
export interface ProbeResult {
  ok: boolean;
  status: ProbeStatus;
  latencyMs: number;
  /** Short human text: `timeout after 2000 ms`, `expected +OK, got "-ERR busy"`. */
  detail: string;
  cert?: CertInfo;
}
