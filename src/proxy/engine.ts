/**
 * The JavaScript data-plane engine: Node `net` listeners, one Session per
 * client, a coarse idle sweep. Policy arrives as data (RoutingTable, listener
 * settings); outcomes leave through the EngineSink.
 */
import net from 'node:net';
import { createBalancer } from '../balancers/registry.js';
import type { Balancer } from '../balancers/types.js';
import type { ListenerConfig } from '../config/types.js';
import type { BackendId, BalanceAlgorithm, EndReason } from '../core/types.js';
import { compileAcl } from '../runtime/acl.js';
import { buildProxyHeader } from './proxy-header.js';
import { selectBackend } from './select.js';
import { Session, type SessionHost } from './session.js';
import type { Engine, EngineSink, ListenerResult, RouteBackend, RoutingTable, SessionInfo, SessionRecord } from './types.js';

const EMPTY_TABLE: RoutingTable = { version: 0, upstreams: new Map() };

/** A listening socket plus the settings new sessions on it use. */
class Listener implements SessionHost {
  cfg: ListenerConfig;
  acl: (ip: string) => boolean;
  server: net.Server | undefined;
  active = 0;
  perClient = new Map<string, number>();
  /** Clients accepted before the listener was committed (a reload binding); served at activate(). */
  #held: net.Socket[] | undefined = [];
  readonly #engine: JsEngine;

  constructor(engine: JsEngine, cfg: ListenerConfig) {
    this.#engine = engine;
    this.cfg = cfg;
    this.acl = compileAcl(cfg.allow, cfg.deny);
  }

  get listenerName(): string {
    return this.cfg.name;
  }
  get connectTimeoutMs(): number {
    return this.cfg.connectTimeoutMs;
  }

  update(cfg: ListenerConfig): void {
    this.cfg = cfg;
    this.acl = compileAcl(cfg.allow, cfg.deny);
  }

  preamble(client: net.Socket): Buffer | undefined {
    const v = this.cfg.proxyProtocol;
    if (v === false) return undefined;
    return buildProxyHeader(v, {
      srcAddr: client.remoteAddress ?? '',
      srcPort: client.remotePort ?? 0,
      dstAddr: client.localAddress ?? '',
      dstPort: client.localPort ?? 0,
    });
  }

  next(clientIp: string, tried: Set<BackendId>): RouteBackend | undefined {
    return this.#engine.pick(this.cfg.upstream, clientIp, tried);
  }

  connectFailed(b: RouteBackend, detail: string): void {
    this.#engine.sink.connectFailed(b.id, detail);
  }

  localError(err: NodeJS.ErrnoException): void {
    this.#acceptError(err);
  }

  connectOk(b: RouteBackend): void {
    this.#engine.onConnected(b.id);
  }

