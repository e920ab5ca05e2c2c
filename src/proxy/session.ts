/**
 * One proxied client connection: dial a backend (with retries decided by the
 * caller's `next` function), then relay bytes both ways with backpressure,
 * half-close and reset propagation. Idle timeouts are enforced by the engine's
 * coarse sweep reading `lastActive`, not by a timer per session.
 */
import net from 'node:net';
import tls from 'node:tls';
import { LOCAL_ERRORS } from '../core/local-errors.js';
import { clientOf } from './proxy-in.js';
import type { BackendId, EndReason } from '../core/types.js';
import { tlsSides, type RouteBackend, type SessionRecord, type TlsSides } from '../core/dataplane.js';
import { Negotiation, type NegotiationEnd, type StarttlsSetup } from './starttls/driver.js';

/** TLS to the backend (`upstreams.X.tls`), prepared once per config. */
export interface UpstreamTls {
  /** CA, client certificate: parsed once, not per connection. */
  readonly context: tls.SecureContext;
  /** SNI and the name checked; '' = the backend's host when it is a name. */
  readonly servername: string;
  readonly verify: boolean;
}

/** The few things a session needs from its engine and listener. */
export interface SessionHost {
  readonly listenerName: string;
  readonly connectTimeoutMs: number;
  /** Speak TLS to the backend, or undefined for plain TCP. */
  readonly upstreamTls: UpstreamTls | undefined;
  /** STARTTLS at the balancer (the backend is dialled in plain TCP, upgraded later), or undefined. */
  readonly starttls: StarttlsSetup | undefined;
  /** A STARTTLS session ended before the relay with something to log (rate-limited by kind). */
  starttlsEnded(end: NegotiationEnd, clientIp: string): void;
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

/** The session a socket belongs to (set on both sockets, so event handlers can be shared functions). */
const SESSION = Symbol('tcplb.session');
type Tagged = net.Socket & { [SESSION]?: Session };

/*
 * Reads from backends land in one shared buffer (net's `onread`), skipping
 * the stream machinery and the 64 KiB allocation a 'data' event costs per
 * read. The bytes are copied out before socket.write(): a write the kernel
 * does not take at once keeps a reference to what it was given, and every
 * socket reads into the buffer it was handed after its previous read, so a
 * shared buffer cannot be handed over to a queued write. (Measured: handing
 * the buffer to the write and swapping in a fresh one when the write queued
 * corrupted streams: other sockets still held the old one for their next read.)
 */
const READ_SIZE = 64 * 1024;
const readBuffer = Buffer.allocUnsafe(READ_SIZE);

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
  #client: Tagged;
  #upstream: Tagged | undefined;
  #tried = new Set<BackendId>();
  #reason: EndReason | undefined;
  #detail = '';
  #done = false;
  #clientClosed = false;
  #upstreamClosed = true;
  #connected = false;
  #connectTimer: NodeJS.Timeout | undefined;
  /** The STARTTLS exchange in progress (it owns both sockets meanwhile). */
  #negotiation: Negotiation | undefined;
  /** TLS spoken with the client / the backend (the access log's `tls=`). */
  #tlsClient: boolean;
  #tlsBackend = false;

