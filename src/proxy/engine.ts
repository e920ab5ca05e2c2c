/**
 * The JavaScript data-plane engine: Node `net` listeners, one Session per
 * client, a coarse idle sweep. Policy arrives as data (RoutingTable, listener
 * settings); outcomes leave through the EngineSink.
 */
import net from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { ListenerConfig } from '../core/config.js';
import { listenerTlsKey } from '../config/diff.js';
import type { BackendId, EndReason } from '../core/types.js';
import { AcceptErrorLog, Admission, listenError } from './admission.js';
import { applyListeners, DrainWait, prepareListenerSet } from './listener-set.js';
import { dec, inc, Router } from './router.js';
import { Session, type SessionHost, type UpstreamTls } from './session.js';
import { ClientFailureLog } from './client-failure-log.js';
import { handshakeFailureKind, TlsFront } from './tls-front.js';
import type { NegotiationEnd, StarttlsSetup } from './starttls/driver.js';
import { alpnAnswer, httpAnswer, parseChallengeRequest, parseClientHello, peek, serveAlpnChallenge, serveHttpChallenge } from './acme-answer.js';
import { clientOf, proxiedClients, ProxyHeaderReader, type ProxyInfo } from './proxy-in.js';
import type { BoundAddress, Engine, EngineSink, ListenerResult, PreparedListeners, RouteBackend, RoutingTable, SessionInfo, SessionRecord } from '../core/dataplane.js';

/** The backend leg's TLS for a STARTTLS listener whose upstream has no `tls`: verified against the system CAs. */
let defaultBackendTls: UpstreamTls | undefined;
function DEFAULT_BACKEND_TLS(): UpstreamTls {
  defaultBackendTls ??= { context: createSecureContext({}), servername: '', verify: true };
  return defaultBackendTls;
}

/** A listening socket plus the settings new sessions on it use. */
class Listener implements SessionHost {
  readonly admission: Admission;
  server: net.Server | undefined;
  /** Clients accepted before the listener was committed (a reload binding); served at activate(). */
  #held: net.Socket[] | undefined = [];
  readonly #engine: JsEngine;
  readonly #errors: AcceptErrorLog;
  /** TLS termination (cfg.tls), rebuilt when a reload changes it; new handshakes use the current one. */
  #front: TlsFront | undefined;
  #frontKey = listenerTlsKey(undefined);
  /** TLS to the backends (cfg.upstreamTls), rebuilt when a reload changes it. */
  upstreamTls: UpstreamTls | undefined;
  #upstreamKey = 'none';
  /** STARTTLS (cfg.starttls): the listener's certificates for the client, the upstream's tls for the backend. */
  starttls: StarttlsSetup | undefined;

  constructor(engine: JsEngine, cfg: ListenerConfig) {
    this.#engine = engine;
    this.admission = new Admission(cfg);
    this.#errors = new AcceptErrorLog((l) => engine.log(l));
    this.updated();
  }

