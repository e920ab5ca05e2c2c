/**
 * Run keys against the operator actions: route a key by the newest mode,
 * resolve the selected backend from the newest snapshot and filter, call the
 * action, and report its result in the status line. Plain functions over a
 * context, so it is testable without rendering.
 */
import type { Key } from 'ink';
import type { ActionResult, AdminResult } from '../runtime/actions-types.js';
import { notPersisted } from '../runtime/actions.js';
import type { ConsoleSource } from '../runtime/console-source.js';
import type { BackendView, Snapshot } from '../runtime/snapshot.js';
import { confirmAnswer, filterCommand, firstKey, helpCommand, isOneKey, normalCommand, type Command, type KeyLike } from './keymap.js';
import { effectiveSelection, type UiAction, type UiState } from './reducer.js';
import { visibleBackends } from './view.js';

/** What key handling needs: newest state getters, the store's dispatch and the outside world. */
export interface KeyContext {
  /** In-process actions, or the remote source of an attached console. */
  readonly actions: ConsoleSource;
  /** The newest snapshot. */
  readonly latest: () => Snapshot;
  /** The newest UI state. */
  readonly get: () => UiState;
  readonly dispatch: (action: UiAction) => void;
  /** Take a fresh snapshot (after an action, so its effect shows at once). */
  readonly refresh: () => void;
  /** Quit (in-process: after the operator confirmed; attached: detach at once). */
  readonly onQuit: () => void;
  /** False once unmounted: late results of async actions are dropped. */
  readonly alive: () => boolean;
}

function failure(err: unknown): ActionResult {
  return { ok: false, message: err instanceof Error ? err.message : String(err) };
}

function report(ctx: KeyContext, r: ActionResult): void {
  if (!ctx.alive()) return;
  ctx.dispatch({ type: 'status', status: { text: r.message, tone: r.ok ? 'ok' : 'error' } });
  ctx.refresh();
}

function info(ctx: KeyContext, text: string): void {
  ctx.dispatch({ type: 'status', status: { text, tone: 'info' } });
}

/** A promise (a remote source's answer) rather than a result given at once. */
function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

/**
 * Actions never throw by contract; if one does anyway, the operator sees why
 * and the proxy keeps running. An in-process result is reported at once; a
 * remote one when its reply arrives.
 */
function runSync(ctx: KeyContext, f: () => ActionResult | Promise<ActionResult>): void {
  let r: ActionResult | Promise<ActionResult>;
  try {
    r = f();
  } catch (err) {
    r = failure(err);
  }
  if (isPromise(r)) return runAsync(ctx, () => r as Promise<ActionResult>);
  report(ctx, r);
}

/**
 * An admin action: its result at once, then, if the state file could not take
 * it, that failure, led by what matters so a narrow status line keeps it (the
 * event log has the whole line too).
 */
function runAdmin(ctx: KeyContext, id: string, f: () => AdminResult | Promise<AdminResult>): void {
  let r: AdminResult | Promise<AdminResult>;
  try {
    r = f();
  } catch (err) {
    r = failure(err);
  }
  if (isPromise(r)) {
    void r.then(
      (res) => runAdmin(ctx, id, () => res),
      (err: unknown) => report(ctx, failure(err)),
    );
    return;
  }
  report(ctx, r);
  void r.persisted?.then((error) => {
    if (error !== undefined) report(ctx, { ok: false, message: `${id}: ${notPersisted(error)}` });
  });
}

function runAsync(ctx: KeyContext, f: () => Promise<ActionResult>, done?: () => void): void {
  void Promise.resolve()
    .then(f)
    .then(
      (r) => report(ctx, r),
      (err: unknown) => report(ctx, failure(err)),
    )
    .finally(() => {
      if (ctx.alive()) done?.();
    });
}

/** The visible backends and the selected one, from the newest snapshot, filter and selection. */
export function currentSelection(ctx: Pick<KeyContext, 'latest' | 'get'>): { ids: string[]; selected: BackendView | undefined } {
  const ui = ctx.get();
  const visible = visibleBackends(ctx.latest(), ui.filter);
  const ids = visible.map((b) => b.id);
  const id = effectiveSelection(ui.selected, ids);
  return { ids, selected: visible.find((b) => b.id === id) };
}

/** In-process, quitting stops the proxy: ask first. Attached, it only detaches: at once. */
function askQuit(ctx: KeyContext): void {
  if (ctx.actions.attachment !== undefined) return ctx.onQuit();
  ctx.dispatch({ type: 'ask', confirm: { kind: 'quit', count: ctx.latest().totals.active } });
}

