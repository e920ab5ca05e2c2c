/**
 * The native data-plane engine: the C++ addon in native/ accepts, connects
 * and relays on its own epoll thread; this class makes every policy decision
 * for it with the same code the JS engine uses (Admission for allow/deny and
 * limits, Router for balancing), and turns the addon's batched events into
 * the same EngineSink calls and SessionRecords. See native/API.md.
 *
 * Routing fast path: for a listener whose policy needs nothing but the
 * routing table (no allow/deny, no per-client limit, no PROXY header, every
 * backend an IP literal), the balancing inputs are pushed to the addon as a
 * table (`setRoute`) whenever routes or listeners change; the relay thread
 * then picks and dials by itself and reports ACCEPT_ROUTED. Everything after
 * that (accounting, retries after a failed connect, the access log) is the
 * same as for a client JS routed itself.
 *
 * TLS listeners (`listeners[].tls`) are terminated by the addon itself
 * (native/src/tls.cc): it handshakes right after accept and reports
 * TLS_READY with the session's facts (for the PROXY v2 TLS fields) or
 * TLS_FAILED (logged per kind per second, as on the JS path); with a fast
 * table the relay thread dials right after the handshake and TLS_READY names
 * the backend, else JS dials after TLS_READY. What the addon does not do (TLS to the backends,
 * STARTTLS, reading a front tier's PROXY header) is handed, whole, to an
 * embedded JsEngine that shares this engine's sink, routes and counts, so
 * one Engine still answers for every listener (docs/engines.md, docs/tls.md).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import type { ListenerConfig } from '../core/config.js';
import { LOCAL_ERRORS } from '../core/local-errors.js';
import type { BackendId, EndReason } from '../core/types.js';
import { hashString32, ID_HASH_SEED } from '../balancers/ip-hash.js';
import { AcceptErrorLog, Admission, listenError } from './admission.js';
import { loadNative, type NativeEngineHandle, type NativeRouteTable } from './native-binding.js';
import { applyListeners, DrainWait, prepareListenerSet } from './listener-set.js';
import { dec, inc, Router } from './router.js';
import { describe } from './session.js';
import { JsEngine } from './engine.js';
import { listenerTlsKey } from '../config/diff.js';
import type { TlsSession } from '../core/proxy-header.js';
import { ClientFailureLog } from './client-failure-log.js';
import { nativeFailureKind, nativeTlsSettings } from './native-tls.js';
import type { BoundAddress, Engine, EngineSink, ListenerResult, PreparedListeners, RouteBackend, RoutingTable, SessionInfo, SessionRecord } from '../core/dataplane.js';

const EV_ACCEPT = 1;
const EV_CONNECTED = 2;
const EV_CONNECT_FAILED = 3;
const EV_CLOSED = 4;
const EV_ACCEPT_ERROR = 5;
const EV_ACCEPT_ROUTED = 6;
const EV_TLS_READY = 7;
const EV_TLS_FAILED = 8;

/** Two count maps added up (a fresh map: both halves keep changing theirs). */
function merged<K>(a: ReadonlyMap<K, number>, b: ReadonlyMap<K, number>): Map<K, number> {
  const out = new Map(a);
  for (const [k, n] of b) out.set(k, (out.get(k) ?? 0) + n);
  return out;
}

const HOW_IDLE = 1;
const HOW_KILLED = 2;
const HOW_ERROR = 3;
const HOW_TLS_FAILED = 7;


const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
const errnoName = (n: number): string => ERRNO_NAMES.get(n) ?? `errno ${n}`;

/** How long a resolved backend host name is reused. */
const DNS_TTL_MS = 30_000;

class NListener {
  readonly admission: Admission;
  readonly errors: AcceptErrorLog;
  port = 0;
  /** The fast-path table last pushed (JSON), to skip pushing the same one again. */
  routeSig: string | undefined;
  /** False for one loop turn after the listener starts: see #pushRoutes. */
  routable = false;
  /** Terminates TLS (fixed for the listener's life: a reload that turns it on or off needs another address). */
  readonly tls: boolean;
  /** listenerTlsKey of the settings last given to setTls. */
  tlsKey: string;
  constructor(
    readonly id: number,
    cfg: ListenerConfig,
    log: (line: string) => void,
  ) {
    this.admission = new Admission(cfg);
    this.errors = new AcceptErrorLog(log);
    this.tls = cfg.tls !== undefined;
    this.tlsKey = listenerTlsKey(cfg.tls);
  }
  get cfg(): ListenerConfig {
    return this.admission.cfg;
  }
}

