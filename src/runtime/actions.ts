/**
 * The operator actions behind the console keys and `ctl` commands, and the
 * snapshot both of them read. One implementation, so the two can't drift.
 */
import { distance } from 'fastest-levenshtein';
import type { BackendId } from '../core/types.js';
import type { HealthScheduler } from '../health/scheduler.js';
import type { Engine } from '../core/dataplane.js';
import type { Actions, ActionResult, Actor, AdminResult, ReloadResult } from './actions-types.js';
import { displayState, type BackendState } from './backend.js';
import { explain } from './explain.js';
import { InstanceStatus, readiness, type Readiness } from './instance.js';
import { nearestExpiry, type CertBook } from './cert-status.js';
import type { EventLog } from './event-log.js';
import type { AcmeManager } from './acme.js';
import type { AcmeView, BackendView, ConfigView, InstanceView, Snapshot } from './snapshot.js';
import type { Runtime } from './store.js';

export interface ActionDeps {
  readonly runtime: Runtime;
  readonly engine: Engine & { liveBytes(): number };
  readonly health: HealthScheduler;
  readonly events: EventLog;
  readonly version: string;
  readonly engineName: string;
  /** The config file's watch state, kept by the reload machinery. */
  configView(): ConfigView;
  /** Re-read and apply the config file. */
  reload(by: Actor): Promise<ReloadResult>;
  /** Certificates in service and their reloads (`ctl certs`); without it `certs` is absent. */
  readonly certs?: CertBook;
  /** The ACME client, when the config has `acme` (it comes and goes with reloads). */
  acme?(): AcmeManager | undefined;
  /** Standby and leaving (runtime/instance.ts). @default a fresh InstanceStatus */
  readonly instance?: InstanceStatus;
  /**
   * Called after an operator action (persist the state file). The returned
   * promise, if any, settles when the save is on disk or failed.
   */
  onAdminChange?(): Promise<void> | undefined;
}