  finished(s: Session, rec: SessionRecord): void {
    this.active--;
    if (this.cfg.maxConnectionsPerClient > 0 || this.perClient.size > 0) {
      const n = (this.perClient.get(s.clientIp) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(s.clientIp);
      else this.perClient.set(s.clientIp, n);
    }
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
        resolve({ name: this.cfg.name, ok: false, error: listenError(this.cfg, err) });
      };
      server.once('error', onError);
      const { host, port } = this.cfg.listen;
      server.listen({ port, host: host === '' ? undefined : host, backlog: 4096 }, () => {
        server.off('error', onError);
        // Later accept errors (EMFILE when descriptors run out) must not crash
        // the process nor flood the log: one line per second with a count.
        server.on('error', (err: NodeJS.ErrnoException) => this.#acceptError(err));
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

  #errs = 0;
  #errTimer: NodeJS.Timeout | undefined;
  #acceptError(err: NodeJS.ErrnoException): void {
    this.#errs++;
    if (this.#errTimer !== undefined) return;
    const what = err.code === 'EMFILE' || err.code === 'ENFILE' ? `${err.code}: out of file descriptors; new clients wait or are closed until some free up` : err.message;
    this.#engine.log(`listener ${this.cfg.name}: ${what}`);
    this.#errs = 0;
    this.#errTimer = setTimeout(() => {
      this.#errTimer = undefined;
      if (this.#errs > 0) this.#engine.log(`listener ${this.cfg.name}: ${this.#errs} more accept error${this.#errs > 1 ? 's' : ''} in the last second (${err.code ?? 'error'})`);
      this.#errs = 0;
    }, 1000);
    this.#errTimer.unref();
  }

  /** Stop accepting; open sessions carry on. */
  stop(): void {
    this.server?.close();
    this.server = undefined;
    for (const sock of this.#held ?? []) sock.destroy();
    this.#held = undefined;
  }

  #accept(sock: net.Socket): void {
    const s = new Session(this, sock);
    this.active++;
    if (this.cfg.maxConnectionsPerClient > 0) {
      this.perClient.set(s.clientIp, (this.perClient.get(s.clientIp) ?? 0) + 1);
    }
    this.#engine.onAccepted(s, this.cfg.idleTimeoutMs);
    if (!this.acl(s.clientIp)) return s.reject('denied');
    if (this.cfg.maxConnections > 0 && this.active > this.cfg.maxConnections) return s.reject('limit');
    if (this.cfg.maxConnectionsPerClient > 0 && (this.perClient.get(s.clientIp) ?? 0) > this.cfg.maxConnectionsPerClient) {
      return s.reject('limit');
    }
    s.begin();
  }
}

function listenError(cfg: ListenerConfig, err: NodeJS.ErrnoException): string {
  const where = cfg.listenText;
  switch (err.code) {
    case 'EADDRINUSE':
      return `listener "${cfg.name}": ${where} is already in use`;
    case 'EACCES':
      return `listener "${cfg.name}": permission denied binding ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `listener "${cfg.name}": ${where}: address not available on this host`;
    default:
      return `listener "${cfg.name}": cannot listen on ${where}: ${err.message}`;
  }
}

export interface JsEngineOptions {
  /** Where data-plane errors go (a stderr logger in headless mode). */
  log?: (line: string) => void;
}

export class JsEngine implements Engine {
  readonly sink: EngineSink;
  #table: RoutingTable = EMPTY_TABLE;
  #listeners = new Map<string, Listener>();
  #sessions = new Map<Session, number>(); // session -> idle timeout ms
  #active = new Map<BackendId, number>();
  /** Open sessions by listener name, moved or removed listeners' sessions included. */
  #perListener = new Map<string, number>();
  #balancers = new Map<string, { algo: BalanceAlgorithm; balancer: Balancer }>();
  #sweep: NodeJS.Timeout | undefined;
  #sweepEvery = 1000;
  #drained: (() => void) | undefined;
  readonly #log: (line: string) => void;

  constructor(sink: EngineSink, opts: JsEngineOptions = {}) {
    this.sink = sink;
    this.#log = opts.log ?? (() => {});
  }

  log(line: string): void {
    this.#log(line);
  }

  setRoutes(table: RoutingTable): void {
    this.#table = table;
    for (const [name, up] of table.upstreams) {
      const cur = this.#balancers.get(name);
      if (cur === undefined || cur.algo !== up.balance) {
        this.#balancers.set(name, { algo: up.balance, balancer: createBalancer(up.balance) });
      }
    }
    for (const name of this.#balancers.keys()) if (!table.upstreams.has(name)) this.#balancers.delete(name);
  }

  pick(upstream: string, clientIp: string, tried: Set<BackendId>): RouteBackend | undefined {
    const up = this.#table.upstreams.get(upstream);
    const bal = this.#balancers.get(upstream);
    if (up === undefined || bal === undefined) return undefined;
    return selectBackend(up, bal.balancer, clientIp, tried, this.#active);
  }

  /**
   * Two phases, so a reload is all or nothing: first bind every new or moved
   * listener beside the running ones (clients they accept meanwhile are held);
   * if any bind fails, close what was just bound and change nothing. Then run
   * `beforeCommit` (the control plane installs the new routes), stop
   * removed/moved listeners (their sessions continue), update the rest in
   * place and start serving on the new ones. A listener renamed without
   * changing its address keeps its socket.
   */
  async setListeners(listeners: readonly ListenerConfig[], beforeCommit?: () => void): Promise<ListenerResult[]> {
    const key = (c: ListenerConfig): string => `${c.listen.host}|${c.listen.port}`;
    const byAddr = new Map([...this.#listeners.values()].map((l) => [key(l.cfg), l]));
    const keep = new Map<string, Listener>(); // new name -> running listener with the same address
    const fresh: Listener[] = [];
    for (const cfg of listeners) {
      const same = byAddr.get(key(cfg));
      if (same !== undefined) keep.set(cfg.name, same);
      else fresh.push(new Listener(this, cfg));
    }
    const started = await Promise.all(fresh.map((l) => l.start()));
    const failed = started.filter((r) => !r.ok);
    if (failed.length > 0) {
      fresh.forEach((l) => l.stop());
      return failed;
    }
    beforeCommit?.();
    const kept = new Set(keep.values());
    for (const l of this.#listeners.values()) if (!kept.has(l)) l.stop();
    this.#listeners = new Map();
    for (const cfg of listeners) {
      const l = keep.get(cfg.name) ?? fresh.find((f) => f.cfg === cfg)!;
      l.update(cfg);
      this.#listeners.set(cfg.name, l);
    }
    for (const l of fresh) l.activate();
    this.#retime();
    return listeners.map((l) => ({ name: l.name, ok: true }));
  }

  /** Addresses actually bound, by listener name (port 0 in tests resolves here). */
  boundAddresses(): Map<string, net.AddressInfo> {
    const out = new Map<string, net.AddressInfo>();
    for (const [name, l] of this.#listeners) {
      const a = l.server?.address();
      if (a !== null && a !== undefined && typeof a === 'object') out.set(name, a);
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
    this.#perListener.set(s.acceptedOn, (this.#perListener.get(s.acceptedOn) ?? 0) + 1);
  }

  onConnected(id: BackendId): void {
    this.#active.set(id, (this.#active.get(id) ?? 0) + 1);
    this.sink.connectOk(id);
    this.sink.sessionOpened(id);
  }

  onFinished(s: Session, rec: SessionRecord): void {
    this.#sessions.delete(s);
    const n = (this.#perListener.get(s.acceptedOn) ?? 1) - 1;
    if (n <= 0) this.#perListener.delete(s.acceptedOn);
    else this.#perListener.set(s.acceptedOn, n);
    if (rec.backend !== '' && rec.reason !== 'connect_failed') {
      const n = (this.#active.get(rec.backend) ?? 1) - 1;
      if (n <= 0) this.#active.delete(rec.backend);
      else this.#active.set(rec.backend, n);
    }
    this.sink.sessionClosed(rec);
    if (this.#drained !== undefined && this.#sessions.size === 0) this.#drained();
  }

  async shutdown(timeoutMs: number): Promise<void> {
    for (const l of this.#listeners.values()) l.stop();
    this.#listeners.clear();
    await this.#drain(timeoutMs);
    this.closeAllNow();
    // Let the aborted sessions report (access log lines with reason `shutdown`).
    await this.#drain(1000);
  }

  /** Resolve once no session is open, or after `ms`. */
  #drain(ms: number): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      this.#drained = done;
      function done(): void {
        clearTimeout(t);
        resolve();
      }
    }).finally(() => (this.#drained = undefined));
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
