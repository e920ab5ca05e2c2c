/**
 * Wiring: build the runtime store, the data-plane engine, the health
 * scheduler, the logs and the operator actions from a validated config;
 * apply later configs as a diff; tear everything down. No policy lives here.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { diffConfigs } from '../config/diff.js';
import { loadConfigFile } from '../config/load.js';
import { formatIssue, type Config } from '../core/config.js';
import { formatHostPort } from '../core/types.js';
import { HealthScheduler } from '../health/scheduler.js';
import { AccessLog, createLogger, formatTransition, type Logger } from '../log/logger.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { createMetrics, startMetricsServer } from '../metrics/server.js';
import { dropStale, loadState, saveState } from '../runtime/state-file.js';
import { createEngine, type EngineChoice } from '../proxy/create-engine.js';
import type { Engine } from '../core/dataplane.js';
import { createActions } from '../runtime/actions.js';
import type { Actions, Actor, ReloadResult } from '../runtime/actions-types.js';
import { EventLog } from '../runtime/event-log.js';
import type { ConfigView } from '../runtime/snapshot.js';
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
  /** Graceful stop: stop accepting, wait up to `timeoutMs`, close the rest. */
  stop(timeoutMs?: number): Promise<void>;
  /** Close everything at once. */
  stopNow(): void;
}


/** True for 127.0.0.0/8, ::1 and localhost: endpoints there are not reachable from other hosts. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./.test(host);
}

/**
 * Check every backend host resolves; IP literals need no lookup, and on a
 * reload only hosts new since `old` (a DNS hiccup must not block every edit).
 */
