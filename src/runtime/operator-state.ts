/**
 * Operator states (drain, disable) across restarts: saved to the state file
 * after each operator action, reapplied at start-up before the first probe,
 * so a restart does not silently put a drained server back in rotation.
 * The file format and its atomic writes are in state-file.ts.
 */
import type { Logger } from '../log/logger.js';
import type { Actions } from './actions-types.js';
import type { InstanceStatus } from './instance.js';
import { dropStale, loadState, saveState } from './state-file.js';
import type { Runtime } from './store.js';

export interface OperatorState {
  /**
   * Save the current operator states; the promise tells the action (and so
   * ctl and the console) whether they are on disk. Undefined without a state
   * file, and while `restore` runs (it saves once, after all of them).
   */
  save(): Promise<void> | undefined;
  /** Reapply the saved states through `actions` (logged, event `statefile`). */
  restore(actions: Actions): void;
}

type Log = Pick<Logger, 'info' | 'warn' | 'error'>;

/** The operator states of `runtime` (and the instance's standby), kept in `path` (null: not kept). */
export function operatorState(path: string | null, runtime: Runtime, logger: Log, instance?: InstanceStatus): OperatorState {
  let restoring = false;

  function save(): Promise<void> | undefined {
    if (path === null || restoring) return undefined;
    const entries = runtime
      .backends()
      .filter((b) => b.admin !== 'ready')
      .map((b) => ({ backend: b.id, admin: b.admin as 'drain' | 'disabled' }));
    const saved = saveState(path, entries, instance?.standby ?? null);
    saved.catch((err: Error) => logger.error(err.message));
    return saved;
  }

  function restore(actions: Actions): void {
    if (path === null) return;
    const { entries, warning, standby } = loadState(path);
    if (warning !== undefined) logger.warn(warning);
    if (standby !== undefined && instance !== undefined) {
      // A planned handover survives a restart: the address must not come back on its own.
      instance.standby = standby;
      logger.warn(`state file: in standby since ${new Date(standby.since).toISOString()} (by ${standby.by}): reporting not ready until ctl standby off`);
    }
    const { kept, note } = dropStale(path, entries, (id) => runtime.backend(id) !== undefined);
    if (note !== undefined) logger.info(note);
    restoring = true;
    try {
      for (const e of kept) {
        const r = e.admin === 'drain' ? actions.drain(e.backend, 'statefile') : actions.disable(e.backend, 'statefile');
        logger.info(`state file: ${r.message}`);
      }
    } finally {
      restoring = false;
    }
    // Rewritten at once when states were reapplied or dropped: the next start reads only what is live.
    if (kept.length > 0 || note !== undefined) void save()?.catch(() => {}); // logged inside
  }

  return { save, restore };
}
