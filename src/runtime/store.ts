/**
 * The single owner of mutable control-plane state: backends and their
 * admin/op/passive state, the session tally, and the routing table the data plane
 * reads. Probes, the engine, the operator and config reloads all send it
 * messages; it publishes typed events.
 */
import { Bus, type TransitionEvent } from '../core/events.js';
import { backendId, type BackendId, type ChangeCause } from '../core/types.js';
import type { Config, UpstreamConfig } from '../core/config.js';
import type { ProbeResult } from '../core/types.js';
import type { CheckTarget } from '../health/scheduler.js';
import { LocalErrorLog } from '../health/local-error-log.js';
import { connectFailure, timeoutPassed } from '../health/passive.js';
import { evidence, step, type Transition } from '../health/threshold.js';
import type { EngineSink, RouteBackend, RouteUpstream, RoutingTable, SessionRecord } from '../core/dataplane.js';
import { displayState, newBackendState, type BackendState } from './backend.js';
import { LayeredMap } from '../core/layered-map.js';
import { Tally } from './tally.js';

/** One probe result as the event log and console show it. */
export interface ProbeEvent {
  readonly time: number;
  readonly backend: BackendId;
  readonly result: ProbeResult;
  /** The verdict's move: `pending` while counting toward rise/fall. */
  readonly transition: Transition;
  /** Outside the schedule (operator `check`). */
  readonly forced: boolean;
}

export interface RuntimeEvents {
  transition: TransitionEvent;
  probe: ProbeEvent;
  session: SessionRecord;
  /** A new routing table; `changed` names the upstreams that differ from the last one (undefined: any may). */
  routes: RoutesEvent;
  /** Free-form operational messages for the log (level, text). */
  log: { level: 'debug' | 'info' | 'warn' | 'error'; msg: string };
}

/** A routing-table update: the table, and which upstreams changed since the previous one. */
export interface RoutesEvent {
  readonly table: RoutingTable;
  /** Upstream names whose entry is new, changed or removed; undefined after a config change (compare everything). */
  readonly changed: ReadonlySet<string> | undefined;
}

export class Runtime implements EngineSink {
  readonly bus = new Bus<RuntimeEvents>();
  /** Cumulative session figures (per backend, per listener), fed by the engine sink below. */
  readonly tally = new Tally();
  #config: Config;
  #backends = new Map<BackendId, BackendState>();
  #order: BackendId[] = [];
  #table: RoutingTable & { upstreams: LayeredMap<string, RouteUpstream> } = { version: 0, upstreams: LayeredMap.of() };
  #passiveTimers = new Map<BackendId, NodeJS.Timeout>();
  #now: () => number;
  /**
   * Upstreams whose routing entry must be rebuilt. The changes made by one
   * callback (a probe result, a reload, the operator) are published as one
   * table when it returns (a microtask: before the event loop accepts another
   * client, so no connection is routed by a table older than the state it
   * could observe). A change costs work proportional to its own upstream
   * (the table is a LayeredMap), not to the whole config.
   */
  #dirty = new Set<string>();
  #flushQueued = false;
  /** Probes that could not run for tcplb's own shortage (EMFILE...): logged as such, rate-limited. */
  #localErrors = new LocalErrorLog((msg) => this.bus.emit('log', { level: 'error', msg }));

  constructor(config: Config, opts: { now?: () => number } = {}) {
    this.#config = config;
    this.#now = opts.now ?? Date.now;
    this.#syncBackends(config);
    this.#rebuildAll();
  }

  get config(): Config {
    return this.#config;
  }

  /** The current routing table (immutable; replaced on every change; pending changes are applied first). */
  get routes(): RoutingTable {
    this.flushRoutes();
    return this.#table;
  }

  backend(id: BackendId): BackendState | undefined {
    return this.#backends.get(id);
  }

  /** Backends in config order. */
  backends(): BackendState[] {
    return this.#order.map((id) => this.#backends.get(id)!);
  }

