/**
 * Wiring: construct the runtime store, the data-plane engine, the health
 * scheduler, the logs, the metrics and control endpoints, the operator
 * actions and the reloader from a validated config, connect them, and tear
 * them down. Each policy lives with its subject: reload in
 * runtime/reload.ts, onMarkedDown in runtime/marked-down.ts, passive health
 * in health/passive.ts, saved operator states in runtime/operator-state.ts,
 * the backend host check in config/backend-hosts.ts.
 */
import { isLoopback } from '../config/address.js';
import { unresolvedBackendHosts } from '../config/backend-hosts.js';
import type { Config } from '../core/config.js';
import { formatHostPort } from '../core/types.js';
import { HealthScheduler } from '../health/scheduler.js';
import { AccessLog, createLogger, formatTransition, type Logger } from '../log/logger.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { createMetrics, startMetricsServer } from '../metrics/server.js';
import { createEngine, type EngineChoice } from '../proxy/create-engine.js';
import { loadNative } from '../proxy/native-binding.js';
import type { Engine } from '../core/dataplane.js';
import { createActions } from '../runtime/actions.js';
import { CertBook } from '../runtime/cert-status.js';
import { AcmeManager } from '../runtime/acme.js';
import type { Actions, Actor, ReloadResult } from '../runtime/actions-types.js';
import { EventLog } from '../runtime/event-log.js';
import { followMarkedDown } from '../runtime/marked-down.js';
import { InstanceStatus, readiness } from '../runtime/instance.js';
import { operatorState } from '../runtime/operator-state.js';
import { createReloader } from '../runtime/reload.js';
import { Runtime } from '../runtime/store.js';
import { StartupError } from '../core/errors.js';

export interface AppOptions {
  /** Operational log; default: stderr at the config's level. */
  logger?: Logger;
  version?: string;
}

export interface App {
  readonly runtime: Runtime;
  readonly engine: Engine;
  /** Which engine runs and why. */
  readonly engineChoice: EngineChoice;
  readonly logger: Logger;
  readonly health: HealthScheduler;
  readonly events: EventLog;
  readonly actions: Actions;
  /** The Prometheus registry (served at metrics.listen when set). */
  readonly metrics: ReturnType<typeof createMetrics>;
  /** Port the metrics endpoint bound, when it runs. */
  metricsPort(): number | undefined;
  /** The access log in use (it changes when a reload changes `log`). */
  accessLog(): AccessLog | undefined;
  /** Validate `next` and apply it as a diff; all or nothing. */
  apply(next: Config, by: Actor): Promise<ReloadResult>;
  /** Record a refused reload (bad file) so the console header and `ctl status` show it. */
  refuse(error: string, by: Actor): ReloadResult;
  /** Set whether a file watcher runs (shown in the header). */
  setWatching(on: boolean): void;
  /** Standby and leaving: what readiness (`tcplb-console health`) reads besides the backends. */
  readonly instance: InstanceStatus;
  /**
   * The first half of a graceful leave (SIGTERM with leaveDelay): report not
   * ready now, keep accepting for `delayMs` so keepalived or BGP move the
   * address first; resolves after the delay, or at once when `cancel` fires.
   */
  leave(delayMs: number, cancel?: AbortSignal): Promise<void>;
  /** Graceful stop: stop accepting, wait up to `timeoutMs`, close the rest. */
  stop(timeoutMs?: number): Promise<void>;
  /** Close everything at once. */
  stopNow(): void;
}