  constructor(host: SessionHost, client: net.Socket) {
    this.#host = host;
    this.acceptedOn = host.listenerName;
    this.#client = client;
    (client as Tagged)[SESSION] = this;
    // Behind a front tier (acceptProxyProtocol) the client is the one its header named.
    const named = clientOf(client);
    this.clientIp = named?.srcAddr ?? client.remoteAddress ?? '';
    this.clientPort = named?.srcPort ?? client.remotePort ?? 0;
    this.#tlsClient = client instanceof tls.TLSSocket;
    client.setNoDelay(true);
    client.on('error', Session.#onClientError);
    client.on('close', Session.#onClientClose);
  }

  /** True once the session has finished (its record was reported). */
  get ended(): boolean {
    return this.#done;
  }

  /** True while the current backend's connect has succeeded (false while dialling, and for one never reached). */
  get connected(): boolean {
    return this.#connected;
  }

  /** Where TLS is terminated so far. */
  get tls(): TlsSides {
    return tlsSides(this.#tlsClient, this.#tlsBackend);
  }

  /** Name of the listener this session came in on. */
  get listener(): string {
    return this.#host.listenerName;
  }

  /**
   * The client's TLS handshake failed (listener with `tls`): the session ends
   * `tls_failed` unless something else (shutdown, kill) ended it first.
   */
  tlsFailed(kind: string): void {
    if (this.#done) return;
    this.#reason ??= 'tls_failed';
    this.#detail = kind;
    this.#client.destroy();
  }

  /** Begin dialling. The client socket stays paused until a backend is connected. */
  begin(): void {
    this.#dial();
  }

  /** Close both sides now with `reason` (idle sweep, kill, shutdown, backend_down). */
  abort(reason: EndReason): void {
    if (this.#done) return;
    this.#reason ??= reason;
    if (this.#negotiation !== undefined) return this.#negotiation.abort();
    this.#client.destroy();
    this.#upstream?.destroy();
  }

  /** End with `reason` before any backend was tried (denied, limit, no_backend). */
  reject(reason: EndReason): void {
    this.#reason = reason;
    this.#client.destroy();
  }

  /*
   * Event handlers are shared by every session (`this` is the socket, its
   * session hangs off it): no closures per connection.
   */

  static #onClientError(this: Tagged, err: NodeJS.ErrnoException): void {
    this[SESSION]!.#onError('client', err);
  }

  static #onClientClose(this: Tagged): void {
    const s = this[SESSION]!;
    s.#clientClosed = true;
    s.#onClose('client');
  }

  static #onClientData(this: Tagged, chunk: Buffer): void {
    const s = this[SESSION]!;
    s.bytesIn += chunk.length;
    s.lastActive = Date.now();
    if (!s.#upstream!.write(chunk)) this.pause();
  }

  static #onClientDrain(this: Tagged): void {
    this[SESSION]!.#upstream!.resume();
  }

  /** Half-close: a FIN from one side becomes a FIN to the other; the other direction keeps flowing. */
  static #onClientEnd(this: Tagged): void {
    this[SESSION]!.#upstream!.end();
  }

  /** `onread` callback of the backend socket; returning false pauses it until the client drains. */
  static #onUpstreamRead(this: Tagged, nread: number, buf: Buffer): boolean {
    const s = this[SESSION]!;
    s.bytesOut += nread;
    s.lastActive = Date.now();
    const chunk = Buffer.allocUnsafe(nread);
    buf.copy(chunk, 0, 0, nread);
    return s.#client.write(chunk);
  }

  /** 'data' of a TLS backend socket (no `onread` for TLS): the same accounting and backpressure. */
  static #onUpstreamData(this: Tagged, chunk: Buffer): void {
    const s = this[SESSION]!;
    s.bytesOut += chunk.length;
    s.lastActive = Date.now();
    if (!s.#client.write(chunk)) this.pause();
  }

  static #onUpstreamDrain(this: Tagged): void {
    this[SESSION]!.#client.resume();
  }