interface Conn {
  readonly id: number;
  readonly l: NListener;
  /** The listener's name when the client arrived (a reload may rename it later). */
  readonly acceptedOn: string;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly localIp: string;
  readonly localPort: number;
  readonly start: number;
  backend: RouteBackend | undefined;
  /**
   * Backends dialled so far; created on the first dial from JS (a retry or a
   * slow-path client), not per routed connection: an idle routed connection
   * then costs no Set (bench/optimisations.md, idle memory).
   */
  tried: Set<BackendId> | undefined;
  reason: EndReason | undefined;
  detail: string;
  connected: boolean;
  /** TLS listener: admitted, waiting for TLS_READY before dialling. */
  awaitTls: boolean;
  /** The client's TLS session (TLS_READY), for the PROXY v2 TLS fields. */
  tls: TlsSession | undefined;
}

export interface NativeEngineOptions {
  log?: (line: string) => void;
  /**
   * Relay threads in the addon (native/API.md, `threads`): the config's
   * `workers`; 1 when not given; TCPLB_NATIVE_THREADS overrides.
   */
  threads?: number;
}

/**
 * TCPLB_NATIVE_THREADS (1..64), when set, overrides the relay thread count
 * the config asks for (`workers`): for measurements.
 */
export function nativeThreadsOverride(): number | undefined {
  const env = Number(process.env.TCPLB_NATIVE_THREADS);
  return Number.isInteger(env) && env >= 1 && env <= 64 ? env : undefined;
}

export class NativeEngine implements Engine {
  readonly name = 'native';
  readonly #h: NativeEngineHandle;
  readonly #sink: EngineSink;
  readonly #log: (line: string) => void;
  readonly #router = new Router();
  #listeners = new Map<string, NListener>();
  readonly #byId = new Map<number, NListener>();
  #nextListener = 1;
  readonly #conns = new Map<number, Conn>();
  readonly #active = new Map<BackendId, number>();
  readonly #perListener = new Map<string, number>();
  readonly #dns = new Map<string, { ip: string; at: number }>();
  /**
   * The addon's number for each BackendId ever routed (never reused, so the
   * addon's per-key open counts stay right across tables), its ip_hash id
   * hash, and the latest RouteBackend per key for ACCEPT_ROUTED.
   */
  readonly #keys = new Map<BackendId, { key: number; idHash: number }>();
  readonly #byKey: RouteBackend[] = [];
  readonly #drain = new DrainWait();
  /** The relay runs on its own thread: this ref'd timer keeps the process up while anything is open. */
  #keepAlive: NodeJS.Timeout | undefined;
  #disposed = false;
  /** Serves the listeners the addon does not (made when the first one appears). */
  #js: JsEngine | undefined;
  /** The listeners #js serves (upstream tls, STARTTLS, acceptProxyProtocol), as last committed. */
  #jsListeners: readonly ListenerConfig[] = [];
  /** Failed client handshakes of the native TLS listeners, a line per kind per second (as JsEngine's). */
  readonly #tlsErrors: ClientFailureLog;
  /** The addon terminates TLS (a build with setTls, and TCPLB_NATIVE_TLS is not 0). */
  readonly #nativeTls: boolean;

  constructor(sink: EngineSink, opts: NativeEngineOptions = {}) {
    const native = loadNative();
    if (!native.ok) throw new Error(`native engine not available: ${native.reason}`);
    this.#sink = sink;
    this.#log = opts.log ?? (() => {});
    this.#tlsErrors = new ClientFailureLog((l) => this.#log(l));
    this.#h = new native.binding.Engine((ev) => this.#onEvents(ev), { threads: nativeThreadsOverride() ?? Math.min(64, Math.max(1, opts.threads ?? 1)) });
    // TCPLB_NATIVE_TLS=0 keeps TLS listeners in the embedded JsEngine (for comparisons).
    this.#nativeTls = typeof this.#h.setTls === 'function' && process.env.TCPLB_NATIVE_TLS !== '0';
  }

