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
}

/** One validation or parse problem, with the 1-based position of the offending key or value. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export type LoadResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Format an issue as editors and compilers do: `file:line:col: message`. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.message}`;
}
