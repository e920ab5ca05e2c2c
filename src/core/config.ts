/**
 * The validated, fully-defaulted, deeply frozen configuration that the rest of
 * the program reads. Produced only by `loadConfig*` in ./load.ts; durations are
 * milliseconds, addresses are parsed, relative paths are resolved against the
 * config file's folder.
 */
import type { BalanceAlgorithm, CheckType } from './types.js';

/** A parsed listen address. `host` is '' for "all interfaces" (a bare port). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ListenerConfig {
  readonly name: string;
  readonly listen: ListenAddress;
  /** The address as `host:port` (or `*:port`), for display and logs. */
  readonly listenText: string;
  readonly upstream: string;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly proxyProtocol: false | 'v1' | 'v2';
  /** 0 = no limit. */
  readonly maxConnections: number;
  /** 0 = no limit. */
  readonly maxConnectionsPerClient: number;
  /** CIDR strings as written (`10.0.0.0/8`, `::1/128`, single addresses allowed). */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /**
   * Behind a front tier that sends PROXY headers: only `from` may connect, and
   * each connection's header (within `timeoutMs`) names the client used for
   * ip_hash, allow/deny, limits, logs and the header sent on. Absent = direct clients.
   */
  readonly acceptProxyProtocol?: { readonly from: readonly string[]; readonly timeoutMs: number };
  /** TLS terminated at the balancer (docs/tls.md); absent = bytes are relayed as they come. */
  readonly tls?: ListenerTlsConfig;
  /**
   * The upstream's `tls` (re-encryption to the servers), copied here when
   * the config is built so the data plane decides per listener without the
   * upstream table (the native engine hands such listeners to its JS path).
   */
  readonly upstreamTls?: UpstreamTlsConfig;
  /**
   * STARTTLS at the balancer (docs/tls.md#starttls-at-the-balancer): the
   * client's upgrade is answered with `tls.certificates`, the backend leg is
   * upgraded with `upstreamTls` (or verified against the system CAs).
   * Absent = no STARTTLS handling (bytes relayed, `tls` = implicit TLS).
   */
  readonly starttls?: StarttlsProtocol;
  /** With starttls: credentials (and SMTP mail transactions) before TLS are refused by the balancer. */
  readonly requireTls?: boolean;
  /**
   * This listener answers ACME challenges (docs/tls.md#acme) from the files
   * under `storage`: tls-alpn-01 on a TLS listener (`tls.acme`), http-01 on a
   * plain one (`acme: true`). Absent = no peek at the client's first bytes.
   */
  readonly acme?: { readonly storage: string; readonly challenge: AcmeChallengeType };
}

export const ACME_CHALLENGES = ['tls-alpn-01', 'http-01'] as const;
export type AcmeChallengeType = (typeof ACME_CHALLENGES)[number];

/** `acme`: the balancer obtains and renews its own certificate (docs/tls.md#acme). */
export interface AcmeConfig {
  readonly email: string;
  /** The ACME directory URL (Let's Encrypt's by default). */
  readonly directory: string;
  /** Names of the one certificate, the first is its subject; lower-case. */
  readonly domains: readonly string[];
  readonly challenge: AcmeChallengeType;
  /** Absolute folder: account key, certificate, challenge files. */
  readonly storage: string;
  /** Renew this long before expiry; null = at two thirds of the lifetime. */
  readonly renewBeforeMs: number | null;
  /** First retry delay after a failed order; doubled per failure up to retryMaxMs, jittered. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** false = never order (the other member of a pair sharing storage does): serve and answer from storage. */
  readonly order: boolean;
}

/** Protocols whose STARTTLS the balancer answers itself. */
export const STARTTLS_PROTOCOLS = ['imap', 'pop3', 'smtp'] as const;
export type StarttlsProtocol = (typeof STARTTLS_PROTOCOLS)[number];

/** One certificate and its key, read and checked when the config was loaded. */
export interface TlsCertificate {
  /** Absolute paths as configured (watched for changes). */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM text: the certificate (and any chain after it) and the private key. */
  readonly cert: string;
  readonly key: string;
  /** DNS names it serves, lower-case: its subjectAltName DNS entries, or the CN when it has none. */
  readonly names: readonly string[];
  readonly serial: string;
  /** SHA-256 fingerprint of the leaf certificate. */
  readonly fingerprint: string;
  readonly subject: string;
  readonly issuer: string;
  /** Expiry, epoch ms. */
  readonly notAfter: number;
}