  /** True while some listeners (TLS to the backends, STARTTLS, a front tier's PROXY header) are relayed by the embedded JsEngine on the main thread. */
  get relaysOnMainThread(): boolean {
    return this.#jsListeners.length > 0;
  }

  setRoutes(table: RoutingTable, changed?: ReadonlySet<string>): void {
    this.#router.set(table, changed);
    this.#js?.setRoutes(table, changed);
    for (const name of changed ?? table.upstreams.keys()) {
      for (const b of table.upstreams.get(name)?.backends ?? []) {
        let k = this.#keys.get(b.id);
        if (k === undefined) {
          k = { key: this.#byKey.length, idHash: hashString32(b.id, ID_HASH_SEED) };
          this.#keys.set(b.id, k);
        }
        this.#byKey[k.key] = b;
      }
    }
    this.#pushRoutes(changed);
  }

  setListeners(listeners: readonly ListenerConfig[], beforeCommit?: () => void): Promise<ListenerResult[]> {
    return applyListeners(this, listeners, beforeCommit);
  }

  /** Whether the embedded JsEngine must serve a listener: what the addon does not do. */
  #inJs(l: ListenerConfig): boolean {
    // TLS to the backends, STARTTLS, reading a front tier's PROXY header and
    // answering ACME challenges (a peek at each ClientHello or request head)
    // run in the JS path; TLS from the client runs in the addon.
    return l.upstreamTls !== undefined || l.acceptProxyProtocol !== undefined || l.starttls !== undefined || l.acme !== undefined || (l.tls !== undefined && !this.#nativeTls);
  }

  /** Where and how a listener runs: it cannot change at the same address in one reload. */
  #kind(l: ListenerConfig): string {
    return this.#inJs(l) ? 'the JavaScript path' : l.tls !== undefined ? 'native TLS' : 'native plain TCP';
  }

