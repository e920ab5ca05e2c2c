/**
 * One proxied client connection: dial a backend (with retries decided by the
 * caller's `next` function), then relay bytes both ways with backpressure,
 * half-close and reset propagation. Idle timeouts are enforced by the engine's
 * coarse sweep reading `lastActive`, not by a timer per session.
 */
import net from 'node:net';
import type { BackendId, EndReason } from '../core/types.js';
import type { RouteBackend, SessionRecord } from './types.js';

/** The few things a session needs from its engine and listener. */
export interface SessionHost {
  readonly listenerName: string;
  readonly connectTimeoutMs: number;
  /** Bytes to write to the backend before any client byte (PROXY header), or undefined. */
  preamble(client: net.Socket): Buffer | undefined;
  /** Next backend to try, or undefined when none is left. */
  next(clientIp: string, tried: Set<BackendId>): RouteBackend | undefined;
  connectFailed(b: RouteBackend, detail: string): void;
  /** A local resource error (EMFILE...) on connect: not the backend's fault. */
  localError(err: NodeJS.ErrnoException): void;
  connectOk(b: RouteBackend): void;
  finished(s: Session, rec: SessionRecord): void;
}

let nextId = 1;

/** Connect errors that are about this host, not the backend. */
export const LOCAL_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

export class Session {
  readonly id = nextId++;
  readonly start = Date.now();
  readonly clientIp: string;
  /** The listener's name when the client arrived (a reload may rename it later). */
  readonly acceptedOn: string;
  readonly clientPort: number;
  backend: RouteBackend | undefined;
  bytesIn = 0;
  bytesOut = 0;
  lastActive = Date.now();
  #host: SessionHost;
  #client: net.Socket;
  #upstream: net.Socket | undefined;
  #tried = new Set<BackendId>();
  #reason: EndReason | undefined;
  #detail = '';
  #done = false;
  #clientClosed = false;
  #upstreamClosed = true;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(host: SessionHost, client: net.Socket) {
    this.#host = host;
    this.acceptedOn = host.listenerName;
    this.#client = client;
    this.clientIp = client.remoteAddress ?? '';
    this.clientPort = client.remotePort ?? 0;
    client.setNoDelay(true);
    client.on('error', (err: NodeJS.ErrnoException) => this.#onError('client', err));
    client.on('close', () => {
      this.#clientClosed = true;
      this.#onClose('client');
    });
  }

  /** True once the session has finished (its record was reported). */
  get ended(): boolean {
    return this.#done;
  }

  /** Name of the listener this session came in on. */
  get listener(): string {
    return this.#host.listenerName;
  }

  /** Begin dialling. The client socket stays paused until a backend is connected. */
  begin(): void {
    this.#dial();
  }

  /** Close both sides now with `reason` (idle sweep, kill, shutdown, backend_down). */
  abort(reason: EndReason): void {
    if (this.#done) return;
    this.#reason ??= reason;
    this.#client.destroy();
    this.#upstream?.destroy();
  }

  /** End with `reason` before any backend was tried (denied, limit, no_backend). */
  reject(reason: EndReason): void {
    this.#reason = reason;
    this.#client.destroy();
  }

  #dial(): void {
    const b = this.#host.next(this.clientIp, this.#tried);
    if (b === undefined) {
      this.#reason = this.#tried.size > 0 ? 'connect_failed' : 'no_backend';
      this.backend = undefined;
      this.#client.destroy();
      return;
    }
    this.#tried.add(b.id);
    this.backend = b;
    const up = net.connect({ host: b.host, port: b.port, allowHalfOpen: true, noDelay: true });
    this.#upstream = up;
    this.#upstreamClosed = false;
    let connected = false;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      up.destroy(Object.assign(new Error(`connect timeout after ${this.#host.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, this.#host.connectTimeoutMs);
    up.once('connect', () => {
      connected = true;
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
      this.#host.connectOk(b);
      if (this.#clientClosed) {
        up.destroy();
        return;
      }
      this.#relay(up);
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        clearTimeout(this.#connectTimer);
        this.#connectTimer = undefined;
        if (LOCAL_ERRORS.has(err.code ?? '')) {
          // Out of descriptors here: every backend would fail the same way, and
          // none of them should be blamed (passive health) for it.
          this.#reason = 'connect_failed';
          this.#detail = `${err.code} (local)`;
          this.#host.localError(err);
          return;
        }
        this.#host.connectFailed(b, describe(err));
        return; // 'close' follows and moves on to the next backend
      }
      this.#onError('backend', err);
    });
    up.on('close', () => {
      this.#upstreamClosed = true;
      if (!connected) {
        if (this.#clientClosed) this.#finish();
        else if (this.#reason === undefined) this.#dial();
        else this.#client.destroy();
        return;
      }
      this.#onClose('backend');
    });
  }

  #relay(up: net.Socket): void {
    const client = this.#client;
    const pre = this.#host.preamble(client);
    if (pre !== undefined) up.write(pre);
    client.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.lastActive = Date.now();
      if (!up.write(chunk)) client.pause();
    });
    up.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      this.lastActive = Date.now();
      if (!client.write(chunk)) up.pause();
    });
    up.on('drain', () => client.resume());
    client.on('drain', () => up.resume());
    // Half-close: a FIN from one side becomes a FIN to the other; the other
    // direction keeps flowing until its own end.
    client.on('end', () => up.end());
    up.on('end', () => client.end());
    client.resume();
  }

  #onError(side: 'client' | 'backend', err: NodeJS.ErrnoException): void {
    const other = side === 'client' ? this.#upstream : this.#client;
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      this.#detail ||= `${err.code} from ${side}`;
      // Propagate the reset as a reset, so the peer sees what happened.
      if (other !== undefined && !other.destroyed) other.resetAndDestroy();
    } else {
      this.#detail ||= `${side}: ${describe(err)}`;
      other?.destroy();
    }
  }

  #onClose(side: 'client' | 'backend'): void {
    if (side === 'client') {
      clearTimeout(this.#connectTimer);
      // The client went away: no reason to keep the backend side.
      if (this.#upstream !== undefined && !this.#upstream.destroyed) {
        if (this.#upstream.connecting) this.#upstream.destroy();
        else if (this.#client.errored || this.#reason !== undefined) this.#upstream.destroy();
        else if (!this.#upstream.writableEnded) this.#upstream.destroy();
      }
    } else if (!this.#client.destroyed) {
      // Backend is fully closed; let pending bytes flush to the client, then close.
      if (this.#client.writableEnded) this.#client.destroySoon();
      else this.#client.destroy();
    }
    if (this.#clientClosed && this.#upstreamClosed) this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const rec: SessionRecord = {
      start: this.start,
      durationMs: Date.now() - this.start,
      listener: this.#host.listenerName,
      client: this.clientIp,
      clientPort: this.clientPort,
      backend: this.backend?.id ?? '',
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      reason: this.#reason ?? 'closed',
      detail: this.#detail,
    };
    this.#host.finished(this, rec);
  }
}

/** Short text for a socket error, for logs and passive-failure details. */
export function describe(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return err.message.startsWith('connect timeout') ? err.message : 'timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
      return `cannot resolve ${(err as { hostname?: string }).hostname ?? 'host'}`;
    case 'ECONNRESET':
      return 'connection reset';
    default:
      return err.code !== undefined ? `${err.code}: ${err.message}` : err.message;
  }
}
