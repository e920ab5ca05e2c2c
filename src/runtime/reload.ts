/**
 * Reload: apply a new config to the running balancer as a diff, all or
 * nothing, and re-read the config file one reload at a time. The sequence
 * (docs/reload.md): diff; check new backend host names resolve; bind the new
 * listeners, install the new routes, then serve on them (two phases: a bind
 * that fails leaves nothing half-applied, and a client a new listener
 * accepts meets the new routes); resync the health
 * checks; reopen the access log and set the log level if they changed; log,
 * count and record the reload. A refused reload changes nothing and says why.
 *
 * The engine, the health scheduler, the access log and the metrics live
 * above this folder: they come in as `ReloadDeps`.
 */
import { diffConfigs } from '../config/diff.js';
import { unresolvedBackendHosts } from '../config/backend-hosts.js';
import { loadConfigFile } from '../config/load.js';
import { formatIssue, type Config, type LoadResult } from '../core/config.js';
import type { Engine } from '../core/dataplane.js';
import type { HealthScheduler } from '../health/scheduler.js';
import type { Logger } from '../log/logger.js';
import type { Actor, ReloadResult } from './actions-types.js';
import type { EventLog } from './event-log.js';
import type { ConfigView } from './snapshot.js';
import type { Runtime } from './store.js';

export interface ReloadDeps {
  readonly runtime: Runtime;
  readonly engine: Pick<Engine, 'setListeners'>;
  readonly health: Pick<HealthScheduler, 'sync'>;
  readonly events: Pick<EventLog, 'push'>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error' | 'setLevel'>;
  /** Open the access log `next` asks for (its destination or format changed). */
  reopenAccessLog(next: Config): void;
  /** Told of each reload, applied (true) or refused (false): the metrics count them. */
  reloaded?(ok: boolean): void;
  /** Problems with `next`'s backend host names new since `old` (default: DNS lookups). */
  checkHosts?(next: Config, old: Config): Promise<string[]>;
  /** Read and validate the config file (default: loadConfigFile). */
  load?(file: string): Promise<LoadResult>;
}

export interface Reloader {
  /** Apply `next` (valid) as a diff; all or nothing. */
  apply(next: Config, by: Actor): Promise<ReloadResult>;
  /** Record a refused reload (bad file) so the console header and `ctl status` show it. */
  refuse(error: string, by: Actor): ReloadResult;
  /** Re-read the config file and apply it; one reload at a time (see `oneAtATime`). */
  reloadFile(by: Actor): Promise<ReloadResult>;
  /** The config file as the console header and `ctl status` show it. */
  view(): ConfigView;
  /** Set whether a file watcher runs (shown in the header). */
  setWatching(on: boolean): void;
}

/**
 * Serialise `run`: a call while one runs gets that run's promise and makes
 * it run once more when done, with the first caller's argument. A burst of
 * requests (an editor writing a file three times) costs at most one extra
 * run, and every caller's answer comes from a run that started after its
 * request, so it reflects the file as it was asked about.
 */
export function oneAtATime<A, R>(run: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  let running: Promise<R> | undefined;
  let again = false;
  return (arg) => {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      let last: R;
      do {
        again = false;
        last = await run(arg);
      } while (again);
      return last;
    })().finally(() => (running = undefined));
    return running;
  };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function createReloader(d: ReloadDeps): Reloader {
  const { runtime, engine, health, events, logger } = d;
  const checkHosts = d.checkHosts ?? ((next, old) => unresolvedBackendHosts(next, old));
  const load = d.load ?? loadConfigFile;
  let view: ConfigView = { file: runtime.config.file, watch: 'static', loadedAt: Date.now() };
  let watching = false;
  const record = (ok: boolean, text: string): void => events.push({ time: Date.now(), kind: 'reload', ok, text });

  async function apply(next: Config, by: Actor): Promise<ReloadResult> {
    const changes = diffConfigs(runtime.config, next);
    if (changes.length === 0) {
      view = { file: next.file, watch: watching ? 'watching' : 'static', loadedAt: Date.now() };
      record(true, `reload by ${by}: no changes`);
      return { ok: true, message: 'reloaded: no changes', changes };
    }
    const old = runtime.config;
    const problems = await checkHosts(next, old);
    // The new routes go in between binding the new listeners and serving on them.
    const bound = problems.length > 0 ? [] : await engine.setListeners(next.listeners, () => runtime.setConfig(next));
    problems.push(...bound.filter((r) => !r.ok).map((r) => r.error ?? `listener "${r.name}" failed`));
    if (problems.length > 0) return refuse(problems.join('; '), by);
    health.sync(runtime.checkTargets());
    if (old.log.access !== next.log.access || old.log.format !== next.log.format) d.reopenAccessLog(next);
    if (old.log.level !== next.log.level) logger.setLevel(next.log.level);
    for (const c of changes) logger.info(`reload: ${c}`);
    view = { file: next.file, watch: watching ? 'watching' : 'static', loadedAt: Date.now() };
    d.reloaded?.(true);
    record(true, `reload by ${by}: ${plural(changes.length, 'change')}: ${changes.join(', ')}`);
    return { ok: true, message: `reloaded: ${plural(changes.length, 'change')}`, changes };
  }

  function refuse(error: string, by: Actor): ReloadResult {
    logger.error(`reload refused: ${error} — still serving the previous config`);
    d.reloaded?.(false);
    view = { ...view, watch: 'refused', error };
    record(false, `reload by ${by} refused: ${error}`);
    return { ok: false, message: `reload refused: ${error} — still serving the previous config`, changes: [] };
  }

  const reloadFile = oneAtATime(async (by: Actor): Promise<ReloadResult> => {
    const res = await load(runtime.config.file);
    if (res.ok) {
      // Not a reason to refuse (a certificate expiring soon), but worth a line each time.
      for (const w of res.warnings ?? []) logger.warn(formatIssue(w));
      return apply(res.config, by);
    }
    const first = formatIssue(res.issues[0]!);
    const more = res.issues.length > 1 ? ` (+${res.issues.length - 1} more)` : '';
    for (const i of res.issues) logger.error(formatIssue(i));
    return refuse(first + more, by);
  });

  return {
    apply,
    refuse,
    reloadFile,
    view: () => view,
    setWatching(on) {
      watching = on;
      if (view.watch !== 'refused') view = { ...view, watch: on ? 'watching' : 'static' };
    },
  };
}