  /**
   * Bind every new or moved listener (not yet accepting: clients wait in the
   * backlog), or none: plain and TLS listeners in the addon, the rest in the
   * embedded JsEngine. A listener cannot move between the two, nor turn TLS
   * on or off, at the same address in one reload (both would hold the port
   * for a moment; a native listener's TLS is fixed when it starts).
   */
  async prepareListeners(listeners: readonly ListenerConfig[]): Promise<PreparedListeners> {
    const inAddon = listeners.filter((l) => !this.#inJs(l));
    const inJs = listeners.filter((l) => this.#inJs(l));
    const key = (c: ListenerConfig): string => `${c.listen.host}|${c.listen.port}`;
    const runningAt = new Map<string, string>();
    for (const l of this.#listeners.values()) runningAt.set(key(l.cfg), l.tls ? 'native TLS' : 'native plain TCP');
    for (const c of this.#jsListeners) runningAt.set(key(c), 'the JavaScript path');
    const moved = listeners.filter((c) => runningAt.has(key(c)) && runningAt.get(key(c)) !== this.#kind(c));
    if (moved.length > 0) {
      return {
        ok: false,
        results: moved.map((c) => {
          const from = runningAt.get(key(c))!;
          const to = this.#kind(c);
          // Between the addon and the JS path: any of the JS-only settings; within the addon: TLS itself.
          const what = from === 'the JavaScript path' || to === 'the JavaScript path' ? 'TLS or acceptProxyProtocol (or STARTTLS, upstream TLS)' : 'TLS';
          const onOff = to === 'the JavaScript path' || (to === 'native TLS' && from === 'native plain TCP') ? 'on' : 'off';
          return { name: c.name, ok: false, error: `listener "${c.name}": turning ${what} ${onOff} at the same address (${c.listenText}) needs a restart with the native engine, or another address for one reload (it runs on ${from}, would run on ${to})` };
        }),
        commit() {},
        abort() {},
      };
    }
    const pn = await this.#prepareNative(inAddon);
    if (!pn.ok) return pn;
    if (inJs.length === 0 && this.#js === undefined) return pn;
    const js = this.#jsEngine();
    const pj = await js.prepareListeners(inJs);
    if (!pj.ok) {
      pn.abort();
      return pj;
    }
    return {
      ok: true,
      results: listeners.map((l) => ({ name: l.name, ok: true })),
      commit: () => {
        pn.commit();
        pj.commit();
        this.#jsListeners = inJs;
      },
      abort: () => {
        pn.abort();
        pj.abort();
      },
    };
  }

  #jsEngine(): JsEngine {
    if (this.#js === undefined) {
      this.#js = new JsEngine(this.#sink, { log: this.#log });
      this.#js.setRoutes(this.#router.table);
    }
    return this.#js;
  }

  #prepareNative(listeners: readonly ListenerConfig[]): Promise<PreparedListeners> {
    return prepareListenerSet(
      this.#listeners,
      listeners,
      {
        create: (cfg) => new NListener(this.#nextListener++, cfg, this.#log),
        start: (l) => {
          const r = this.#h.listen(l.id, l.cfg.listen.host, l.cfg.listen.port, 4096);
          if (r.ok) {
            l.port = r.port;
            const tlsCfg = l.cfg.tls;
            if (tlsCfg === undefined) return { name: l.cfg.name, ok: true };
            try {
              this.#h.setTls!(l.id, nativeTlsSettings(tlsCfg));
            } catch (err) {
              this.#h.closeListener(l.id);
              return { name: l.cfg.name, ok: false, error: `listener "${l.cfg.name}": TLS: ${(err as Error).message}` };
            }
            return { name: l.cfg.name, ok: true };
          }
          const text = `${r.code} (${os.constants.errno[r.code as keyof typeof os.constants.errno] ?? r.errno})`;
          return { name: l.cfg.name, ok: false, error: listenError(l.cfg, r.code, text) };
        },
        stop: (l) => this.#h.closeListener(l.id),
        update: (l) => this.#updateTls(l),
        activate: (l) => {
          this.#byId.set(l.id, l);
          this.#h.activate(l.id);
          // The first turn goes through TS (slow path), so the control plane
          // has run once for a new listener before the relay thread routes alone.
          setImmediate(() => {
            l.routable = true;
            this.#pushRoutes();
          });
        },
      },
      (set) => {
        this.#listeners = set;
        this.#pushRoutes();
        this.#holdProcess();
      },
    );
  }

  /**
   * A reload changed a native TLS listener's certificates or options: new
   * handshakes use the new context; handshakes begun and sessions open keep
   * theirs. A context the addon refuses keeps the old one (logged).
   */
  #updateTls(l: NListener): void {
    const cfg = l.cfg.tls;
    const key = listenerTlsKey(cfg);
    if (!l.tls || cfg === undefined || key === l.tlsKey) return;
    try {
      this.#h.setTls!(l.id, nativeTlsSettings(cfg));
      l.tlsKey = key;
    } catch (err) {
      this.#log(`listener ${l.cfg.name}: TLS settings not applied, the previous certificates stay: ${(err as Error).message}`);
    }
  }

  /** Which data path serves each listener (`native` = the addon's relay threads, TLS included; `js` = the embedded JsEngine). */
  listenerEngines(): ReadonlyMap<string, 'native' | 'js'> {
    const out = new Map<string, 'native' | 'js'>();
    for (const name of this.#listeners.keys()) out.set(name, 'native');
    for (const c of this.#jsListeners) out.set(c.name, 'js');
    return out;
  }

  boundAddresses(): ReadonlyMap<string, BoundAddress> {
    const out = new Map<string, BoundAddress>(this.#js?.boundAddresses());
    for (const [name, l] of this.#listeners) out.set(name, { address: l.cfg.listen.host === '' ? '::' : l.cfg.listen.host, port: l.port });
    return out;
  }

  killBackend(backend: BackendId, reason: EndReason): number {
    let n = this.#js?.killBackend(backend, reason) ?? 0;
    for (const c of this.#conns.values()) {
      if (c.backend?.id === backend) {
        c.reason ??= reason;
        this.#h.kill(c.id);
        n++;
      }
    }
    return n;
  }

  sessions(limit: number): { total: number; list: SessionInfo[] } {
    const list: SessionInfo[] = [];
    if (limit > 0) {
      const bytes = this.#bytes();
      for (const c of this.#conns.values()) {
        if (list.length >= limit) break;
        const b = bytes.get(c.id);
        list.push({ id: c.id, listener: c.l.cfg.name, client: c.clientIp, backend: c.backend?.id ?? '', start: c.start, bytesIn: b?.[0] ?? 0, bytesOut: b?.[1] ?? 0, ...(c.l.tls ? { tls: 'client' as const } : {}) });
      }
    }
    if (this.#js === undefined) return { total: this.#conns.size, list };
    const more = this.#js.sessions(Math.max(0, limit - list.length));
    return { total: this.#conns.size + more.total, list: [...list, ...more.list] };
  }

  activeByListener(): ReadonlyMap<string, number> {
    return this.#js === undefined ? this.#perListener : merged(this.#perListener, this.#js.activeByListener());
  }

  /**
   * Open sessions per backend, both halves. Each half balances (least_conn,
   * maxConns) on its own counts: a backend shared by listeners of both halves
   * can hold up to maxConns from each.
   */
  activeByBackend(): ReadonlyMap<BackendId, number> {
    return this.#js === undefined ? this.#active : merged(this.#active, this.#js.activeByBackend());
  }

  liveBytes(): number {
    if (this.#disposed) return 0;
    const s = this.#h.stats();
    let n = this.#js?.liveBytes() ?? 0;
    for (let i = 0; i + 2 < s.length; i += 3) n += s[i + 1]! + s[i + 2]!;
    return n;
  }

  async shutdown(timeoutMs: number): Promise<void> {
    if (this.#js !== undefined) {
      const js = this.#js;
      this.#jsListeners = [];
      await Promise.all([js.shutdown(timeoutMs), this.#shutdownNative(timeoutMs)]);
      return;
    }
    await this.#shutdownNative(timeoutMs);
  }

  async #shutdownNative(timeoutMs: number): Promise<void> {
    this.#closeListeners();
    await this.#drain.wait(() => (this.#idle() ? 0 : 1), timeoutMs);
    this.closeAllNow();
    // Let the killed connections report (access log lines with reason `shutdown`).
    await this.#drain.wait(() => (this.#idle() ? 0 : 1), 1000);
    this.dispose();
  }

  closeAllNow(): void {
    this.#js?.closeAllNow();
    this.#jsListeners = [];
    if (this.#disposed) return;
    this.#closeListeners();
    for (const c of this.#conns.values()) c.reason ??= 'shutdown';
    this.#h.closeAll();
  }

  /** End the relay thread (after the last events had a moment to arrive). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    this.#h.stop();
  }

  /** For tests: what the addon holds. */
  nativeCounts(): { connections: number; listeners: number; fds: number } {
    return this.#h.counts();
  }

  /* ---------- the routing fast path ---------- */

  /**
   * Give every listener its fast-path table, or null where JS must decide
   * each client. A new listener serves its first loop turn on the slow path:
   * the fast path would relay before JS gets a turn at all, and startup code
   * that runs right after the listeners start (signal handlers) must not be
   * outrun by a client; a listener losing its table loses it at once.
   */
  #pushRoutes(changed?: ReadonlySet<string>): void {
    if (this.#disposed) return;
    for (const l of this.#listeners.values()) {
      if (changed !== undefined && !changed.has(l.cfg.upstream)) continue;
      const table = l.routable ? this.#fastTable(l) : null;
      const sig = JSON.stringify(table);
      if (sig === l.routeSig) continue;
      l.routeSig = sig;
      this.#h.setRoute(l.id, table);
    }
  }

  #fastTable(l: NListener): NativeRouteTable | null {
    const cfg = l.cfg;
    // Policy the addon does not implement: such listeners keep the JS round trip.
    // A TLS listener's table is used when the handshake is done (TLS_READY
    // then names the backend), and the addon builds its PROXY header (with
    // the TLS fields, as buildProxyHeader); a plain one's header is built here.
    if (cfg.allow.length > 0 || cfg.deny.length > 0 || cfg.maxConnectionsPerClient > 0 || (cfg.proxyProtocol !== false && !l.tls)) return null;
    const up = this.#router.table.upstreams.get(cfg.upstream);
    if (up === undefined || up.backends.some((b) => net.isIP(b.host) === 0)) return null;
    return {
      algo: up.balance,
      connectTimeoutMs: cfg.connectTimeoutMs,
      idleMs: cfg.idleTimeoutMs,
      maxConnections: cfg.maxConnections,
      proxyProtocol: cfg.proxyProtocol === 'v1' ? 1 : cfg.proxyProtocol === 'v2' ? 2 : 0,
      backends: up.backends.map((b) => {
        const k = this.#keys.get(b.id)!;
        return { key: k.key, ip: b.host, port: b.port, weight: b.weight, maxConns: b.maxConns, backup: b.backup, usable: b.usable, idHash: k.idHash };
      }),
    };
  }

  #closeListeners(): void {
    for (const l of this.#listeners.values()) this.#h.closeListener(l.id);
    this.#listeners.clear();
  }

  #holdProcess(): void {
    if (this.#keepAlive === undefined && !this.#disposed) this.#keepAlive = setInterval(() => this.#idleCheck(), 1000);
  }

  #idleCheck(): void {
    if (this.#listeners.size === 0 && this.#conns.size === 0) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
    const now = Date.now();
    for (const [host, e] of this.#dns) if (now - e.at > DNS_TTL_MS) this.#dns.delete(host);
  }

  #bytes(): Map<number, [number, number]> {
    const out = new Map<number, [number, number]>();
    if (this.#disposed) return out;
    const s = this.#h.stats();
    for (let i = 0; i + 2 < s.length; i += 3) out.set(s[i]!, [s[i + 1]!, s[i + 2]!]);
    return out;
  }

  /**
   * Nothing open, here or in the addon: a routed client can be relaying
   * before its ACCEPT_ROUTED reached us (the event is still queued).
   */
  #idle(): boolean {
    return this.#conns.size === 0 && (this.#disposed || this.#h.counts().connections === 0);
  }

  /* ---------- events from the relay thread ---------- */

  #onEvents(ev: unknown[]): void {
    let i = 0;
    while (i < ev.length) {
      const type = ev[i] as number;
      switch (type) {
        case EV_ACCEPT:
          this.#onAccept(ev[i + 1] as number, ev[i + 2] as number, ev[i + 3] as string, ev[i + 4] as number, ev[i + 5] as string, ev[i + 6] as number);
          i += 7;
          break;
        case EV_CONNECTED:
          this.#onConnected(ev[i + 1] as number);
          i += 2;
          break;
        case EV_CONNECT_FAILED:
          this.#onConnectFailed(ev[i + 1] as number, ev[i + 2] as number);
          i += 3;
          break;
        case EV_CLOSED:
          this.#onClosed(ev[i + 1] as number, ev[i + 2] as number, ev[i + 3] as number, ev[i + 4] as number, ev[i + 5] as number, ev[i + 6] as number);
          i += 7;
          break;
        case EV_ACCEPT_ROUTED:
          this.#onAcceptRouted(ev[i + 1] as number, ev[i + 2] as number, ev[i + 3] as string, ev[i + 4] as number, ev[i + 5] as string, ev[i + 6] as number, ev[i + 7] as number);
          i += 8;
          break;
        case EV_TLS_READY:
          this.#onTlsReady(ev[i + 1] as number, { version: ev[i + 3] as string, cipher: ev[i + 4] as string, servername: ev[i + 5] as string, alpn: ev[i + 6] as string }, ev[i + 7] as number);
          i += 8;
          break;
        case EV_TLS_FAILED:
          this.#onTlsFailed(ev[i + 1] as number, ev[i + 2] as number, ev[i + 3] as number, ev[i + 4] as string);
          i += 5;
          break;
        case EV_ACCEPT_ERROR: {
          const l = this.#byId.get(ev[i + 1] as number);
          const code = errnoName(ev[i + 2] as number);
          if (l !== undefined) l.errors.report(l.cfg.name, code, code);
          i += 3;
          break;
        }
        default:
          this.#log(`native engine: unknown event type ${String(type)}; batch dropped`);
          return;
      }
    }
  }

  #onAccept(id: number, listenerId: number, clientIp: string, clientPort: number, localIp: string, localPort: number): void {
    const l = this.#byId.get(listenerId);
    if (l === undefined) {
      // Cannot happen (ids are registered before activate); never leave a client hanging.
      this.#h.reject(id);
      return;
    }
    const c: Conn = { id, l, acceptedOn: l.cfg.name, clientIp, clientPort, localIp, localPort, start: Date.now(), backend: undefined, tried: undefined, reason: undefined, detail: '', connected: false, awaitTls: false, tls: undefined };
    this.#conns.set(id, c);
    inc(this.#perListener, c.acceptedOn);
    const refused = l.admission.admit(clientIp);
    if (refused !== undefined) {
      c.reason = refused;
      this.#h.reject(id);
      return;
    }
    // The addon is handshaking with the client already: dial once it is done.
    if (l.tls) {
      c.awaitTls = true;
      return;
    }
    this.#dial(c);
  }

  /** The handshake is done; `backendKey` >= 0: the relay thread picked that backend by our table and is dialling it already (as ACCEPT_ROUTED). */
  #onTlsReady(id: number, facts: TlsSession, backendKey: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    c.tls = facts;
    if (!c.awaitTls || c.reason !== undefined) return;
    c.awaitTls = false;
    if (backendKey < 0) return this.#dial(c);
    const b = this.#byKey[backendKey];
    if (b === undefined) {
      this.#h.kill(id); // cannot happen (keys are registered before they are pushed); never leave a client hanging
      return;
    }
    c.backend = b;
    c.tried?.add(b.id); // created on the first JS dial, from c.backend, when one is needed
  }

  /** The handshake failed (CLOSED how=7 follows): logged per kind per second, the session ends `tls_failed`, as on the JS path. */
  #onTlsFailed(id: number, what: number, errno: number, code: string): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.reason !== undefined) return;
    const kind = nativeFailureKind(what, errno !== 0 ? errnoName(errno) : undefined, code);
    this.#tlsErrors.report(c.l.cfg.name, kind, c.clientIp);
    c.reason = 'tls_failed';
    c.detail = kind;
  }

  /** The relay thread picked `backendKey` by our table and is dialling it already. */
  #onAcceptRouted(id: number, listenerId: number, clientIp: string, clientPort: number, localIp: string, localPort: number, backendKey: number): void {
    const l = this.#byId.get(listenerId);
    const b = this.#byKey[backendKey];
    if (l === undefined || b === undefined) {
      // Cannot happen (ids and keys are registered before they are pushed); never leave a client hanging.
      this.#h.kill(id);
      return;
    }
    const c: Conn = { id, l, acceptedOn: l.cfg.name, clientIp, clientPort, localIp, localPort, start: Date.now(), backend: b, tried: undefined, reason: undefined, detail: '', connected: false, awaitTls: false, tls: undefined };
    this.#conns.set(id, c);
    inc(this.#perListener, c.acceptedOn);
    // Counts the client in; with a fast table there is no ACL or per-client
    // limit, and the addon checked maxConnections, but its count can trail
    // ours by the CLOSED events still in flight: then refuse as JS would.
    const refused = l.admission.admit(clientIp);
    if (refused !== undefined) {
      c.reason = refused;
      c.backend = undefined; // logged like any refused client: no backend
      this.#h.kill(id);
    }
  }

  #dial(c: Conn): void {
    // a routed connection's first backend (dialled by the relay thread) counts as tried
    const tried = (c.tried ??= new Set(c.backend !== undefined ? [c.backend.id] : []));
    const b = this.#router.pick(c.l.cfg.upstream, c.clientIp, tried, this.#active);
    if (b === undefined) {
      c.reason = tried.size > 0 ? 'connect_failed' : 'no_backend';
      this.#h.reject(c.id);
      return;
    }
    tried.add(b.id);
    c.backend = b;
    if (net.isIP(b.host) !== 0) return this.#connect(c, b, b.host);
    const hit = this.#dns.get(b.host);
    if (hit !== undefined) return this.#connect(c, b, hit.ip);
    dns.lookup(b.host).then(
      ({ address }) => {
        this.#dns.set(b.host, { ip: address, at: Date.now() });
        if (this.#conns.get(c.id) === c) this.#connect(c, b, address);
      },
      (err: NodeJS.ErrnoException) => {
        if (this.#conns.get(c.id) !== c) return;
        this.#sink.connectFailed(b.id, describe(err));
        this.#dial(c);
      },
    );
  }

  #connect(c: Conn, b: RouteBackend, ip: string): void {
    const cfg = c.l.cfg;
    const pre = cfg.proxyProtocol === false ? undefined : c.l.admission.preamble({ srcAddr: c.clientIp, srcPort: c.clientPort, dstAddr: c.localIp, dstPort: c.localPort }, c.tls);
    this.#h.connect(c.id, ip, b.port, cfg.connectTimeoutMs, cfg.idleTimeoutMs, pre, this.#keys.get(b.id)?.key ?? -1);
  }

  #onConnected(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.backend === undefined) return;
    c.connected = true;
    inc(this.#active, c.backend.id);
    this.#sink.connectOk(c.backend.id);
    this.#sink.sessionOpened(c.backend.id);
  }

  #onConnectFailed(id: number, errno: number): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.backend === undefined) return;
    const code = errnoName(errno);
    if (LOCAL_ERRORS.has(code)) {
      // Out of descriptors here: every backend would fail the same way, and none is to blame.
      c.reason = 'connect_failed';
      c.detail = `${code} (local)`;
      c.l.errors.report(c.l.cfg.name, code, code);
      this.#h.reject(id);
      return;
    }
    const msg = code === 'ETIMEDOUT' ? `connect timeout after ${c.l.cfg.connectTimeoutMs} ms` : code;
    this.#sink.connectFailed(c.backend.id, describe(Object.assign(new Error(msg), { code })));
    if (c.reason !== undefined) {
      // Killed or shut down while dialling: do not try another backend.
      this.#h.reject(id);
      return;
    }
    this.#dial(c);
  }

  #onClosed(id: number, bytesIn: number, bytesOut: number, how: number, errno: number, side: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    this.#conns.delete(id);
    let reason: EndReason = c.reason ?? 'closed';
    if (how === HOW_IDLE) reason = 'idle_timeout';
    else if (how === HOW_KILLED) reason = c.reason ?? 'killed';
    else if (how === HOW_TLS_FAILED) reason = c.reason ?? 'tls_failed';
    if (how === HOW_ERROR && errno !== 0 && c.detail === '') {
      const code = errnoName(errno);
      const who = side === 0 ? 'client' : 'backend';
      c.detail = code === 'ECONNRESET' || code === 'EPIPE' ? `${code} from ${who}` : `${who}: ${code}`;
    }
    c.l.admission.release(c.clientIp);
    dec(this.#perListener, c.acceptedOn);
    if (c.connected && c.backend !== undefined) dec(this.#active, c.backend.id);
    const rec: SessionRecord = {
      start: c.start,
      durationMs: Date.now() - c.start,
      listener: c.l.cfg.name,
      client: c.clientIp,
      clientPort: c.clientPort,
      backend: c.backend?.id ?? '',
      bytesIn,
      bytesOut,
      reason,
      detail: c.detail,
      // As the JS path: a TLS listener's session is `client` from accept on, failed handshakes included.
      ...(c.l.tls ? { tls: 'client' as const } : {}),
    };
    this.#sink.sessionClosed(rec);
    if (this.#drain.waiting) this.#drain.settled(this.#idle() ? 0 : 1);
  }
}