export interface ListenerTlsConfig {
  /** The first is the default (no SNI, or a name no certificate covers). */
  readonly certificates: readonly TlsCertificate[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Protocols offered by ALPN, in preference order; empty = no ALPN. */
  readonly alpn: readonly string[];
  /** Refuse the handshake when the client sends no SNI or a name no certificate covers. */
  readonly strictSni: boolean;
  readonly handshakeTimeoutMs: number;
}

/** TLS from the balancer to an upstream's servers (re-encryption). */
export interface UpstreamTlsConfig {
  /** Fail the connect (and the probe) when the server's certificate does not verify. */
  readonly verify: boolean;
  /** PEM of the CA(s) to trust instead of the system store; null = system store. */
  readonly ca: string | null;
  readonly caFile: string | null;
  /** SNI and the name the certificate must cover; '' = the server's host. */
  readonly servername: string;
  /** Client certificate and key (PEM), or null. */
  readonly cert: string | null;
  readonly key: string | null;
  readonly certFile: string | null;
  readonly keyFile: string | null;
}

export interface ServerConfig {
  /** Canonical `host:port` ([v6]:port); with the upstream name it forms the BackendId. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** 0 disables passive failure accounting (nginx `max_fails=0`). */
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  readonly backup: boolean;
  readonly down: boolean;
  /** 0 = no limit. */
  readonly maxConns: number;
}

export interface CheckConfig {
  readonly type: CheckType;
  readonly intervalMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly timeoutMs: number;
  readonly tls: boolean;
  /** SNI and the name the certificate must cover; '' = none. */
  readonly servername: string;
  /** Fail the probe on an untrusted or mismatched certificate. */
  readonly verify: boolean;
  /** 0 = the server's own port. */
  readonly port: number;
  /** http: the request sent. */
  readonly send: string;
  /** http: accepted status classes (`2xx`..`5xx`). */
  readonly expect: readonly string[];
  /** Send the listener-style PROXY header on probes too. */
  readonly proxyProtocol: false | 'v1' | 'v2';
}

export interface UpstreamConfig {
  readonly name: string;
  readonly balance: BalanceAlgorithm;
  readonly onMarkedDown: 'keep' | 'shutdown';
  readonly servers: readonly ServerConfig[];
  /** Absent = no active checks; servers start `up` and rely on passive checks. */
  readonly check?: CheckConfig;
  /** Absent = plain TCP to the servers. */
  readonly tls?: UpstreamTlsConfig;
}

export interface LogConfig {
  /** '-' = stdout, null = off, else an absolute file path. */
  readonly access: string | null;
  readonly format: 'text' | 'json';
  readonly level: 'debug' | 'info' | 'warn' | 'error';
}

export interface Config {
  /** Absolute path of the file this came from ('' for in-memory sources). */
  readonly file: string;
  readonly listeners: readonly ListenerConfig[];
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>;
  readonly log: LogConfig;
  /** Absolute unix socket path, or null for none. */
  readonly control: { readonly socket: string | null };
  /** Parsed `host:port` for the Prometheus endpoint, or null for none. */
  readonly metrics: { readonly listen: ListenAddress | null };
  /** Absolute path, or null for none. */
  readonly stateFile: string | null;
  readonly shutdownTimeoutMs: number;
  /** Readiness (`tcplb-console health`): the upstreams that must have a usable backend; null = every upstream. */
  readonly health: { readonly require: readonly string[] | null };
  /** On SIGTERM: report not ready this long before accepting stops (0 = stop at once). */
  readonly leaveDelayMs: number;
  /** This balancer's name in logs, metrics and fleet views (default: the host name). */
  readonly instance: string;
  /** Number of data-plane processes; 'auto' = number of cores. */
  readonly workers: number | 'auto';
  readonly engine: 'auto' | 'js' | 'native';
  /** Absent = no ACME. */
  readonly acme?: AcmeConfig;
}

/** One validation or parse problem, with the 1-based position of the offending key or value. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export type LoadResult =
  | { readonly ok: true; readonly config: Config; readonly warnings?: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Format an issue as editors and compilers do: `file:line:col: message`. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.message}`;
}