/** Rates over a sliding window of samples taken when snapshots are built. */
class Rates {
  #samples: { t: number; conns: number; bytes: number }[] = [];
  rate(now: number, conns: number, bytes: number): { connPerSec: number; bytesPerSec: number } {
    this.#samples.push({ t: now, conns, bytes });
    while (this.#samples.length > 2 && now - this.#samples[1]!.t >= 5000) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = (now - first.t) / 1000;
    if (dt < 0.5) return { connPerSec: 0, bytesPerSec: 0 };
    return { connPerSec: (conns - first.conns) / dt, bytesPerSec: (bytes - first.bytes) / dt };
  }
}

function progress(b: BackendState, rise: number, fall: number): string {
  if (b.op === 'up') return b.fails > 0 ? `fail ${b.fails}/${fall}` : `${rise}/${rise}`;
  if (b.op === 'down') return `${b.passes}/${rise}`;
  return `0/${rise}`;
}

/** How a failed save is told, in the event log, the ctl reply and the console. */
export function notPersisted(error: string): string {
  return `applied, not persisted: ${error}`;
}

/**
 * Wait for an admin result's save and fold its outcome into one result:
 * the message gains `— applied, not persisted: ERROR` when the save failed.
 * `persisted` is null when there is no state file.
 */
export async function settleAdmin(r: AdminResult): Promise<ActionResult & { persisted: boolean | null; error?: string }> {
  if (r.persisted === undefined) return { ok: r.ok, message: r.message, persisted: null };
  const error = await r.persisted;
  if (error === undefined) return { ok: r.ok, message: r.message, persisted: true };
  return { ok: r.ok, message: `${r.message} — ${notPersisted(error)}`, persisted: false, error };
}

function instanceView(name: string, s: InstanceStatus, r: Readiness): InstanceView {
  return { name, ready: r.ready, why: r.why, ...(s.standby === null ? {} : { standby: s.standby }), leaving: s.leavingUntil !== null || s.stopping };
}

export function createActions(d: ActionDeps): Actions {
  const { runtime, engine, health, events } = d;
  const instance = d.instance ?? new InstanceStatus();
  const rates = new Rates();
  const { tally } = runtime;

  function find(id: string): BackendState | ActionResult {
    const b = runtime.backend(id);
    if (b !== undefined) return b;
    const all = runtime.backends().map((x) => x.id);
    const near = all.filter((x) => distance(x, id) <= 3);
    const hint = near.length > 0 ? ` (did you mean ${near.map((x) => `"${x}"`).join(' or ')}?)` : all.length > 0 ? ` (backends: ${all.slice(0, 6).join(', ')}${all.length > 6 ? ', …' : ''})` : '';
    return { ok: false, message: `no backend "${id}"${hint}; name it as upstream/host:port` };
  }

  function record(by: Actor, backend: BackendId | undefined, text: string, ok = true): void {
    events.push({ time: Date.now(), kind: 'action', backend, ok, text: `${text} by ${by}` });
  }

  /** Start the state file save after an operator action; the result's `persisted` reports it. */
  function persist(message: string, by: Actor, verb: string, backend: BackendId | undefined, changed: boolean): AdminResult {
    // An operator's action is saved even when the state did not change: repeating
    // a drain whose save failed (disk full) is how to persist it once fixed.
    const saving = changed || by !== 'statefile' ? d.onAdminChange?.() : undefined;
    if (saving === undefined) return { ok: true, message };
    const persisted = saving.then(
      () => undefined,
      (err: Error) => {
        events.push({ time: Date.now(), kind: 'action', backend, ok: false, text: `${verb} by ${by}: ${notPersisted(err.message)}` });
        return err.message;
      },
    );
    return { ok: true, message, persisted };
  }

  function setAdmin(id: BackendId, admin: BackendState['admin'], by: Actor, verb: string): AdminResult {
    const b = find(id);
    if (!('id' in b)) return b;
    const was = b.admin;
    runtime.setAdmin(b.id, admin, by === 'statefile' ? 'statefile' : 'operator', `${verb} by ${by}`);
    // The scheduler asks the runtime who is disabled; this tells it to ask again now.
    health.refresh(b.id);
    const open = engine.activeByBackend().get(b.id) ?? 0;
    const tail =
      admin === 'drain' ? `no new connections; ${open} open continue` : admin === 'disabled' ? `out of rotation, not probed; ${open} open stay until killed` : 'back under the checks\' control';
    record(by, b.id, verb);
    const message = `${b.id} ${verb === 'enable' ? 'enabled' : verb === 'drain' ? 'draining' : 'disabled'}: ${tail}`;
    return persist(message, by, verb, b.id, was !== admin);
  }

  return {
    drain: (id, by) => setAdmin(id, 'drain', by, 'drain'),
    disable: (id, by) => setAdmin(id, 'disabled', by, 'disable'),
    enable: (id, by) => setAdmin(id, 'ready', by, 'enable'),
    async check(id, by) {
      const b = find(id);
      if (!('id' in b)) return b;
      const p = health.checkNow(b.id);
      if (p === undefined) return { ok: false, message: `${b.id}: upstream "${b.upstream}" has no active check configured` };
      record(by, b.id, 'check');
      const result = await p;
      return { ok: true, message: `${b.id}: ${result.ok ? 'pass' : 'FAIL'} ${result.status} ${result.latencyMs}ms ${result.detail}`, result };
    },
    kill(id, by) {
      const b = find(id);
      if (!('id' in b)) return b;
      const n = engine.killBackend(b.id, 'killed');
      record(by, b.id, `kill (${n} connection${n === 1 ? '' : 's'})`);
      return { ok: true, message: `${b.id}: closed ${n} open connection${n === 1 ? '' : 's'}` };
    },
    reload: (by) => d.reload(by),
    standby(on, by) {
      const changed = instance.setStandby(on, by);
      const verb = on ? 'standby on' : 'standby off';
      record(by, undefined, verb);
      const message = on
        ? `standby${changed ? '' : ' (already)'}: this instance reports not ready (tcplb-console health exits 1), so keepalived or BGP move the address away; open and new connections are still served`
        : `standby off${changed ? '' : ' (was not in standby)'}: ${readiness(runtime.config, runtime, instance).why}`;
      return persist(message, by, verb, undefined, changed);
    },
    readiness: () => readiness(runtime.config, runtime, instance),
    explain: (client, listener) => explain(runtime.config, runtime, client, listener),
    onEvent: (listener) => events.subscribe(listener),
    ...(d.certs === undefined ? {} : { certs: () => d.certs!.report(runtime.config, Date.now(), engine.listenerEngines?.(), d.acme?.()?.status()) }),
    acmeRenew(domain) {
      const m = d.acme?.();
      if (m === undefined) return Promise.resolve({ ok: false, message: 'no "acme" block in the config: nothing to renew' });
      return m.renew(domain);
    },
    snapshot(connLimit = 50): Snapshot {
      const now = Date.now();
      const cfg = runtime.config;
      const conns = engine.sessions(connLimit);
      // Open connections per backend: the engine's own counts, the ones balancing and maxConns use.
      const open = engine.activeByBackend();
      const { connPerSec, bytesPerSec } = rates.rate(now, tally.finished + conns.total, tally.finishedBytes + engine.liveBytes());
      return {
        time: now,
        version: d.version,
        pid: process.pid,
        engine: d.engineName,
        config: d.configView(),
        instance: instanceView(runtime.config.instance, instance, readiness(runtime.config, runtime, instance, now)),
        listeners: cfg.listeners.map((l) => {
          const certExpiry = nearestExpiry(l);
          return { name: l.name, listen: l.listenText, upstream: l.upstream, ...(certExpiry === undefined ? {} : { certExpiry }) };
        }),
        ...acmeView(d.acme?.()),
        totals: { active: conns.total, accepted: tally.finished + conns.total, connPerSec, bytesPerSec },
        upstreams: Object.values(cfg.upstreams).map((u) => ({
          name: u.name,
          balance: u.balance,
          check: u.check === undefined ? '' : `${u.check.type}${u.check.tls ? '+tls' : ''} every ${u.check.intervalMs / 1000}s rise ${u.check.rise} fall ${u.check.fall}`,
          backends: runtime
            .backendsOf(u.name)
            .map((b): BackendView => {
              const t = tally.backend(b.id);
              return {
                id: b.id,
                address: b.server.address,
                state: displayState(b, now),
                reason: b.admin !== 'ready' ? `${b.admin === 'drain' ? 'drained' : 'disabled'} by operator` : b.passiveUntil !== 0 ? `passive: out until ${new Date(b.passiveUntil).toISOString().slice(11, 19)}` : b.server.down ? 'down: true in config' : b.opReason,
                since: b.since,
                weight: b.server.weight,
                backup: b.server.backup,
                active: open.get(b.id) ?? 0,
                total: t.total,
                connectFailures: b.connectFailures,
                bytesIn: t.bytesIn,
                bytesOut: t.bytesOut,
                progress: u.check === undefined ? '' : progress(b, u.check.rise, u.check.fall),
                ...(b.lastProbe === undefined
                  ? {}
                  : { lastProbe: { at: b.lastProbe.at, ok: b.lastProbe.ok, status: b.lastProbe.status, latencyMs: b.lastProbe.latencyMs, detail: b.lastProbe.detail } }),
                ...(b.lastProbe?.cert === undefined
                  ? {}
                  : { cert: { daysLeft: b.lastProbe.cert.daysLeft, coversName: b.lastProbe.cert.coversName, trusted: b.lastProbe.cert.trusted, subject: b.lastProbe.cert.subject } }),
              };
            }),
        })),
        events: events.list(),
        connections: conns,
      };
    },
  };
}

/** The snapshot's `acme` field: present only with an ACME client. */
function acmeView(m: AcmeManager | undefined): { acme?: AcmeView } {
  if (m === undefined) return {};
  const a = m.status();
  return { acme: { ordering: a.ordering, failures: a.failures, lastError: a.lastError, nextAttempt: a.nextAttempt, hasCertificate: a.certificate !== null } };
}
