/**
 * Active-check scheduling: one probe loop per checked backend. The first probe
 * of a backend runs at once (it decides up or down); later ones run every
 * `interval` from a random phase, so 500 backends don't probe in the same
 * millisecond. Probes of one backend never overlap. Results go to a sink (the
 * runtime store), which owns the verdict.
 */
import { isIP } from 'node:net';
import type { CheckConfig, UpstreamTlsConfig } from '../core/config.js';
import type { BackendId, ProbeResult } from '../core/types.js';
import { buildProxyHeader } from '../core/proxy-header.js';
import { probeFor } from './registry.js';
import type { Probe, ProbeOptions } from './types.js';

/** What to probe: a backend and its upstream's check settings. */
export interface CheckTarget {
  readonly id: BackendId;
  readonly host: string;
  /** The traffic port; `check.port` overrides it when non-zero. */
  readonly port: number;
  readonly check: CheckConfig;
  /** The upstream's `tls`: probes then run inside TLS as the traffic does, verified as it is. */
  readonly tls?: UpstreamTlsConfig;
}

export interface SchedulerOptions {
  /** The checker's name where a protocol asks for one (smtp EHLO): the instance name, read at each probe (a reload may change it). */
  helo?(): string;
  /** Called after every probe, in order per backend. */
  onResult(id: BackendId, result: ProbeResult, forced: boolean): void;
  /**
   * Is `id` paused (operator-disabled)? The runtime's answer, asked whenever a
   * probe would be scheduled: the scheduler keeps no list of its own. After
   * the answer changes, `refresh(id)` makes it act at once.
   */
  paused?: (id: BackendId) => boolean;
  /** Override for tests. */
  probeFor?: (type: CheckConfig['type']) => Probe;
  /** Phase in [0, 1) for a backend's first scheduled probe; default Math.random. */
  random?: () => number;
}

/** One backend's probe loop. */
class Loop {
  target: CheckTarget;
  #opts: SchedulerOptions;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<ProbeResult> | undefined;
  #abort: AbortController | undefined;
  /** Nothing scheduled because the backend was paused when asked (loop state, not who is disabled). */
  #parked = false;
  #stopped = false;

  constructor(target: CheckTarget, opts: SchedulerOptions) {
    this.target = target;
    this.#opts = opts;
  }

