/**
 * Key handling: one `useInput` per mode, each active only in its mode, so a
 * key is never handled twice (the `y` that answers a prompt doesn't also
 * reach the table). Keys map to commands in keymap.ts; this hook runs them
 * against the Actions and reports every result in the status line.
 */
import { useInput } from 'ink';
import { useEffect, useRef, type Dispatch } from 'react';
import type { ActionResult, Actions } from '../../runtime/actions-types.js';
import type { BackendView, Snapshot } from '../../runtime/snapshot.js';
import { confirmAnswer, filterCommand, helpCommand, normalCommand, type Command } from '../keymap.js';
import type { Confirm, UiAction, UiState } from '../reducer.js';

/** Options of {@link useConsoleKeys}: the console's current state and where to send things. */
export interface UseConsoleKeysOptions {
  readonly actions: Actions;
  readonly snapshot: Snapshot;
  /** Take a fresh snapshot (after an action). */
  readonly refresh: () => void;
  readonly ui: UiState;
  readonly dispatch: Dispatch<UiAction>;
  /** Visible (filtered) backend ids, in table order. */
  readonly ids: readonly string[];
  readonly selected: BackendView | undefined;
  readonly onQuit: () => void;
}

function failure(err: unknown): ActionResult {
  return { ok: false, message: err instanceof Error ? err.message : String(err) };
}

/** Wire the four input modes (normal, help, filter, confirm) to the reducer and the actions. */
export function useConsoleKeys(o: UseConsoleKeysOptions): void {
  const { actions, dispatch, ui } = o;
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const report = (r: ActionResult): void => {
    if (!mounted.current) return;
    dispatch({ type: 'status', status: { text: r.message, tone: r.ok ? 'ok' : 'error' } });
    o.refresh();
  };
  const runSync = (f: () => ActionResult): void => {
    let r: ActionResult;
    try {
      r = f();
    } catch (err) {
      r = failure(err);
    }
    report(r);
  };
  const ask = (confirm: Confirm): void => dispatch({ type: 'ask', confirm });
  const info = (text: string): void => dispatch({ type: 'status', status: { text, tone: 'info' } });

  const askQuit = (): void => ask({ kind: 'quit', count: o.snapshot.totals.active });

  const onBackend = (cmd: 'drain' | 'disable' | 'enable' | 'check' | 'kill'): void => {
    const b = o.selected;
    if (b === undefined) return info('no backend selected');
    const id = b.id;
    switch (cmd) {
      case 'drain':
      case 'disable':
      case 'enable':
        return runSync(() => actions[cmd](id, 'console'));
      case 'kill':
        if (b.active === 0) return info(`${id}: no open connections to kill`);
        return ask({ kind: 'kill', id, count: b.active });
      case 'check':
        dispatch({ type: 'checkStarted', id });
        info(`checking ${id}…`);
        void Promise.resolve()
          .then(() => actions.check(id, 'console'))
          .then(report, (err: unknown) => report(failure(err)))
          .finally(() => {
            if (mounted.current) dispatch({ type: 'checkFinished', id });
          });
    }
  };

  const reload = (): void => {
    info('reloading config…');
    void Promise.resolve()
      .then(() => actions.reload('console'))
      .then(
        (r) => report({ ok: r.ok, message: r.changes.length === 0 ? r.message : `${r.message} (${r.changes.join('; ')})` }),
        (err: unknown) => report(failure(err)),
      );
  };

  const run = (cmd: Command): void => {
    switch (cmd.type) {
      case 'move':
        return dispatch({ type: 'move', delta: cmd.delta, ids: o.ids });
      case 'jump':
        return dispatch({ type: 'jump', to: cmd.to, ids: o.ids });
      case 'scrollPanel':
        return dispatch({ type: 'scrollPanel', delta: cmd.delta });
      case 'drain':
      case 'disable':
      case 'enable':
      case 'check':
      case 'kill':
        return onBackend(cmd.type);
      case 'reload':
        return reload();
      case 'panel':
        return dispatch({ type: 'togglePanel' });
      case 'sort':
        return dispatch({ type: 'toggleSort' });
      case 'filter':
        return dispatch({ type: 'startFilter' });
      case 'help':
        return dispatch({ type: 'openHelp' });
      case 'quit':
        return askQuit();
      case 'escape':
        return dispatch(ui.status !== undefined ? { type: 'clearStatus' } : { type: 'clearFilter' });
    }
  };

  useInput(
    (input, key) => {
      const cmd = normalCommand(input, key);
      if (cmd !== undefined) run(cmd);
    },
    { isActive: ui.mode.kind === 'normal' },
  );

  useInput(
    (input, key) => {
      const c = helpCommand(input, key);
      if (c === 'close') dispatch({ type: 'closeModal' });
      else if (c === 'quit') askQuit();
    },
    { isActive: ui.mode.kind === 'help' },
  );

  useInput(
    (input, key) => {
      const c = filterCommand(input, key);
      if (c === undefined) return;
      if (c.type === 'apply') dispatch({ type: 'applyFilter' });
      else if (c.type === 'clear') dispatch({ type: 'clearFilter' });
      else if (c.type === 'backspace') dispatch({ type: 'filterBackspace' });
      else if (c.type === 'type') dispatch({ type: 'filterType', text: c.text });
      else askQuit();
    },
    { isActive: ui.mode.kind === 'filter' },
  );

  useInput(
    (input, key) => {
      if (ui.mode.kind !== 'confirm') return;
      const c = ui.mode.confirm;
      dispatch({ type: 'closeModal' });
      if (confirmAnswer(input, key) === 'no') return info(c.kind === 'kill' ? `kill cancelled; ${c.id} keeps its connections` : 'quit cancelled');
      if (c.kind === 'kill') return runSync(() => actions.kill(c.id, 'console'));
      info(`quitting: closing ${c.count} open connection${c.count === 1 ? '' : 's'}…`);
      o.onQuit();
    },
    { isActive: ui.mode.kind === 'confirm' },
  );
}
