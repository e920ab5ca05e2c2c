/**
 * The probe contract: one module per check type (./probes/*.ts), each a small
 * protocol state machine behind this one function type.
 */
import type { ProbeResult } from '../core/types.js';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export interface ProbeOptions {
  /** The probe fails with a *_TIMEOUT status if it has not decided by then. */
  readonly timeoutMs: number;
  /** Run the protocol inside TLS. */
  readonly tls: boolean;
  /** SNI to send and the name the certificate should cover; '' = none. */
  readonly servername: string;
  /** Fail on an untrusted or name-mismatched certificate (else only record it). */
  readonly verify: boolean;
  /** http: request bytes to send. */
  readonly send: string;
  /** http: accepted status classes, e.g. ['2xx', '3xx']. */
  readonly expect: readonly string[];
  /**
   * How the checker names itself where a protocol asks (smtp: `EHLO name`):
   * the instance name, so a mail server checked by N balancers logs which
   * one. @default 'tcplb-check'
   */
  readonly helo?: string;
  /**
   * Bytes written first on the connection (a PROXY protocol header), if any;
   * a function gets the connected socket's addresses (a header naming them).
   */
  /** Trust these CA certificates (PEM) instead of the system store. */
  readonly ca?: string;
  /** Client certificate and key (PEM) to present. */
  readonly clientCert?: { readonly cert: string; readonly key: string };
  /** Status of a certificate that fails `verify` (default L6_BAD; L6_VERIFY for upstreams with `tls`). */
  readonly verifyStatus?: 'L6_BAD' | 'L6_VERIFY';
  readonly preamble?: Buffer | ((sock: { localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number }) => Buffer);
}

/**
 * Run one probe. Must never throw or reject: every failure is a ProbeResult
 * with ok=false and a short human `detail`. Must settle within timeoutMs (plus
 * a few ms), stop reading as soon as it can decide, never buffer unboundedly,
 * close politely where the protocol allows, and abort promptly on `signal`.
 */
export type Probe = (target: ProbeTarget, options: ProbeOptions, signal: AbortSignal) => Promise<ProbeResult>;