function onBackend(ctx: KeyContext, cmd: 'drain' | 'disable' | 'enable' | 'check' | 'kill', b: BackendView | undefined): void {
  if (b === undefined) return info(ctx, 'no backend selected');
  const { actions } = ctx;
  const id = b.id;
  switch (cmd) {
    case 'drain':
    case 'disable':
    case 'enable':
      return runAdmin(ctx, id, () => actions[cmd](id, 'console'));
    case 'kill':
      if (b.active === 0) return info(ctx, `${id}: no open connections to kill`);
      return ctx.dispatch({ type: 'ask', confirm: { kind: 'kill', id, count: b.active } });
    case 'check':
      ctx.dispatch({ type: 'checkStarted', id });
      info(ctx, `checking ${id}…`);
      return runAsync(ctx, () => actions.check(id, 'console'), () => ctx.dispatch({ type: 'checkFinished', id }));
  }
}

/** Run one normal-mode command. */
export function runCommand(ctx: KeyContext, cmd: Command): void {
  const { dispatch } = ctx;
  switch (cmd.type) {
    case 'move':
      return dispatch({ type: 'move', delta: cmd.delta, ids: currentSelection(ctx).ids });
    case 'jump':
      return dispatch({ type: 'jump', to: cmd.to, ids: currentSelection(ctx).ids });
    case 'scrollPanel':
      // The event log counts rows back from the newest (at the bottom); connections count from the top.
      return dispatch({ type: 'scrollPanel', delta: ctx.get().panel === 'events' ? -cmd.delta : cmd.delta });
    case 'drain':
    case 'disable':
    case 'enable':
    case 'check':
    case 'kill':
      return onBackend(ctx, cmd.type, currentSelection(ctx).selected);
    case 'reload':
      info(ctx, 'reloading config…');
      return runAsync(ctx, async () => {
        const r = await ctx.actions.reload('console');
        return { ok: r.ok, message: r.changes.length === 0 ? r.message : `${r.message} (${r.changes.join('; ')})` };
      });
    case 'standby': {
      if (ctx.actions.standby === undefined) return info(ctx, 'standby: this tcplb is too old for it');
      // The newest snapshot says whether it is in standby now: the key toggles.
      const on = ctx.latest().instance?.standby === undefined;
      return dispatch({ type: 'ask', confirm: { kind: 'standby', on } });
    }
    case 'panel':
      return dispatch({ type: 'togglePanel' });
    case 'sort':
      return dispatch({ type: 'toggleSort' });
    case 'filter':
      return dispatch({ type: 'startFilter' });
    case 'help':
      return dispatch({ type: 'openHelp' });
    case 'quit':
      return askQuit(ctx);
    case 'escape':
      // Esc first clears a message, then the applied filter.
      return dispatch(ctx.get().status !== undefined ? { type: 'clearStatus' } : { type: 'clearFilter' });
  }
}

/** Handle one key in whatever mode is newest. */
export function handleKey(ctx: KeyContext, input: string, key: KeyLike | Key): void {
  const ui = ctx.get();
  switch (ui.mode.kind) {
    case 'normal': {
      const cmd = normalCommand(input, key);
      if (cmd !== undefined) runCommand(ctx, cmd);
      return;
    }
    case 'help': {
      const c = helpCommand(input, key);
      if (c === 'close') ctx.dispatch({ type: 'closeModal' });
      else if (c === 'quit') askQuit(ctx);
      return;
    }
    case 'filter': {
      const c = filterCommand(input, key);
      if (c === undefined) return;
      if (c.type === 'apply') ctx.dispatch({ type: 'applyFilter' });
      else if (c.type === 'clear') ctx.dispatch({ type: 'clearFilter' });
      else if (c.type === 'backspace') ctx.dispatch({ type: 'filterBackspace' });
      else if (c.type === 'type') ctx.dispatch({ type: 'filterType', text: c.text });
      else askQuit(ctx);
      return;
    }
    case 'confirm': {
      const c = ui.mode.confirm;
      ctx.dispatch({ type: 'closeModal' });
      if (confirmAnswer(input, key) === 'no') return info(ctx, c.kind === 'kill' ? `kill cancelled; ${c.id} keeps its connections` : c.kind === 'standby' ? 'standby unchanged' : 'quit cancelled');
      if (c.kind === 'kill') return runSync(ctx, () => ctx.actions.kill(c.id, 'console'));
      if (c.kind === 'standby') return runAdmin(ctx, 'standby', () => ctx.actions.standby!(c.on, 'console'));
      info(ctx, `quitting: closing ${c.count} open connection${c.count === 1 ? '' : 's'}…`);
      ctx.onQuit();
    }
  }
}

/**
 * Handle what Ink delivered as one input event: one key, or the keys of one
 * read (typed ahead, `tmux send-keys -l`), each in order and routed by the
 * mode the previous key left (`K` `y` in one read: the `y` answers the
 * prompt, the keys after it go back to the table).
 */
export function handleInput(ctx: KeyContext, input: string, key: KeyLike | Key): void {
  if (isOneKey(input, key)) return handleKey(ctx, input, key);
  let rest = input;
  // A quit confirmed by an earlier key unmounts the console: the rest is dropped.
  while (rest !== '' && ctx.alive()) {
    const next = firstKey(rest, ctx.get().mode.kind === 'filter');
    handleKey(ctx, next.press.input, next.press.key);
    rest = next.rest;
  }
}