  /** Settings changed (a reload): swap the TLS contexts if the certificates or options changed. */
  updated(): void {
    this.#updateUpstreamTls();
    const key = listenerTlsKey(this.cfg.tls);
    if (key !== this.#frontKey) {
      this.#front = this.cfg.tls === undefined ? undefined : new TlsFront(this.cfg.tls);
      this.#frontKey = key;
    }
    const { starttls, requireTls, tls } = this.cfg;
    this.starttls = starttls === undefined || this.#front === undefined || tls === undefined ? undefined : {
      protocol: starttls,
      requireTls: requireTls ?? false,
      front: this.#front,
      // Without upstream tls the backend is still verified: system CAs, its host name.
      backendTls: this.upstreamTls ?? DEFAULT_BACKEND_TLS(),
      timeoutMs: tls.handshakeTimeoutMs,
    };
  }

  starttlsEnded(end: NegotiationEnd, clientIp: string): void {
    if (end.clientTls !== undefined) this.#engine.tlsErrors.report(this.cfg.name, end.clientTls, clientIp);
    else if (end.log !== undefined) this.#engine.starttlsErrors.report(this.cfg.name, end.log, clientIp);
  }

  #updateUpstreamTls(): void {
    const u = this.cfg.upstreamTls;
    const key = JSON.stringify(u ?? null);
    if (key === this.#upstreamKey) return;
    this.#upstreamKey = key;
    this.upstreamTls = u === undefined ? undefined : {
      context: createSecureContext({ ...(u.ca === null ? {} : { ca: u.ca }), ...(u.cert === null || u.key === null ? {} : { cert: u.cert, key: u.key }) }),
      servername: u.servername,
      verify: u.verify,
    };
  }

  get cfg(): ListenerConfig {
    return this.admission.cfg;
  }
  get listenerName(): string {
    return this.admission.cfg.name;
  }
  get connectTimeoutMs(): number {
    return this.admission.cfg.connectTimeoutMs;
  }

  preamble(client: net.Socket): Buffer | undefined {
    // Only a listener that sends PROXY headers needs its own address (a getsockname per connection).
    if (this.admission.cfg.proxyProtocol === false) return undefined;
    // Behind a front tier, the client and the address it reached are the ones its header named.
    const p = clientOf(client);
    const e = p ?? {
      srcAddr: client.remoteAddress ?? '',
      srcPort: client.remotePort ?? 0,
      dstAddr: client.localAddress ?? '',
      dstPort: client.localPort ?? 0,
    };
    return this.admission.preamble(e, client instanceof TLSSocket ? TlsFront.facts(client) : undefined);
  }

  next(clientIp: string, tried: Set<BackendId>): RouteBackend | undefined {
    return this.#engine.pick(this.cfg.upstream, clientIp, tried);
  }

  connectFailed(b: RouteBackend, detail: string): void {
    this.#engine.sink.connectFailed(b.id, detail);
  }

  localError(err: NodeJS.ErrnoException): void {
    this.#errors.report(this.cfg.name, err.code, err.message);
  }

  connectOk(b: RouteBackend): void {
    this.#engine.onConnected(b.id);
  }

  finished(s: Session, rec: SessionRecord): void {
    this.admission.release(s.clientIp);
    this.#engine.onFinished(s, rec);
  }

  /** Bind; resolves with a one-line error naming the listener on failure. */
  start(): Promise<ListenerResult> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    this.server = server;
    server.on('connection', (sock) => (this.#held !== undefined ? this.#held.push(sock) : this.#accept(sock)));
    return new Promise((resolve) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server = undefined;
        resolve({ name: this.cfg.name, ok: false, error: listenError(this.cfg, err.code, err.message) });
      };
      server.once('error', onError);
      const { host, port } = this.cfg.listen;
      server.listen({ port, host: host === '' ? undefined : host, backlog: 4096 }, () => {
        server.off('error', onError);
        // Later accept errors (EMFILE when descriptors run out) must not crash
        // the process nor flood the log: one line per second with a count.
        server.on('error', (err: NodeJS.ErrnoException) => this.#errors.report(this.cfg.name, err.code, err.message));
        resolve({ name: this.cfg.name, ok: true });
      });
    });
  }

  /** Start serving clients (the routing table for this listener is in place). */
  activate(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const sock of held) this.#accept(sock);
  }

  /** Stop accepting; open sessions carry on. */
  stop(): void {
    this.server?.close();
    this.server = undefined;
    for (const sock of this.#held ?? []) sock.destroy();
    this.#held = undefined;
  }

  #accept(sock: net.Socket): void {
    if (this.cfg.acme !== undefined) return this.#acmePeek(sock, this.cfg.acme.storage);
    const app = this.cfg.acceptProxyProtocol;
    if (app === undefined) return this.#start(sock);
    // Behind a front tier: only its addresses may connect, and what they send first is the PROXY header.
    if (!this.admission.trustsFrontTier(sock.remoteAddress ?? '')) return this.#start(sock, 'denied');
    this.#readProxyHeader(sock, app.timeoutMs);
  }

  /**
   * An ACME listener (docs/tls.md#acme): peek at the ClientHello (TLS) or the
   * request head (plain); a challenge for something in storage is answered
   * here, anything else goes on as usual with its bytes put back.
   */
  #acmePeek(sock: net.Socket, storage: string): void {
    const tlsCfg = this.cfg.tls;
    if (tlsCfg !== undefined) {
      return peek(sock, parseClientHello, tlsCfg.handshakeTimeoutMs, (hello) => {
        const pem = alpnAnswer(storage, hello);
        if (pem === undefined) return this.#start(sock);
        this.#engine.log(`listener ${this.cfg.name}: answered ACME tls-alpn-01 for ${hello!.servername} (client ${sock.remoteAddress ?? '?'})`);
        serveAlpnChallenge(sock, pem, tlsCfg.handshakeTimeoutMs);
      });
    }
    // A client that says nothing for 5 s is relayed (its first bytes, if any, still reach the backend).
    peek(sock, parseChallengeRequest, 5000, (req) => {
      const answer = httpAnswer(storage, req);
      if (answer === undefined) return this.#start(sock);
      this.#engine.log(`listener ${this.cfg.name}: answered ACME http-01 token ${req!.token.slice(0, 12)}… (client ${sock.remoteAddress ?? '?'})`);
      serveHttpChallenge(sock, answer);
    });
  }

  /**
   * Read the front tier's PROXY header, then start the session as the client
   * it names (the bytes after it are the client's, put back for the relay).
   * A malformed header, or none within the timeout, refuses the connection
   * (`denied`) and is logged per kind per second, never per connection.
   */
  #readProxyHeader(sock: net.Socket, timeoutMs: number): void {
    const reader = new ProxyHeaderReader();
    let settled = false;
    const settle = (why: string | undefined, info?: ProxyInfo, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onError);
      sock.pause();
      if (why !== undefined) {
        this.#engine.proxyErrors.report(this.cfg.name, why, sock.remoteAddress ?? '?');
        if (sock.destroyed) return;
        return this.#start(sock, 'denied');
      }
      if (rest !== undefined && rest.length > 0) sock.unshift(rest);
      if (info?.kind === 'proxied') proxiedClients.set(sock, info);
      this.#start(sock);
    };
    const onData = (chunk: Buffer): void => {
      const r = reader.push(chunk);
      if (r.state === 'error') settle(r.error);
      else if (r.state === 'done') settle(undefined, r.info, r.rest);
    };
    const onEnd = (): void => settle('the front tier closed before a complete header');
    const onError = (): void => settle('connection error before a complete header');
    const timer = setTimeout(() => settle(`no complete header within ${timeoutMs} ms`), timeoutMs);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('error', onError);
    sock.resume();
  }

  /** Start serving `sock` (after its PROXY header, if any); `refuse`: close it at once with that reason, counted and logged like any refusal. */
  #start(sock: net.Socket, refuse?: EndReason): void {
    // A STARTTLS listener's client speaks plain text first: no handshake at accept.
    const front = this.cfg.starttls === undefined ? this.#front : undefined;
    const client = front === undefined || refuse !== undefined ? sock : front.wrap(sock);
    const s = new Session(this, client);
    const admitted = this.admission.admit(s.clientIp);
    const refused = refuse ?? admitted;
    this.#engine.onAccepted(s, this.cfg.idleTimeoutMs);
    if (refused !== undefined) return s.reject(refused);
    if (front === undefined) return s.begin();
    this.#handshake(s, client as TLSSocket, front);
  }

  /**
   * Dial the backend once the client's handshake is done. A handshake that
   * fails, stalls past `handshakeTimeout` or is abandoned ends the session
   * `tls_failed` and is logged per kind (ClientFailureLog), not per client.
   */
  #handshake(s: Session, t: TLSSocket, front: TlsFront): void {
    let failure: Error | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      t.destroy();
    }, front.cfg.handshakeTimeoutMs);
    const onError = (err: Error): void => {
      failure ??= err;
    };
    // Ahead of the session's own close handler, so the reason is set before it reports.
    const onEarlyClose = (): void => {
      clearTimeout(timer);
      const kind = handshakeFailureKind(failure, timedOut);
      this.#engine.tlsErrors.report(this.cfg.name, kind, s.clientIp);
      s.tlsFailed(kind);
    };
    // The client gave up (FIN or reset) mid-handshake: the listener's half-open
    // setting would otherwise keep the socket until the timeout.
    const onEnd = (): void => void t.destroy();
    t.on('error', onError);
    t.once('end', onEnd);
    t.prependOnceListener('close', onEarlyClose);
    t.once('secure', () => {
      clearTimeout(timer);
      t.off('error', onError);
      t.off('end', onEnd);
      t.off('close', onEarlyClose);
      s.begin();
    });
  }
}