export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const problems = await unresolvedBackendHosts(config);
  if (problems.length > 0) throw new StartupError(problems);

  const runtime = new Runtime(config);
  let created: Awaited<ReturnType<typeof createEngine>>;
  try {
    // The data plane logs problems, and one good thing: an ACME challenge answered (which member the CA reached).
    created = await createEngine(config, runtime, (l) => (l.includes(': answered ACME ') ? logger.info(l) : logger.error(l)));
  } catch (err) {
    runtime.close();
    throw new StartupError([(err as Error).message]);
  }
  const { engine, choice } = created;
  logger.info(`engine: ${choice.why}`);
  const events = new EventLog();
  events.follow(runtime);
  runtime.bus.onError = (err) => logger.error(`internal: ${(err as Error).stack ?? String(err)}`);
  runtime.bus.on('routes', (e) => engine.setRoutes(e.table, e.changed));
  runtime.bus.on('transition', (e) => (e.to === 'UP' ? logger.info : logger.warn)(formatTransition(e)));
  runtime.bus.on('log', (e) => logger[e.level](e.msg));
  engine.setRoutes(runtime.routes);
  runtime.bus.on('probe', (e) => {
    if (e.transition !== 'unchanged' || !e.result.ok) {
      logger.debug(`probe ${e.backend} ${e.result.status} ${e.result.latencyMs} ms: ${e.result.detail}`);
    }
  });
  followMarkedDown(runtime, engine, (m) => logger.warn(m));
  const health = new HealthScheduler({
    onResult: (id, r, forced) => runtime.applyProbe(id, r, forced),
    paused: (id) => runtime.isDisabled(id),
    helo: () => runtime.config.instance,
  });

  let accessLog: AccessLog | undefined;
  const openAccessLog = (c: Config): void => {
    accessLog?.close();
    accessLog = c.log.access === null ? undefined : new AccessLog(c.log.access, c.log.format, (m) => logger.error(m), { onInfo: (m) => logger.info(m) });
  };
  openAccessLog(config);
  runtime.bus.on('session', (r) => accessLog?.write(r));

  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  let control: ControlServer | undefined;
  let acme: AcmeManager | undefined;
  /** Release everything but the engine's sessions: one teardown for a failed start and for a stop. */
  const finish = (): void => {
    acme?.close();
    void metricsServer?.close();
    void control?.close();
    health.close();
    runtime.close();
    accessLog?.close();
    engine.dispose?.();
  };
  /** A start that cannot complete closes what it opened and says why. */
  const startFailed = (problems: string[]): StartupError => {
    engine.closeAllNow();
    finish();
    return new StartupError(problems);
  };

  const results = await engine.setListeners(config.listeners);
  const failed = results.filter((r) => !r.ok).map((r) => r.error ?? `listener "${r.name}" failed`);
  if (failed.length > 0) throw startFailed(failed);

  const instance = new InstanceStatus();
  const metrics = createMetrics(runtime, engine, { ready: () => readiness(runtime.config, runtime, instance).ready, acme: () => acme?.status() });
  if (config.metrics.listen !== null) {
    const m = config.metrics.listen;
    if (!isLoopback(m.host)) logger.warn(`metrics: listening on ${formatHostPort(m.host, m.port)}, beyond loopback: anyone who reaches it can read backend names and traffic figures`);
    try {
      metricsServer = await startMetricsServer(m, metrics.registry, (msg) => logger.warn(msg));
    } catch (err) {
      throw startFailed([(err as Error).message]);
    }
  }

  const certs = new CertBook(config);
  const reloader = createReloader({
    runtime,
    engine,
    health,
    events,
    logger,
    reopenAccessLog: openAccessLog,
    reloaded: (ok) => {
      metrics.reloaded(ok);
      if (ok) certs.applied(runtime.config);
      else certs.refused(runtime.config);
      if (ok) followAcme(runtime.config);
    },
  });
  /** The ACME client follows the config's `acme` block: started, updated, stopped by reloads (docs/tls.md#acme). */
  const followAcme = (c: Config): void => {
    if (c.acme === undefined) {
      acme?.close();
      acme = undefined;
      return;
    }
    if (acme !== undefined) return acme.update(c.acme);
    acme = new AcmeManager(c.acme, {
      log: logger,
      // A stored certificate reaches the listeners as any changed certificate file does: by a reload.
      issued: async () => {
        if (runtime.config.file === '') return;
        const r = await reloader.reloadFile('acme');
        if (!r.ok) logger.warn(`acme: the new certificate is stored but the reload was refused: ${r.message}`);
      },
    });
    acme.start();
  };
  const saved = operatorState(config.stateFile, runtime, logger, instance);
  const actions = createActions({
    runtime,
    engine,
    health,
    events,
    version: opts.version ?? '0.0.0',
    engineName: choice.label,
    configView: reloader.view,
    reload: reloader.reloadFile,
    onAdminChange: saved.save,
    instance,
    certs,
    acme: () => acme,
  });
  // Operator states from the last run come back before the first probe.
  saved.restore(actions);

  if (config.control.socket !== null) {
    try {
      // The addon names ctl's callers (SO_PEERCRED) whichever engine relays.
      const native = loadNative();
      const peerCredentials = (native.ok ? native.binding.peerCredentials : undefined) ?? null;
      control = await startControlServer(config.control.socket, actions, (m) => logger.warn(m), { peerCredentials });
    } catch (err) {
      throw startFailed([(err as Error).message]);
    }
  }

  // Listeners are up: start probing (the first probe of each backend runs now).
  health.sync(runtime.checkTargets());
  // And answering ACME challenges: the first order (when storage has no certificate) can start.
  followAcme(config);

  let stopped = false;
  return {
    runtime,
    engine,
    engineChoice: choice,
    logger,
    health,
    events,
    actions,
    accessLog: () => accessLog,
    metrics,
    metricsPort: () => metricsServer?.port,
    apply: reloader.apply,
    refuse: reloader.refuse,
    setWatching: reloader.setWatching,
    instance,
    leave(delayMs, cancel) {
      instance.leavingUntil = Date.now() + delayMs;
      return new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          cancel?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, delayMs);
        cancel?.addEventListener('abort', done);
      });
    },
    async stop(timeoutMs = runtime.config.shutdownTimeoutMs) {
      if (stopped) return;
      stopped = true;
      instance.stopping = true;
      await engine.shutdown(timeoutMs);
      finish();
    },
    stopNow() {
      engine.closeAllNow();
      if (!stopped) {
        stopped = true;
        finish();
      }
    },
  };
}