async function resolveBackends(config: Config, old?: Config): Promise<string[]> {
  const problems: string[] = [];
  const known = new Set(Object.values(old?.upstreams ?? {}).flatMap((u) => u.servers.map((s) => s.host)));
  const hosts = new Map<string, string>();
  for (const up of Object.values(config.upstreams)) {
    for (const s of up.servers) if (net.isIP(s.host) === 0 && !known.has(s.host) && !hosts.has(s.host)) hosts.set(s.host, `${up.name}/${s.address}`);
  }
  await Promise.all(
    [...hosts].map(async ([host, id]) => {
      try {
        await dns.lookup(host);
      } catch (err) {
        problems.push(`server ${id}: cannot resolve host "${host}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }),
  );
  return problems;
}

export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const problems = await resolveBackends(config);
  if (problems.length > 0) throw new StartupError(problems);

  const runtime = new Runtime(config);
  let created: Awaited<ReturnType<typeof createEngine>>;
  try {
    created = await createEngine(config, runtime, (l) => logger.error(l));
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
  // HAProxy's on-marked-down shutdown-sessions: close what a dead backend still holds.
  runtime.bus.on('transition', (e) => {
    if (e.cause !== 'probe' || e.to !== 'DOWN') return;
    const up = runtime.config.upstreams[runtime.backend(e.backend)?.upstream ?? ''];
    if (up?.onMarkedDown === 'shutdown') {
      const n = engine.killBackend(e.backend, 'backend_down');
      if (n > 0) logger.warn(`${e.backend}: closed ${n} open connection${n > 1 ? 's' : ''} (onMarkedDown: shutdown)`);
    }
  });
  const health = new HealthScheduler({ onResult: (id, r, forced) => runtime.applyProbe(id, r, forced), paused: (id) => runtime.isDisabled(id) });

  let accessLog: AccessLog | undefined;
  const openAccessLog = (c: Config): void => {
    accessLog?.close();
    accessLog = c.log.access === null ? undefined : new AccessLog(c.log.access, c.log.format, (m) => logger.error(m), { onInfo: (m) => logger.info(m) });
  };
  openAccessLog(config);
  runtime.bus.on('session', (r) => accessLog?.write(r));

  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  let control: ControlServer | undefined;
  /** Release everything but the engine's sessions: one teardown for a failed start and for a stop. */
  const finish = (): void => {
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

  const metrics = createMetrics(runtime, engine);
  if (config.metrics.listen !== null) {
    const m = config.metrics.listen;
    if (!isLoopback(m.host)) logger.warn(`metrics: listening on ${formatHostPort(m.host, m.port)}, beyond loopback: anyone who reaches it can read backend names and traffic figures`);
    try {
      metricsServer = await startMetricsServer(m, metrics.registry, (msg) => logger.warn(msg));
    } catch (err) {
      throw startFailed([(err as Error).message]);
    }
  }


  let view: ConfigView = { file: config.file, watch: 'static', loadedAt: Date.now() };
  let watching = false;
  const reloadEvent = (ok: boolean, text: string): void => events.push({ time: Date.now(), kind: 'reload', ok, text });

  async function apply(next: Config, by: Actor): Promise<ReloadResult> {
    const changes = diffConfigs(runtime.config, next);
    if (changes.length === 0) {
      view = { file: next.file, watch: watching ? 'watching' : 'static', loadedAt: Date.now() };
      reloadEvent(true, `reload by ${by}: no changes`);
      return { ok: true, message: 'reloaded: no changes', changes };
    }
    const old = runtime.config;
    const problems = await resolveBackends(next, old);
    // The new routes go in between binding the new listeners and serving on them.
    const bound = problems.length > 0 ? [] : await engine.setListeners(next.listeners, () => runtime.setConfig(next));
    problems.push(...bound.filter((r) => !r.ok).map((r) => r.error ?? `listener "${r.name}" failed`));
    if (problems.length > 0) return refuse(problems.join('; '), by);
    health.sync(runtime.checkTargets());
    if (old.log.access !== next.log.access || old.log.format !== next.log.format) openAccessLog(next);
    if (old.log.level !== next.log.level) logger.setLevel(next.log.level);
    for (const c of changes) logger.info(`reload: ${c}`);
    view = { file: next.file, watch: watching ? 'watching' : 'static', loadedAt: Date.now() };
    metrics.reloaded(true);
    reloadEvent(true, `reload by ${by}: ${changes.length} change${changes.length === 1 ? '' : 's'}: ${changes.join(', ')}`);
    return { ok: true, message: `reloaded: ${changes.length} change${changes.length === 1 ? '' : 's'}`, changes };
  }

  function refuse(error: string, by: Actor): ReloadResult {
    logger.error(`reload refused: ${error} — still serving the previous config`);
    metrics.reloaded(false);
    view = { ...view, watch: 'refused', error };
    reloadEvent(false, `reload by ${by} refused: ${error}`);
    return { ok: false, message: `reload refused: ${error} — still serving the previous config`, changes: [] };
  }

  /** Reads the file again; one reload at a time (a request during one runs once after it). */
  let running: Promise<ReloadResult> | undefined;
  let again = false;
  async function reloadFile(by: Actor): Promise<ReloadResult> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      let last: ReloadResult;
      do {
        again = false;
        const res = await loadConfigFile(runtime.config.file);
        if (!res.ok) {
          const first = formatIssue(res.issues[0]!);
          const more = res.issues.length > 1 ? ` (+${res.issues.length - 1} more)` : '';
          for (const i of res.issues) logger.error(formatIssue(i));
          last = refuse(first + more, by);
        } else {
          last = await apply(res.config, by);
        }
      } while (again);
      return last;
    })().finally(() => (running = undefined));
    return running;
  }

  const actions = createActions({
    runtime,
    engine,
    health,
    events,
    version: opts.version ?? '0.0.0',
    engineName: choice.label,
    configView: () => view,
    reload: reloadFile,
    onAdminChange: () => saveOperatorState(),
  });

  // Operator states from the last run come back before the first probe, so a
  // restart does not silently put a drained server back in rotation.
  const stateFile = config.stateFile;
  let restoring = false; // while the saved states are reapplied: one save after them, not one each
  /** Save the operator states; the promise tells the action (and so ctl and the console) whether they are on disk. */
  function saveOperatorState(): Promise<void> | undefined {
    if (stateFile === null || restoring) return undefined;
    const entries = runtime
      .backends()
      .filter((b) => b.admin !== 'ready')
      .map((b) => ({ backend: b.id, admin: b.admin as 'drain' | 'disabled' }));
    const saved = saveState(stateFile, entries);
    saved.catch((err: Error) => logger.error(err.message));
    return saved;
  }
  if (stateFile !== null) {
    const { entries, warning } = loadState(stateFile);
    if (warning !== undefined) logger.warn(warning);
    const { kept, note } = dropStale(stateFile, entries, (id) => runtime.backend(id) !== undefined);
    if (note !== undefined) logger.info(note);
    restoring = true;
    for (const e of kept) {
      const r = e.admin === 'drain' ? actions.drain(e.backend, 'statefile') : actions.disable(e.backend, 'statefile');
      logger.info(`state file: ${r.message}`);
    }
    restoring = false;
    // Rewritten at once when states were reapplied or dropped: the next start reads only what is live.
    if (kept.length > 0 || note !== undefined) void saveOperatorState()?.catch(() => {}); // logged inside
  }

  if (config.control.socket !== null) {
    try {
      control = await startControlServer(config.control.socket, actions, (m) => logger.warn(m));
    } catch (err) {
      throw startFailed([(err as Error).message]);
    }
  }

  // Listeners are up: start probing (the first probe of each backend runs now).
  health.sync(runtime.checkTargets());

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
    apply,
    refuse,
    setWatching(on) {
      watching = on;
      if (view.watch !== 'refused') view = { ...view, watch: on ? 'watching' : 'static' };
    },
    async stop(timeoutMs = runtime.config.shutdownTimeoutMs) {
      if (stopped) return;
      stopped = true;
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
