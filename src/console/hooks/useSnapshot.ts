/**
 * Poll the runtime for a snapshot on a timer. Rendering follows the timer,
 * never the data path: a burst of connections costs the proxy nothing extra,
 * and the console redraws at most 1000/intervalMs times a second.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ConsoleSource } from '../../runtime/console-source.js';
import type { Snapshot } from '../../runtime/snapshot.js';

/** What `useSnapshot` returns. */
export interface UseSnapshotReturn {
  /** The latest snapshot (the previous one is kept if taking a new one failed). */
  readonly snapshot: Snapshot;
  /** The newest snapshot even before it is rendered (for key handlers). */
  readonly latest: () => Snapshot;
  /** Take a snapshot now (after an action, so its effect shows without waiting a tick). */
  readonly refresh: () => void;
  /** Why the last poll failed, if it did; the console shows it instead of crashing the proxy. */
  readonly error: string | undefined;
}

/**
 * @param actions where snapshots come from
 * @param intervalMs poll period; @default 250
 * @param connLimit how many open connections to list; @default 200
 */
export function useSnapshot(actions: ConsoleSource, intervalMs = 250, connLimit = 200): UseSnapshotReturn {
  const [state, setState] = useState<{ snapshot: Snapshot; error: string | undefined }>(() => ({
    snapshot: actions.snapshot(connLimit),
    error: undefined,
  }));
  const ref = useRef(state.snapshot);
  const refresh = useCallback(() => {
    try {
      const snapshot = actions.snapshot(connLimit);
      ref.current = snapshot;
      setState({ snapshot, error: undefined });
    } catch (err) {
      // A throw inside a timer would be an uncaught exception: it would take the proxy down with the console.
      setState((prev) => ({ snapshot: prev.snapshot, error: err instanceof Error ? err.message : String(err) }));
    }
  }, [actions, connLimit]);
  useEffect(() => {
    const timer = setInterval(refresh, intervalMs);
    return () => clearInterval(timer);
  }, [refresh, intervalMs]);
  const latest = useCallback(() => ref.current, []);
  return { snapshot: state.snapshot, latest, refresh, error: state.error };
}