  /** One upstream's backends in config order (empty for an unknown name). */
  backendsOf(upstream: string): BackendState[] {
    return (this.#config.upstreams[upstream]?.servers ?? []).map((s) => this.#backends.get(backendId(upstream, s.address))!);
  }

  /**
   * Switch to a new (valid) config: surviving backends keep their state,
   * counters and operator state; new ones start `unknown` (checked upstream)
   * or `up`; removed ones are dropped (their open sessions carry on in the
   * engine). An upstream that gained a check puts its backends back to
   * `unknown` until the first probe; one that lost its check puts them `up`.
   */
  setConfig(config: Config): void {
    const old = this.#config;
    const before = new Map([...this.#backends].map(([id, b]) => [id, b.server]));
    this.#config = config;
    this.#syncBackends(config);
    for (const b of this.#backends.values()) {
      const was = before.get(b.id);
      if (was === undefined || was.down === b.server.down) continue;
      // Show `down:` edits as state changes, like any other.
      const now = b.server;
      b.server = was;
      this.#change(b, 'config', now.down ? 'down: true in config' : 'down: false in config', () => {
        b.server = now;
      });
    }
    for (const b of this.#backends.values()) {
      const had = old.upstreams[b.upstream]?.check !== undefined;
      const has = config.upstreams[b.upstream]?.check !== undefined;
      if (had === has) continue;
      this.#change(b, 'config', has ? 'active check added' : 'active check removed', () => {
        b.op = has ? 'unknown' : 'up';
        b.opReason = has ? 'not probed yet' : 'no active check';
        b.opCause = 'config';
        b.passes = 0;
        b.fails = 0;
      });
    }
    this.#rebuildAll();
  }

  /** Operator state: `ready` (enable), `drain`, `disabled`. Returns false for an unknown backend. */
  setAdmin(id: BackendId, admin: BackendState['admin'], cause: ChangeCause, reason: string): boolean {
    const b = this.#backends.get(id);
    if (b === undefined) return false;
    if (b.admin === admin) return true;
    this.#change(b, cause, reason, () => {
      b.admin = admin;
    });
    // An operator's action reaches the data plane before the reply does.
    this.flushRoutes();
    return true;
  }

  /** Did the operator disable `id`? The health scheduler asks this (it does not probe such backends). */
  isDisabled(id: BackendId): boolean {
    return this.#backends.get(id)?.admin === 'disabled';
  }

  /** What the health scheduler should probe: every server of every upstream with a `check`. */
  checkTargets(): CheckTarget[] {
    const out: CheckTarget[] = [];
    for (const up of Object.values(this.#config.upstreams)) {
      if (up.check === undefined) continue;
      for (const s of up.servers) out.push({ id: backendId(up.name, s.address), host: s.host, port: s.port, check: up.check, ...(up.tls === undefined ? {} : { tls: up.tls }) });
    }
    return out;
  }

  /** Feed one probe result into the backend's rise/fall verdict. */
  applyProbe(id: BackendId, result: ProbeResult, forced = false): void {
    const b = this.#backends.get(id);
    const check = this.#config.upstreams[b?.upstream ?? '']?.check;
    if (b === undefined || check === undefined) return;
    const now = this.#now();
    // Kept as the last probe even when it says nothing of the backend: the console and
    // `ctl status` then show that tcplb itself is the problem (LOCAL_ERROR).
    b.lastProbe = { ...result, at: now };
    if (result.status === 'LOCAL_ERROR') this.#localErrors.report(id, result.detail);
    const { next, transition } = step({ state: b.op, passes: b.passes, fails: b.fails }, evidence(result), check);
    if (transition === 'changed') {
      const reason = result.ok
        ? b.op === 'unknown'
          ? `first probe passed: ${result.detail}`
          : `${check.rise} consecutive passes: ${result.detail}`
        : b.op === 'unknown'
          ? `first probe failed: ${result.detail}`
          : `${check.fall} consecutive failures: ${result.detail}`;
      this.#change(b, 'probe', reason, () => {
        b.op = next.state;
        b.opReason = reason;
        b.opCause = 'probe';
        b.passes = next.passes;
        b.fails = next.fails;
      });
    } else {
      b.passes = next.passes;
      b.fails = next.fails;
    }
    this.bus.emit('probe', { time: now, backend: id, result, transition, forced });
  }

  /* ---------- engine sink ---------- */

  connectFailed(id: BackendId, detail: string): void {
    const b = this.#backends.get(id);
    if (b === undefined) return;
    b.connectFailures++;
    this.bus.emit('log', { level: 'warn', msg: `connect to ${id} failed: ${detail}` });
    const now = this.#now();
    const d = connectFailure({ fails: b.passiveFails, until: b.passiveUntil }, now, b.server, detail);
    if (d.kind === 'counted') b.passiveFails = d.fails;
    if (d.kind !== 'out') return;
    this.#change(b, 'passive', d.reason, () => {
      b.passiveUntil = d.until;
      b.passiveFails = [];
    });
    this.#passiveTimer(b, b.server.failTimeoutMs);
  }

  /** Bring `b` back once its passive timeout ran out, unless it left the config meanwhile. */
  #passiveTimer(b: BackendState, failTimeoutMs: number): void {
    clearTimeout(this.#passiveTimers.get(b.id));
    const t = setTimeout(() => {
      this.#passiveTimers.delete(b.id);
      if (this.#backends.get(b.id) !== b) return;
      this.#change(b, 'passive', timeoutPassed(failTimeoutMs), () => {
        b.passiveUntil = 0;
      });
    }, failTimeoutMs);
    t.unref();
    this.#passiveTimers.set(b.id, t);
  }

  /** A connect worked: the run of failures is broken, counting starts again. */
  connectOk(id: BackendId): void {
    const b = this.#backends.get(id);
    if (b !== undefined && b.passiveFails.length > 0) b.passiveFails = [];
  }

  // Open connections are counted by the engine alone (activeByBackend); here only what adds up.
  sessionOpened(id: BackendId): void {
    this.tally.opened(id);
  }

  sessionClosed(rec: SessionRecord): void {
    this.tally.closed(rec);
    this.bus.emit('session', rec);
  }

  /* ---------- state changes ---------- */

  /**
   * Run `mutate` on `b`, then emit a transition if its shown state changed and
   * mark its upstream for the next routing-table update.
   */
  #change(b: BackendState, cause: ChangeCause, reason: string, mutate: () => void): void {
    const now = this.#now();
    const before = displayState(b, now);
    mutate();
    const after = displayState(b, now);
    if (before !== after) {
      b.since = now;
      this.bus.emit('transition', { time: now, backend: b.id, from: before, to: after, reason, cause });
    }
    this.#markDirty(b.upstream);
  }

  /** Create states for new backends, keep states of surviving ones, drop removed ones. */
  #syncBackends(config: Config): void {
    const next = new Map<BackendId, BackendState>();
    const order: BackendId[] = [];
    for (const up of Object.values(config.upstreams)) {
      for (const server of up.servers) {
        const id = backendId(up.name, server.address);
        const old = this.#backends.get(id);
        const st = old ?? newBackendState(up.name, id, server, up.check === undefined ? 'up' : 'unknown');
        st.server = server;
        next.set(id, st);
        order.push(id);
      }
    }
    for (const [id, t] of this.#passiveTimers) {
      if (!next.has(id)) {
        clearTimeout(t);
        this.#passiveTimers.delete(id);
      }
    }
    this.#backends = next;
    this.#order = order;
  }

  #markDirty(upstream: string): void {
    this.#dirty.add(upstream);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.flushRoutes();
      });
    }
  }

  /**
   * Apply pending changes now: rebuild the dirty upstreams' entries (the
   * others are shared with the previous table) and publish one table.
   */
  flushRoutes(): void {
    if (this.#dirty.size === 0) return;
    const changed = this.#dirty;
    this.#dirty = new Set();
    const entries = new Map<string, RouteUpstream | undefined>();
    for (const name of changed) {
      const up = this.#config.upstreams[name];
      entries.set(name, up === undefined ? undefined : this.#routeUpstream(up));
    }
    this.#publish(this.#table.upstreams.with(entries), changed);
  }

  /** Recompute the whole routing table (a new config); pending changes are part of it. */
  #rebuildAll(): void {
    this.#dirty.clear();
    this.#publish(LayeredMap.of(Object.values(this.#config.upstreams).map((up) => [up.name, this.#routeUpstream(up)] as const)), undefined);
  }

  #publish(upstreams: LayeredMap<string, RouteUpstream>, changed: ReadonlySet<string> | undefined): void {
    this.#table = { version: this.#table.version + 1, upstreams };
    this.bus.emit('routes', { table: this.#table, changed });
  }

  /** One upstream's routing entry from its backends' states. */
  #routeUpstream(up: UpstreamConfig): RouteUpstream {
    const states = up.servers.map((s) => this.#backends.get(backendId(up.name, s.address))!);
    // Until any backend of the upstream has answered a probe, try them all
    // as if there were no checks: better than refusing every client at start.
    const anyKnown = states.some((b) => b.op !== 'unknown');
    const backends: RouteBackend[] = states.map((b) => ({
      id: b.id,
      host: b.server.host,
      port: b.server.port,
      weight: b.server.weight,
      maxConns: b.server.maxConns,
      backup: b.server.backup,
      usable:
        !b.server.down &&
        b.admin === 'ready' &&
        b.passiveUntil === 0 &&
        (b.op === 'up' || (b.op === 'unknown' && !anyKnown)),
    }));
    return { name: up.name, balance: up.balance, backends };
  }

  /** Stop timers; the store is unusable afterwards. */
  close(): void {
    this.#dirty.clear();
    for (const t of this.#passiveTimers.values()) clearTimeout(t);
    this.#passiveTimers.clear();
  }
}
