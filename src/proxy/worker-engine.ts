/**
 * The multi-process JS engine (`workers` > 1): N cluster workers each run a
 * JsEngine on the same listening sockets (SCHED_NONE: every worker accepts
 * for itself, the kernel spreads the connections), while the primary keeps
 * the control plane (config, checks, console, logs). The primary pushes
 * routes and listener sets; workers report outcomes in batches, from which
 * this class keeps a mirror of live sessions and counts so the Engine
 * interface answers synchronously.
 *
 * Limits (`maxConnections`, `maxConnectionsPerClient`, a backend's
 * `maxConns`) are enforced by each worker on its own connections, with
 * backend `maxConns` divided between workers (rounded up).
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { ListenerConfig } from '../core/config.js';
import type { BackendId, EndReason } from '../core/types.js';
import type { BoundAddress, Engine, EngineSink, ListenerResult, PreparedListeners, RoutingTable, SessionInfo, TlsSides } from '../core/dataplane.js';
import { ticketKeys, TICKET_KEYS_ENV } from './tls-front.js';
import { toWire, type FromWorker, type ToWorker } from './worker-protocol.js';

interface Mirror {
  listener: string;
  client: string;
  backend: BackendId | '';
  start: number;
  bytesIn: number;
  bytesOut: number;
  tls: TlsSides;
}

interface WorkerState {
  readonly w: Worker;
  sessions: Map<number, Mirror>;
  perListener: Map<string, number>;
  perBackend: Map<BackendId, number>;
  total: number;
  liveBytes: number;
  stopped: boolean;
}

export interface WorkerEngineOptions {
  workers: number;
  log?: (line: string) => void;
}

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

export class WorkerEngine implements Engine {
  readonly name: string;
  readonly relaysOnMainThread = false;
  readonly #sink: EngineSink;
  readonly #n: number;
  readonly #log: (line: string) => void;
  readonly #workers = new Map<number, WorkerState>();
  #table: RoutingTable = { version: 0, upstreams: new Map() };
  #listeners: readonly ListenerConfig[] = [];
  #bound = new Map<string, BoundAddress>();
  #seq = 0;
  #replies = new Map<string, (m: Extract<FromWorker, { t: 'prepared' }>) => void>();
  #stopping = false;

  private constructor(sink: EngineSink, opts: WorkerEngineOptions) {
    this.#sink = sink;
    this.#n = opts.workers;
    this.#log = opts.log ?? (() => {});
    this.name = `js x${opts.workers} workers`;
  }

  /** Fork the workers and wait until each is ready. */
  static async start(sink: EngineSink, opts: WorkerEngineOptions): Promise<WorkerEngine> {
    const e = new WorkerEngine(sink, opts);
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [], silent: false });
    await Promise.all(Array.from({ length: opts.workers }, () => e.#fork()));
    return e;
  }

  #fork(): Promise<WorkerState> {
    // One set of session-ticket keys for all workers: a ticket resumes whichever worker accepts the next connection.
    const w = cluster.fork({ TCPLB_WORKERS: String(this.#n), [TICKET_KEYS_ENV]: ticketKeys().toString('hex') });
    const st: WorkerState = { w, sessions: new Map(), perListener: new Map(), perBackend: new Map(), total: 0, liveBytes: 0, stopped: false };
    this.#workers.set(w.id, st);
    w.on('message', (m: FromWorker) => this.#onMessage(st, m));
    w.on('exit', (code, signal) => this.#onExit(st, code, signal));
    w.on('error', (err) => this.#log(`worker ${w.process.pid}: ${err.message}`));
    return new Promise((resolve, reject) => {
      const onReady = (m: FromWorker): void => {
        if (m.t !== 'ready') return;
        w.off('message', onReady);
        w.off('exit', onEarlyExit);
        resolve(st);
      };
      const onEarlyExit = (code: number): void => reject(new Error(`relay worker exited at start (code ${code})`));
      w.on('message', onReady);
      w.once('exit', onEarlyExit);
    });
  }

  #send(st: WorkerState, m: ToWorker): void {
    if (!st.stopped && st.w.isConnected()) st.w.send(m);
  }

  #broadcast(m: ToWorker): void {
    for (const st of this.#workers.values()) this.#send(st, m);
  }

  #onMessage(st: WorkerState, m: FromWorker): void {
    switch (m.t) {
      case 'batch':
        return this.#onBatch(st, m);
      case 'prepared':
        this.#replies.get(`${st.w.id}:${m.seq}:${m.phase}`)?.(m);
        return;
      case 'log':
        return this.#log(m.line);
      case 'stopped':
        st.stopped = true;
        return;
      case 'ready':
        return;
    }
  }

  #onBatch(st: WorkerState, m: Extract<FromWorker, { t: 'batch' }>): void {
    for (const [id, n] of m.opened) for (let i = 0; i < n; i++) this.#sink.sessionOpened(id);
    for (const id of m.connectOk) this.#sink.connectOk(id);
    for (const [id, detail] of m.connectFailed) this.#sink.connectFailed(id, detail);
    for (const [id, listener, client, backend, start, tls] of m.live) {
      st.sessions.set(id, { listener, client, backend: backend as BackendId | '', start, bytesIn: 0, bytesOut: 0, tls });
    }
    for (const [id, i, o, tls] of m.bytes) {
      const s = st.sessions.get(id);
      if (s !== undefined) {
        s.bytesIn = i;
        s.bytesOut = o;
        s.tls = tls;
      }
    }
    m.closed.forEach((rec, i) => {
      st.sessions.delete(m.closedIds[i]!);
      this.#sink.sessionClosed(rec);
    });
    st.perListener = new Map(m.perListener);
    st.perBackend = new Map(m.perBackend);
    st.total = m.total;
    if (m.liveBytes >= 0) st.liveBytes = m.liveBytes;
  }

  #onExit(st: WorkerState, code: number | null, signal: string | null): void {
    this.#workers.delete(st.w.id);
    if (this.#stopping || st.stopped) return;
    // A worker died under us: its connections died with it. Say so, account
    // for the sessions we knew of, and start a replacement on the same listeners.
    this.#log(`relay worker ${st.w.process.pid} died (${signal ?? `exit code ${code}`}); ${st.total} connection${st.total === 1 ? '' : 's'} lost; starting a new one`);
    const now = Date.now();
    for (const s of st.sessions.values()) {
      this.#sink.sessionClosed({
        start: s.start,
        durationMs: now - s.start,
        listener: s.listener,
        client: s.client,
        clientPort: 0,
        backend: s.backend,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        reason: 'error',
        detail: 'relay worker died',
        ...(s.tls === '-' ? {} : { tls: s.tls }),
      });
    }
    void this.#fork()
      .then(async (fresh) => {
        this.#send(fresh, { t: 'routes', table: toWire(this.#table) });
        const seq = ++this.#seq;
        const r = await this.#ask(fresh, { t: 'prepare', seq, listeners: [...this.#listeners] }, 'p');
        if (r.ok) await this.#ask(fresh, { t: 'commit', seq }, 'c');
        else this.#log(`replacement worker could not bind: ${r.results.map((x) => x.error).join('; ')}`);
      })
      .catch((err: Error) => this.#log(`could not start a replacement worker: ${err.message}`));
  }

  #ask(st: WorkerState, m: ToWorker & { seq: number }, phase: 'p' | 'c'): Promise<Extract<FromWorker, { t: 'prepared' }>> {
    const key = `${st.w.id}:${m.seq}:${phase}`;
    return new Promise((resolve) => {
      const done = (r: Extract<FromWorker, { t: 'prepared' }>): void => {
        this.#replies.delete(key);
        st.w.off('exit', gone);
        resolve(r);
      };
      const gone = (): void => done({ t: 'prepared', seq: m.seq, phase, ok: false, results: [{ name: '*', ok: false, error: 'relay worker exited' }], bound: [] });
      this.#replies.set(key, done);
      st.w.once('exit', gone);
      this.#send(st, m);
    });
  }

  setRoutes(table: RoutingTable, changed?: ReadonlySet<string>): void {
    this.#table = table;
    this.#broadcast({ t: 'routes', table: toWire(table, changed) });
  }

  async setListeners(listeners: readonly ListenerConfig[], beforeCommit?: () => void): Promise<ListenerResult[]> {
    const p = await this.prepareListeners(listeners);
    if (!p.ok) return p.results;
    beforeCommit?.();
    p.commit();
    await this.#committed;
    return p.results;
  }

  #committed: Promise<unknown> = Promise.resolve();

  async prepareListeners(listeners: readonly ListenerConfig[]): Promise<PreparedListeners> {
    const seq = ++this.#seq;
    const states = [...this.#workers.values()];
    const replies = await Promise.all(states.map((st) => this.#ask(st, { t: 'prepare', seq, listeners: [...listeners] }, 'p')));
    const failed = replies.find((r) => !r.ok);
    if (failed !== undefined) {
      for (const st of states) this.#send(st, { t: 'abort', seq });
      return { ok: false, results: failed.results, commit() {}, abort() {} };
    }
    return {
      ok: true,
      results: replies[0]?.results ?? [],
      commit: () => {
        this.#listeners = listeners;
        this.#committed = Promise.all(states.map((st) => this.#ask(st, { t: 'commit', seq }, 'c'))).then((rs) => {
          const bound = rs.find((r) => r.bound.length > 0);
          this.#bound = new Map(bound?.bound ?? []);
        });
      },
      abort: () => {
        for (const st of states) this.#send(st, { t: 'abort', seq });
      },
    };
  }

  boundAddresses(): ReadonlyMap<string, BoundAddress> {
    return this.#bound;
  }

  killBackend(backend: BackendId, reason: EndReason): number {
    this.#broadcast({ t: 'kill', backend, reason });
    let n = 0;
    for (const st of this.#workers.values()) n += st.perBackend.get(backend) ?? 0;
    return n;
  }

  sessions(limit: number): { total: number; list: SessionInfo[] } {
    const list: SessionInfo[] = [];
    let total = 0;
    for (const st of this.#workers.values()) {
      total += st.total;
      for (const [id, s] of st.sessions) {
        if (list.length >= limit) break;
        const { tls, ...rest } = s;
        list.push({ id: st.w.id * 1e9 + id, ...rest, ...(tls === '-' ? {} : { tls }) });
      }
    }
    return { total, list };
  }

  activeByListener(): ReadonlyMap<string, number> {
    return sumMaps([...this.#workers.values()].map((s) => s.perListener));
  }

  activeByBackend(): ReadonlyMap<BackendId, number> {
    return sumMaps([...this.#workers.values()].map((s) => s.perBackend));
  }

  liveBytes(): number {
    let n = 0;
    for (const st of this.#workers.values()) n += st.liveBytes;
    return n;
  }

  /** Every worker drains (up to `timeoutMs`), reports its last records and exits. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers.values()].map((st) => new Promise<void>((resolve) => (st.w.isDead() ? resolve() : st.w.once('exit', () => resolve()))));
    this.#broadcast({ t: 'shutdown', timeoutMs });
    const limit = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs + 3000).unref());
    await Promise.race([Promise.all(exits), limit]);
    this.dispose();
  }

  closeAllNow(): void {
    this.#stopping = true;
    this.#broadcast({ t: 'closeNow' });
    // Workers that do not leave on their own within a second are stopped.
    const t = setTimeout(() => this.dispose(), 1000);
    t.unref();
  }

  /** Stop any worker still running (by its PID, through the cluster handle). */
  dispose(): void {
    this.#stopping = true;
    for (const st of this.#workers.values()) if (!st.w.isDead()) st.w.process.kill('SIGTERM');
  }
}

function sumMaps<K>(maps: ReadonlyMap<K, number>[]): Map<K, number> {
  const out = new Map<K, number>();
  for (const m of maps) for (const [k, n] of m) out.set(k, (out.get(k) ?? 0) + n);
  return out;
}
