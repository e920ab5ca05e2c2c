/**
 * Wiring: build the runtime store, the data-plane engine and the logs from a
 * validated config, and tear them down. No policy lives here.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { Config } from '../config/types.js';
import { HealthScheduler } from '../health/scheduler.js';
import { AccessLog, createLogger, formatTransition, type Logger } from '../log/logger.js';
import { JsEngine } from '../proxy/engine.js';
import { Runtime } from '../runtime/store.js';

export interface AppOptions {
  /** Operational log; default: stderr at the config's level. */
  logger?: Logger;
}

export interface App {
  readonly runtime: Runtime;
  readonly engine: JsEngine;
  readonly logger: Logger;
  readonly accessLog: AccessLog | undefined;
  readonly health: HealthScheduler;
  /** Graceful stop: stop accepting, wait up to `timeoutMs`, close the rest. */
  stop(timeoutMs?: number): Promise<void>;
  /** Close everything at once. */
  stopNow(): void;
}

/** Thrown by startApp with one line per problem (a listener in use, an unresolvable backend). */
export class StartupError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

/** Check every backend host resolves; IP literals need no lookup. */
async function resolveBackends(config: Config): Promise<string[]> {
  const problems: string[] = [];
  const hosts = new Map<string, string>();
  for (const up of Object.values(config.upstreams)) {
    for (const s of up.servers) if (net.isIP(s.host) === 0 && !hosts.has(s.host)) hosts.set(s.host, `${up.name}/${s.address}`);
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
  const engine = new JsEngine(runtime, { log: (l) => logger.error(l) });
  runtime.bus.onError = (err) => logger.error(`internal: ${(err as Error).stack ?? String(err)}`);
  runtime.bus.on('routes', (t) => engine.setRoutes(t));
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
  const health = new HealthScheduler({ onResult: (id, r, forced) => runtime.applyProbe(id, r, forced) });

  let accessLog: AccessLog | undefined;
  if (config.log.access !== null) {
    accessLog = new AccessLog(config.log.access, config.log.format, (m) => logger.error(m));
    const al = accessLog;
    runtime.bus.on('session', (r) => al.write(r));
  }

  const results = await engine.setListeners(config.listeners);
  const failed = results.filter((r) => !r.ok).map((r) => r.error ?? `listener "${r.name}" failed`);
  if (failed.length > 0) {
    engine.closeAllNow();
    health.close();
    runtime.close();
    accessLog?.close();
    throw new StartupError(failed);
  }

  // Listeners are up: start probing (the first probe of each backend runs now).
  health.sync(runtime.checkTargets());

  let stopped = false;
  const finish = (): void => {
    health.close();
    runtime.close();
    accessLog?.close();
  };
  return {
    runtime,
    engine,
    logger,
    accessLog,
    health,
    async stop(timeoutMs = config.shutdownTimeoutMs) {
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