  #isPaused(): boolean {
    return this.#opts.paused?.(this.target.id) ?? false;
  }

  /** Probe now (the decisive first probe), then follow the interval from a random phase. */
  start(firstAtOnce: boolean): void {
    if (this.#stopped) return;
    if (this.#isPaused()) {
      this.#parked = true;
      return;
    }
    if (firstAtOnce) void this.#run(false, true);
    else this.#schedule(this.#phase());
  }

  #phase(): number {
    return Math.floor((this.#opts.random ?? Math.random)() * this.target.check.intervalMs);
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.#isPaused()) {
      this.#parked = true;
      return;
    }
    this.#timer = setTimeout(() => void this.#run(false, false), delay);
    this.#timer.unref();
  }

  /** Run one probe unless one is running (then share its result). */
  #run(forced: boolean, first: boolean): Promise<ProbeResult> {
    if (this.#inflight !== undefined) return this.#inflight;
    const { host, port, check } = this.target;
    const started = Date.now();
    this.#abort = new AbortController();
    const t = this.target.tls;
    // ssl_hello speaks TLS itself and MySQL has no implicit TLS: they probe as configured.
    const wrap = t !== undefined && check.type !== 'ssl_hello' && check.type !== 'mysql';
    const options: ProbeOptions = {
      timeoutMs: check.timeoutMs,
      tls: wrap || check.tls,
      servername: wrap ? t.servername || check.servername || (isIP(host) === 0 ? host : '') : check.servername,
      verify: wrap ? t.verify : check.verify,
      ...(wrap && t.ca !== null ? { ca: t.ca } : {}),
      ...(wrap && t.cert !== null && t.key !== null ? { clientCert: { cert: t.cert, key: t.key } } : {}),
      ...(wrap ? { verifyStatus: 'L6_VERIFY' as const } : {}),
      send: check.send,
      expect: check.expect,
      ...(this.#opts.helo === undefined ? {} : { helo: this.#opts.helo() }),
      // As HAProxy's check-send-proxy: a header naming the probe's own
      // connection (postfix refuses v1's `PROXY UNKNOWN`).
      preamble: check.proxyProtocol === false ? undefined : proxyPreamble(check.proxyProtocol),
    };
    const probe = (this.#opts.probeFor ?? probeFor)(check.type);
    const p = probe({ host, port: check.port || port }, options, this.#abort.signal).then((r) => {
      this.#inflight = undefined;
      if (!this.#stopped && r.status !== 'ABORTED') this.#opts.onResult(this.target.id, r, forced);
      if (!this.#stopped) {
        // Keep the period from the last probe's start; after the first probe
        // pick a random phase so loops spread over the interval.
        const next = first ? this.#phase() : Math.max(0, started + check.intervalMs - Date.now());
        if (!forced || this.#timer === undefined) this.#schedule(next);
      }
      return r;
    });
    this.#inflight = p;
    return p;
  }

  /** Probe now, outside the schedule (operator `check`). */
  checkNow(): Promise<ProbeResult> {
    return this.#run(true, false);
  }

  /** Ask again whether the backend is paused: stop probing now, or resume with a probe at once. */
  refresh(): void {
    if (this.#stopped) return;
    if (this.#isPaused()) {
      if (this.#parked) return;
      this.#parked = true;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#abort?.abort();
    } else if (this.#parked) {
      this.#parked = false;
      void this.#run(false, true);
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort?.abort();
  }
}

function proxyPreamble(v: 'v1' | 'v2') {
  return (sock: { localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number }): Buffer =>
    buildProxyHeader(v, { srcAddr: sock.localAddress ?? '', srcPort: sock.localPort ?? 0, dstAddr: sock.remoteAddress ?? '', dstPort: sock.remotePort ?? 0 });
}

function sameCheck(a: CheckTarget, b: CheckTarget): boolean {
  return a.host === b.host && a.port === b.port && JSON.stringify(a.check) === JSON.stringify(b.check) && JSON.stringify(a.tls ?? null) === JSON.stringify(b.tls ?? null);
}

/**
 * First probes started per event-loop turn. Starting 10,000 at once held the
 * loop for seconds (a connect each), so clients and `ctl` waited; in slices
 * the loop answers them between slices and the round still starts at once.
 */
export const START_SLICE = 256;

export class HealthScheduler {
  #loops = new Map<BackendId, Loop>();
  #opts: SchedulerOptions;
  /** Loops waiting for their first probe (started a slice per turn). */
  #starting: Loop[] = [];
  #startTimer: NodeJS.Immediate | undefined;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
  }

  /**
   * Make the set of loops match `targets`: new backends get a loop whose first
   * probe runs at once; removed ones stop; a backend whose check settings
   * changed is rescheduled (its verdict lives in the store and survives).
   * Paused backends (operator-disabled, `opts.paused`) get a loop that does not probe.
   */
  sync(targets: readonly CheckTarget[]): void {
    const want = new Map(targets.map((t) => [t.id, t]));
    for (const [id, loop] of this.#loops) {
      const t = want.get(id);
      if (t === undefined || !sameCheck(loop.target, t)) {
        loop.stop();
        this.#loops.delete(id);
        if (t !== undefined) {
          const fresh = new Loop(t, this.#opts);
          this.#loops.set(id, fresh);
          fresh.start(false);
        }
      }
    }
    for (const t of targets) {
      if (this.#loops.has(t.id)) continue;
      const loop = new Loop(t, this.#opts);
      this.#loops.set(t.id, loop);
      this.#starting.push(loop);
    }
    this.#startSlice();
  }

  /** Start the first probes of up to START_SLICE waiting loops; the rest on the next turn. */
  #startSlice(): void {
    this.#startTimer = undefined;
    const slice = this.#starting.splice(0, START_SLICE);
    for (const loop of slice) if (this.#loops.get(loop.target.id) === loop) loop.start(true);
    if (this.#starting.length > 0) this.#startTimer = setImmediate(() => this.#startSlice());
  }

  has(id: BackendId): boolean {
    return this.#loops.has(id);
  }

  /** Probe `id` now; undefined when it has no active check. */
  checkNow(id: BackendId): Promise<ProbeResult> | undefined {
    return this.#loops.get(id)?.checkNow();
  }

  /** The answer of `opts.paused` for `id` may have changed (operator disable/enable): stop probing, or resume at once. */
  refresh(id: BackendId): void {
    this.#loops.get(id)?.refresh();
  }

  close(): void {
    if (this.#startTimer !== undefined) clearImmediate(this.#startTimer);
    this.#startTimer = undefined;
    this.#starting = [];
    for (const l of this.#loops.values()) l.stop();
    this.#loops.clear();
  }
}
