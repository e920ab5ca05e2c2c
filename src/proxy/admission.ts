/**
 * The per-listener half of the data-plane policy, shared by every engine:
 * allow/deny, `maxConnections` and `maxConnectionsPerClient`, and the PROXY
 * header a backend gets. Counts clients in and out; decides, never does I/O.
 */
import type { ListenerConfig } from '../core/config.js';
import type { EndReason } from '../core/types.js';
import { compileAcl } from './acl.js';
import { buildProxyHeader, type Endpoints, type TlsSession } from '../core/proxy-header.js';
import { dec, inc } from './router.js';

export class Admission {
  cfg: ListenerConfig;
  #acl: (ip: string) => boolean;
  /** `acceptProxyProtocol.from`: who may send a PROXY header (and connect at all); undefined without one. */
  #frontTier: ((ip: string) => boolean) | undefined;
  /** Clients of this listener now open (admitted or not yet finished). */
  active = 0;
  readonly #perClient = new Map<string, number>();

  constructor(cfg: ListenerConfig) {
    this.cfg = cfg;
    this.#acl = compileAcl(cfg.allow, cfg.deny);
    this.#frontTier = frontTier(cfg);
  }

  update(cfg: ListenerConfig): void {
    this.cfg = cfg;
    this.#acl = compileAcl(cfg.allow, cfg.deny);
    this.#frontTier = frontTier(cfg);
  }

  /** Behind a front tier: may `ip` (the connection's own address) connect and name a client? */
  trustsFrontTier(ip: string): boolean {
    return this.#frontTier?.(ip) ?? false;
  }

  /**
   * Count a new client in and say whether it may go on: undefined, or the
   * reason to close it (`denied` before anything else, then `limit`).
   * Every call must be paired with one `release` when the client is gone.
   */
  admit(ip: string): EndReason | undefined {
    this.active++;
    const perClient = this.cfg.maxConnectionsPerClient;
    if (perClient > 0) inc(this.#perClient, ip);
    if (!this.#acl(ip)) return 'denied';
    if (this.cfg.maxConnections > 0 && this.active > this.cfg.maxConnections) return 'limit';
    if (perClient > 0 && (this.#perClient.get(ip) ?? 0) > perClient) return 'limit';
    return undefined;
  }

  release(ip: string): void {
    this.active--;
    if (this.#perClient.size > 0) dec(this.#perClient, ip);
  }

  /** Bytes to send a backend before the client's (PROXY header), or undefined; `tls`: the client's TLS session (v2 fields). */
  preamble(e: Endpoints, tls?: TlsSession): Buffer | undefined {
    const v = this.cfg.proxyProtocol;
    return v === false ? undefined : buildProxyHeader(v, e, tls);
  }
}

function frontTier(cfg: ListenerConfig): ((ip: string) => boolean) | undefined {
  return cfg.acceptProxyProtocol === undefined ? undefined : compileAcl(cfg.acceptProxyProtocol.from, []);
}

/** One-line bind error naming the listener and what to do about it. */
export function listenError(cfg: ListenerConfig, code: string | undefined, message: string): string {
  const where = cfg.listenText;
  switch (code) {
    case 'EADDRINUSE':
      return `listener "${cfg.name}": ${where} is already in use`;
    case 'EACCES':
      return `listener "${cfg.name}": permission denied binding ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `listener "${cfg.name}": ${where}: address not available on this host`;
    default:
      return `listener "${cfg.name}": cannot listen on ${where}: ${message}`;
  }
}

/** Rate-limited accept-error logging: one line at once, then one summary per second. */
export class AcceptErrorLog {
  #errs = 0;
  #timer: NodeJS.Timeout | undefined;
  constructor(readonly log: (line: string) => void) {}

  report(listener: string, code: string | undefined, message: string): void {
    this.#errs++;
    if (this.#timer !== undefined) return;
    const what = code === 'EMFILE' || code === 'ENFILE' ? `${code}: out of file descriptors; new clients wait or are closed until some free up` : message;
    this.log(`listener ${listener}: ${what}`);
    this.#errs = 0;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#errs > 0) this.log(`listener ${listener}: ${this.#errs} more accept error${this.#errs > 1 ? 's' : ''} in the last second (${code ?? 'error'})`);
      this.#errs = 0;
    }, 1000);
    this.#timer.unref();
  }
}