export interface JsEngineOptions {
  /** Where data-plane errors go (a stderr logger in headless mode). */
  log?: (line: string) => void;
  /** Called for every accepted client (a worker process mirrors live sessions to the primary). */
  onSession?: (s: Session) => void;
  /** Called when a session ends, just before its record goes to the sink. */
  onSessionEnd?: (s: Session) => void;
}

export class JsEngine implements Engine {
  readonly name = 'js';
  readonly relaysOnMainThread = true;
  readonly sink: EngineSink;
  readonly #router = new Router();
  #listeners = new Map<string, Listener>();
  #sessions = new Map<Session, number>(); // session -> idle timeout ms
  #active = new Map<BackendId, number>();
  /** Open sessions by listener name, moved or removed listeners' sessions included. */
  #perListener = new Map<string, number>();
  #sweep: NodeJS.Timeout | undefined;
  #sweepEvery = 1000;
  readonly #drain = new DrainWait();
  readonly #log: (line: string) => void;
  readonly #onSession: ((s: Session) => void) | undefined;
  readonly #onSessionEnd: ((s: Session) => void) | undefined;
  /** Failed client handshakes of every TLS listener, a line per kind per second. */
  readonly tlsErrors: ClientFailureLog;
  /** STARTTLS sessions ended by a protocol problem (a line too long), a line per kind per second. */
  readonly starttlsErrors: ClientFailureLog;
  /** Refused PROXY headers of listeners behind a front tier, logged per kind per second. */
  readonly proxyErrors: ClientFailureLog;

