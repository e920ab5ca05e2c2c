/**
 * The UI reducer, applied eagerly. Ink renders after a key event
 * asynchronously (tens of ms on a busy host), so a key handler reading
 * rendered state could act on a stale selection: `↓` then `d` typed fast
 * would drain the backend above the one the operator meant. Here the pure
 * reducer runs at dispatch time and `get()` always answers the newest state;
 * React state only drives rendering.
 */
import { useCallback, useRef, useState } from 'react';
import { initialUiState, uiReducer, type UiAction, type UiState } from '../reducer.js';

/** What `useUiStore` returns. */
export interface UseUiStoreReturn {
  /** The state of the frame being rendered. */
  readonly ui: UiState;
  /** The newest state, including dispatches not rendered yet. */
  readonly get: () => UiState;
  /** Apply an action now (stable identity). */
  readonly dispatch: (action: UiAction) => void;
}

/** A reducer store whose newest state is readable synchronously. */
export function useUiStore(initial: UiState = initialUiState): UseUiStoreReturn {
  const [ui, setUi] = useState(initial);
  const ref = useRef(initial);
  const dispatch = useCallback((action: UiAction) => {
    const next = uiReducer(ref.current, action);
    if (next === ref.current) return;
    ref.current = next;
    setUi(next);
  }, []);
  const get = useCallback(() => ref.current, []);
  return { ui, get, dispatch };
}
