/**
 * The console's UI state (selection, focus, modes, filter, status line) as a
 * pure reducer with discriminated-union actions, after gemini-cli's
 * shellReducer. Snapshot data is not in here: it arrives by polling and is
 * passed in (as the visible backend ids) where an action needs it.
 */
import type { BackendId } from '../core/types.js';

/** What a confirmation prompt is about. */
export type Confirm =
  | { readonly kind: 'kill'; readonly id: BackendId; readonly count: number }
  | { readonly kind: 'quit'; readonly count: number }
  /** Standby on (or off) for the instance (a fleet: every instance). */
  | { readonly kind: 'standby'; readonly on: boolean };

/** Which input handler is live: modal states take every key so nothing is handled twice. */
export type Mode =
  | { readonly kind: 'normal' }
  | { readonly kind: 'help' }
  | { readonly kind: 'filter'; readonly draft: string }
  | { readonly kind: 'confirm'; readonly confirm: Confirm };

/** The status line: the last action's result, or a note while one runs. */
export interface Status {
  readonly text: string;
  readonly tone: 'ok' | 'error' | 'info';
}

/** Everything the console remembers between frames. */
export interface UiState {
  /** Selected backend; kept by id so that polling and filtering don't move it. */
  readonly selected: BackendId | undefined;
  /** The bottom panel shown (and scrolled by PgUp/PgDn). */
  readonly panel: 'events' | 'connections';
  readonly sort: 'age' | 'bytes';
  /** How far the bottom panel is scrolled: rows back from the newest event, or rows down from the first connection. */
  readonly panelScroll: number;
  readonly mode: Mode;
  /** Applied filter (substring, case-insensitive); '' shows everything. */
  readonly filter: string;
  readonly status: Status | undefined;
  /** Backends with a forced check in flight (their PROBE cell says `checking…`). */
  readonly checking: readonly BackendId[];
}

/** Every change to UiState. */
export type UiAction =
  | { readonly type: 'move'; readonly delta: number; readonly ids: readonly BackendId[] }
  | { readonly type: 'jump'; readonly to: 'first' | 'last'; readonly ids: readonly BackendId[] }
  | { readonly type: 'togglePanel' }
  | { readonly type: 'toggleSort' }
  | { readonly type: 'scrollPanel'; readonly delta: number }
  | { readonly type: 'openHelp' }
  | { readonly type: 'closeModal' }
  | { readonly type: 'startFilter' }
  | { readonly type: 'filterType'; readonly text: string }
  | { readonly type: 'filterBackspace' }
  | { readonly type: 'applyFilter' }
  | { readonly type: 'clearFilter' }
  | { readonly type: 'ask'; readonly confirm: Confirm }
  | { readonly type: 'status'; readonly status: Status }
  | { readonly type: 'clearStatus' }
  | { readonly type: 'checkStarted'; readonly id: BackendId }
  | { readonly type: 'checkFinished'; readonly id: BackendId };

/** The state a console starts in. */
export const initialUiState: UiState = {
  selected: undefined,
  panel: 'events',
  sort: 'age',
  panelScroll: 0,
  mode: { kind: 'normal' },
  filter: '',
  status: undefined,
  checking: [],
};

/** The backend actually selected: the remembered one if still visible, else the first visible. */
export function effectiveSelection(selected: BackendId | undefined, ids: readonly BackendId[]): BackendId | undefined {
  return selected !== undefined && ids.includes(selected) ? selected : ids[0];
}

/** Whether `text` matches a filter: case-insensitive substring; the empty filter matches all. */
export function matchesFilter(filter: string, ...texts: readonly string[]): boolean {
  if (filter === '') return true;
  const f = filter.toLowerCase();
  return texts.some((t) => t.toLowerCase().includes(f));
}

/** Move by `delta` through `ids`, wrapping at both ends. */
function moveSelection(selected: BackendId | undefined, ids: readonly BackendId[], delta: number): BackendId | undefined {
  if (ids.length === 0) return selected;
  const cur = effectiveSelection(selected, ids);
  const i = cur === undefined ? 0 : ids.indexOf(cur);
  const n = ids.length;
  // Single steps wrap (down on the last goes to the first); page steps stop at the ends.
  const next = Math.abs(delta) === 1 ? (((i + delta) % n) + n) % n : Math.max(0, Math.min(n - 1, i + delta));
  return ids[next];
}

/** The pure transition function; returns `state` itself when nothing changes. */
export function uiReducer(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'move':
      return { ...state, selected: moveSelection(state.selected, action.ids, action.delta) };
    case 'jump':
      return action.ids.length === 0 ? state : { ...state, selected: action.to === 'first' ? action.ids[0] : action.ids[action.ids.length - 1] };
    case 'togglePanel':
      return { ...state, panel: state.panel === 'events' ? 'connections' : 'events', panelScroll: 0 };
    case 'toggleSort':
      return { ...state, sort: state.sort === 'age' ? 'bytes' : 'age', panelScroll: 0 };
    case 'scrollPanel':
      // The upper bound depends on the panel's height and content; the renderer clamps.
      return { ...state, panelScroll: Math.max(0, state.panelScroll + action.delta) };
    case 'openHelp':
      return { ...state, mode: { kind: 'help' } };
    case 'closeModal':
      return state.mode.kind === 'normal' ? state : { ...state, mode: { kind: 'normal' } };
    case 'startFilter':
      return { ...state, mode: { kind: 'filter', draft: state.filter } };
    case 'filterType':
      return state.mode.kind !== 'filter' ? state : { ...state, mode: { kind: 'filter', draft: state.mode.draft + action.text } };
    case 'filterBackspace':
      return state.mode.kind !== 'filter' ? state : { ...state, mode: { kind: 'filter', draft: [...state.mode.draft].slice(0, -1).join('') } };
    case 'applyFilter':
      return state.mode.kind !== 'filter' ? state : { ...state, filter: state.mode.draft.trim(), mode: { kind: 'normal' }, panelScroll: 0 };
    case 'clearFilter':
      return { ...state, filter: '', mode: { kind: 'normal' }, panelScroll: 0 };
    case 'ask':
      return { ...state, mode: { kind: 'confirm', confirm: action.confirm } };
    case 'status':
      return { ...state, status: action.status };
    case 'clearStatus':
      return state.status === undefined ? state : { ...state, status: undefined };
    case 'checkStarted':
      return state.checking.includes(action.id) ? state : { ...state, checking: [...state.checking, action.id] };
    case 'checkFinished':
      return { ...state, checking: state.checking.filter((id) => id !== action.id) };
  }
}