  constructor(sink: EngineSink, opts: JsEngineOptions = {}) {
    this.sink = sink;
    this.#log = opts.log ?? (() => {});
    this.tlsErrors = new ClientFailureLog((l) => this.#log(l));
    this.starttlsErrors = new ClientFailureLog((l) => this.#log(l), 'STARTTLS');
    this.proxyErrors = new ClientFailureLog((l) => this.#log(l), 'PROXY header refused');
    this.#onSession = opts.onSession;
    this.#onSessionEnd = opts.onSessionEnd;
  }

  log(line: string): void {
    this.#log(line);
  }

  /** The routing table in use. */
  get routes(): RoutingTable {
    return this.#router.table;
  }

  setRoutes(table: RoutingTable, changed?: ReadonlySet<string>): void {
    this.#router.set(table, changed);
  }

  pick(upstream: string, clientIp: string, tried: Set<BackendId>): RouteBackend | undefined {
    return this.#router.pick(upstream, clientIp, tried, this.#active);
  }

  /**
   * Two phases, so a reload is all or nothing: `prepareListeners` binds every
   * new or moved listener beside the running ones (clients they accept
   * meanwhile are held); if any bind fails, it closes what it just bound and
   * changes nothing. `commit` then stops removed/moved listeners (their
   * sessions continue), updates the rest in place and starts serving on the
   * new ones. A listener renamed without changing its address keeps its
   * socket. `setListeners` runs both, with `beforeCommit` (the control plane
   * installs the new routes) in between.
   */
  setListeners(listeners: readonly ListenerConfig[], beforeCommit?: () => void): Promise<ListenerResult[]> {
    return applyListeners(this, listeners, beforeCommit);
  }

  prepareListeners(listeners: readonly ListenerConfig[]): Promise<PreparedListeners> {
    return prepareListenerSet(
      this.#listeners,
      listeners,
      {
        create: (cfg) => new Listener(this, cfg),
        start: (l) => l.start(),
        stop: (l) => l.stop(),
        activate: (l) => l.activate(),
        update: (l) => l.updated(),
      },
      (set) => {
        this.#listeners = set;
        this.#retime();
      },
    );
  }

  /** Addresses actually bound, by listener name (port 0 in tests resolves here). */
  boundAddresses(): Map<string, BoundAddress> {
    const out = new Map<string, BoundAddress>();
    for (const [name, l] of this.#listeners) {
      const a = l.server?.address();
      if (a !== null && a !== undefined && typeof a === 'object') out.set(name, { address: a.address, port: a.port });
    }
    return out;
  }

  killBackend(backend: BackendId, reason: EndReason): number {
    let n = 0;
    for (const s of this.#sessions.keys()) {
      if (s.backend?.id === backend) {
        s.abort(reason);
        n++;
      }
    }
    return n;
  }

  sessions(limit: number): { total: number; list: SessionInfo[] } {
    const list: SessionInfo[] = [];
    for (const s of this.#sessions.keys()) {
      if (list.length >= limit) break;
      list.push({
        id: s.id,
        listener: s.listener,
        client: s.clientIp,
        backend: s.backend?.id ?? '',
        start: s.start,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        ...(s.tls === '-' ? {} : { tls: s.tls }),
      });
    }
    return { total: this.#sessions.size, list };
  }

  /** Open sessions per listener name (the listeners' own counters). */
  activeByListener(): ReadonlyMap<string, number> {
    return this.#perListener;
  }

  /** Bytes relayed so far by the open sessions (both directions). */
  liveBytes(): number {
    let n = 0;
    for (const s of this.#sessions.keys()) n += s.bytesIn + s.bytesOut;
    return n;
  }

  activeByBackend(): ReadonlyMap<BackendId, number> {
    return this.#active;
  }

  onAccepted(s: Session, idleMs: number): void {
    this.#sessions.set(s, idleMs);
    inc(this.#perListener, s.acceptedOn);
    this.#onSession?.(s);
  }

  onConnected(id: BackendId): void {
    inc(this.#active, id);
    this.sink.connectOk(id);
    this.sink.sessionOpened(id);
  }

  onFinished(s: Session, rec: SessionRecord): void {
    this.#sessions.delete(s);
    dec(this.#perListener, s.acceptedOn);
    // Only a session that reached its backend was counted in (onConnected): one
    // that ended while dialling (client gone, killed) must not take one off.
    if (s.connected && s.backend !== undefined) dec(this.#active, s.backend.id);
    this.#onSessionEnd?.(s);
    this.sink.sessionClosed(rec);
    this.#drain.settled(this.#sessions.size);
  }

  async shutdown(timeoutMs: number): Promise<void> {
    for (const l of this.#listeners.values()) l.stop();
    this.#listeners.clear();
    await this.#drain.wait(() => this.#sessions.size, timeoutMs);
    this.closeAllNow();
    // Let the aborted sessions report (access log lines with reason `shutdown`).
    await this.#drain.wait(() => this.#sessions.size, 1000);
  }

  closeAllNow(): void {
    for (const l of this.#listeners.values()) l.stop();
    this.#listeners.clear();
    for (const s of [...this.#sessions.keys()]) s.abort('shutdown');
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /** One coarse timer for every idle timeout, instead of a timer reset per chunk. */
  #retime(): void {
    let min = Infinity;
    for (const l of this.#listeners.values()) min = Math.min(min, l.cfg.idleTimeoutMs);
    const every = Number.isFinite(min) ? Math.max(50, Math.min(1000, Math.floor(min / 4))) : 1000;
    if (this.#sweep !== undefined && every === this.#sweepEvery) return;
    clearInterval(this.#sweep);
    this.#sweepEvery = every;
    this.#sweep = setInterval(() => this.#sweepIdle(), every);
    this.#sweep.unref();
  }

  #sweepIdle(): void {
    const now = Date.now();
    for (const [s, idle] of this.#sessions) {
      if (idle > 0 && s.backend !== undefined && now - s.lastActive >= idle) s.abort('idle_timeout');
    }
  }
}