  static #onUpstreamEnd(this: Tagged): void {
    this[SESSION]!.#client.end();
  }

  static #onUpstreamConnect(this: Tagged): void {
    const s = this[SESSION]!;
    if (this !== s.#upstream) return;
    s.#connected = true;
    s.#tlsBackend = this instanceof tls.TLSSocket;
    clearTimeout(s.#connectTimer);
    s.#connectTimer = undefined;
    s.#host.connectOk(s.backend!);
    if (s.#clientClosed) {
      this.destroy();
      return;
    }
    if (s.#host.starttls !== undefined) s.#negotiate(this, s.#host.starttls);
    else s.#relay(this);
  }

  static #onUpstreamError(this: Tagged, err: NodeJS.ErrnoException): void {
    const s = this[SESSION]!;
    if (this !== s.#upstream) return;
    if (!s.#connected) {
      clearTimeout(s.#connectTimer);
      s.#connectTimer = undefined;
      if (LOCAL_ERRORS.has(err.code ?? '')) {
        // Out of descriptors here: every backend would fail the same way, and
        // none of them should be blamed (passive health) for it.
        s.#reason = 'connect_failed';
        s.#detail = `${err.code} (local)`;
        s.#host.localError(err);
        return;
      }
      s.#host.connectFailed(s.backend!, describe(err));
      return; // 'close' follows and moves on to the next backend
    }
    s.#onError('backend', err);
  }

  static #onUpstreamClose(this: Tagged): void {
    const s = this[SESSION]!;
    if (this !== s.#upstream) return;
    s.#upstreamClosed = true;
    if (!s.#connected) {
      if (s.#clientClosed) s.#finish();
      else if (s.#reason === undefined) s.#dial();
      else s.#client.destroy();
      return;
    }
    s.#onClose('backend');
  }

  static #onConnectTimeout(s: Session): void {
    s.#connectTimer = undefined;
    s.#upstream?.destroy(Object.assign(new Error(`connect timeout after ${s.#host.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
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
    this.#connected = false;
    clearTimeout(this.#connectTimer); // the timer always belongs to the socket being dialled
    // A STARTTLS backend is dialled in plain TCP; the upstream's tls is for the upgrade.
    const t = this.#host.starttls === undefined ? this.#host.upstreamTls : undefined;
    const plain = t === undefined && this.#host.starttls === undefined;
    // With TLS to the backend, "connected" is the end of a verified handshake: a
    // certificate that does not verify fails the connect like a refusal would.
    const up: Tagged = t === undefined
      ? net.connect({
        host: b.host,
        port: b.port,
        allowHalfOpen: true,
        noDelay: true,
        // onread skips 'data' events: not for a socket STARTTLS reads lines from and wraps in TLS later.
        ...(plain ? { onread: { buffer: readBuffer, callback: Session.#onUpstreamRead as (n: number, buf: Uint8Array) => boolean } } : {}),
      })
      : tls.connect({
        host: b.host,
        port: b.port,
        // Passed on to the TCP socket (missing from the typings): half-close as for plain backends.
        ...({ allowHalfOpen: true } as object),
        secureContext: t.context,
        servername: t.servername !== '' ? t.servername : net.isIP(b.host) === 0 ? b.host : undefined,
        rejectUnauthorized: t.verify,
        ...upstreamAlpn(this.#client),
      });
    up[SESSION] = this;
    this.#upstream = up;
    this.#upstreamClosed = false;
    this.#connectTimer = setTimeout(Session.#onConnectTimeout, this.#host.connectTimeoutMs, this);
    if (t !== undefined) {
      up.setNoDelay(true);
      up.on('data', Session.#onUpstreamData);
    }
    up.once(t === undefined ? 'connect' : 'secureConnect', Session.#onUpstreamConnect);
    up.on('error', Session.#onUpstreamError);
    up.on('close', Session.#onUpstreamClose);
  }

  /**
   * STARTTLS: the PROXY header goes first (in clear, before the greeting),
   * then the Negotiation owns both sockets until it hands back the ones to
   * relay (TLS both sides, or the plain ones of a client that never
   * upgraded) or says how the session ended.
   */
  #negotiate(up: Tagged, setup: StarttlsSetup): void {
    const client = this.#client;
    const pre = this.#host.preamble(client);
    if (pre !== undefined) up.write(pre);
    client.off('error', Session.#onClientError);
    client.off('close', Session.#onClientClose);
    up.off('error', Session.#onUpstreamError);
    up.off('close', Session.#onUpstreamClose);
    this.#negotiation = new Negotiation(client, up, this.backend!.host, setup, {
      describe,
      counted: (toBackend, toClient) => {
        this.bytesIn += toBackend;
        this.bytesOut += toClient;
        this.lastActive = Date.now();
      },
      relay: (c, u, upgraded) => {
        this.#negotiation = undefined;
        this.#tlsClient = this.#tlsBackend = upgraded;
        const nc = c as Tagged;
        const nu = u as Tagged;
        nc[SESSION] = this;
        nu[SESSION] = this;
        nc.on('error', Session.#onClientError);
        nc.on('close', Session.#onClientClose);
        nu.on('error', Session.#onUpstreamError);
        nu.on('close', Session.#onUpstreamClose);
        nu.on('data', Session.#onUpstreamData);
        this.#client = nc;
        this.#upstream = nu;
        this.#relay(nu, false);
        nu.resume();
      },
      ended: (end) => {
        this.#negotiation = undefined;
        if (end.blame !== undefined) this.#host.connectFailed(this.backend!, end.blame);
        this.#host.starttlsEnded(end, this.clientIp);
        this.#reason ??= end.reason;
        this.#detail ||= end.detail;
        this.#clientClosed = true;
        this.#upstreamClosed = true;
        this.#finish();
      },
    });
  }

  #relay(up: Tagged, preamble = true): void {
    const client = this.#client;
    const pre = preamble ? this.#host.preamble(client) : undefined;
    if (pre !== undefined) up.write(pre);
    client.on('data', Session.#onClientData);
    up.on('drain', Session.#onUpstreamDrain);
    client.on('drain', Session.#onClientDrain);
    client.on('end', Session.#onClientEnd);
    up.on('end', Session.#onUpstreamEnd);
    client.resume();
  }

  #onError(side: 'client' | 'backend', err: NodeJS.ErrnoException): void {
    const other = side === 'client' ? this.#upstream : this.#client;
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      this.#detail ||= `${err.code} from ${side}`;
      // Propagate the reset as a reset, so the peer sees what happened.
      if (other !== undefined && !other.destroyed) resetSocket(other);
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
      ...(this.#tlsClient || this.#tlsBackend ? { tls: this.tls } : {}),
    };
    this.#host.finished(this, rec);
  }
}

/**
 * Close with a TCP reset. A TLS socket runs on a handle that is not a TCP
 * one (resetAndDestroy would throw): it is closed (with its close_notify).
 */
function resetSocket(s: net.Socket): void {
  if (s instanceof tls.TLSSocket) s.destroy();
  else s.resetAndDestroy();
}

/** OpenSSL's verify codes (as Node names them) in words, for `L6_VERIFY <reason>`. */
const VERIFY_REASONS: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown issuer',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown issuer',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in chain',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate does not cover the server name',
};

/** Short text for a socket error, for logs and passive-failure details. */
export function describe(err: NodeJS.ErrnoException): string {
  const verify = VERIFY_REASONS[err.code ?? ''];
  if (verify !== undefined) return `L6_VERIFY ${verify}${err.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ` (${err.message.replace(/^Hostname\/IP does not match certificate's altnames: /, '')})` : ''}`;
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

/**
 * ALPN passed through to a re-encrypted backend: the protocol the client
 * negotiated with the listener (`h2`, `http/1.1`, `imap`) is the only one
 * offered upstream, so the backend speaks what the client will send (an
 * nginx with `http2` answers h2 to an h2 client, HTTP/1.1 to the others).
 * Nothing negotiated, nothing offered.
 */
function upstreamAlpn(client: net.Socket): { ALPNProtocols?: string[] } {
  const p = client instanceof tls.TLSSocket ? client.alpnProtocol : false;
  return typeof p === 'string' && p !== '' ? { ALPNProtocols: [p] } : {};
}
