/** reducer.ts: selection, panels, modes, filter, status; no rendering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveSelection, initialUiState, matchesFilter, uiReducer, type UiAction, type UiState } from '../../../src/console/reducer.js';

const ids = ['imaps/a:993', 'imaps/b:993', 'smtp/c:25'];
const run = (...actions: UiAction[]): UiState => actions.reduce(uiReducer, initialUiState);

test('selection moves through all tables and wraps at both ends', () => {
  assert.equal(run({ type: 'move', delta: 1, ids }).selected, 'imaps/b:993');
  assert.equal(run({ type: 'move', delta: -1, ids }).selected, 'smtp/c:25');
  const three = run(...Array.from({ length: 3 }, (): UiAction => ({ type: 'move', delta: 1, ids })));
  assert.equal(three.selected, 'imaps/a:993');
  // Page moves clamp instead of wrapping.
  assert.equal(run({ type: 'move', delta: 10, ids }).selected, 'smtp/c:25');
  assert.equal(run({ type: 'jump', to: 'last', ids }, { type: 'jump', to: 'first', ids }).selected, 'imaps/a:993');
  assert.equal(run({ type: 'move', delta: 1, ids: [] }).selected, undefined);
});

test('selection is kept by id; a vanished selection falls back to the first visible', () => {
  assert.equal(effectiveSelection('smtp/c:25', ids), 'smtp/c:25');
  assert.equal(effectiveSelection('gone/x:1', ids), 'imaps/a:993');
  assert.equal(effectiveSelection(undefined, []), undefined);
  // Moving from a vanished selection starts at the first visible row.
  assert.equal(uiReducer({ ...initialUiState, selected: 'gone/x:1' }, { type: 'move', delta: 1, ids }).selected, 'imaps/b:993');
});

test('panel and sort toggles reset the panel scroll', () => {
  const s = run({ type: 'scrollPanel', delta: 5 }, { type: 'togglePanel' });
  assert.equal(s.panel, 'connections');
  assert.equal(s.panelScroll, 0);
  assert.equal(run({ type: 'togglePanel' }, { type: 'togglePanel' }).panel, 'events');
  assert.equal(run({ type: 'toggleSort' }).sort, 'bytes');
  assert.equal(run({ type: 'scrollPanel', delta: -3 }).panelScroll, 0);
});

test('filter: type, backspace, Enter applies (trimmed), Esc clears', () => {
  const typing = run({ type: 'startFilter' }, { type: 'filterType', text: 'mail' }, { type: 'filterType', text: 'x' }, { type: 'filterBackspace' }, { type: 'filterType', text: ' ' });
  assert.deepEqual(typing.mode, { kind: 'filter', draft: 'mail ' });
  assert.equal(typing.filter, '', 'not applied while typing');
  const applied = uiReducer(typing, { type: 'applyFilter' });
  assert.equal(applied.filter, 'mail');
  assert.equal(applied.mode.kind, 'normal');
  // Editing starts from the applied filter; Esc clears it.
  const again = uiReducer(applied, { type: 'startFilter' });
  assert.deepEqual(again.mode, { kind: 'filter', draft: 'mail' });
  assert.equal(uiReducer(again, { type: 'clearFilter' }).filter, '');
  // Typing outside filter mode changes nothing.
  assert.equal(uiReducer(initialUiState, { type: 'filterType', text: 'a' }), initialUiState);
});

test('matchesFilter is a case-insensitive substring over any field', () => {
  assert.ok(matchesFilter('', 'anything'));
  assert.ok(matchesFilter('MAIL2', 'imaps/mail2.example.net:993'));
  assert.ok(matchesFilter('203.0', 'imaps', '203.0.113.7:5000'));
  assert.ok(!matchesFilter('web', 'imaps/mail2.example.net:993', 'imaps'));
});

test('modes: help and confirm open and close; status set and cleared; checks tracked', () => {
  assert.equal(run({ type: 'openHelp' }).mode.kind, 'help');
  assert.equal(run({ type: 'openHelp' }, { type: 'closeModal' }).mode.kind, 'normal');
  assert.equal(uiReducer(initialUiState, { type: 'closeModal' }), initialUiState);
  const asked = run({ type: 'ask', confirm: { kind: 'kill', id: 'imaps/a:993', count: 3 } });
  assert.deepEqual(asked.mode, { kind: 'confirm', confirm: { kind: 'kill', id: 'imaps/a:993', count: 3 } });
  const st = run({ type: 'status', status: { text: 'done', tone: 'ok' } });
  assert.equal(st.status?.text, 'done');
  assert.equal(uiReducer(st, { type: 'clearStatus' }).status, undefined);
  const checking = run({ type: 'checkStarted', id: 'x' }, { type: 'checkStarted', id: 'x' }, { type: 'checkStarted', id: 'y' });
  assert.deepEqual(checking.checking, ['x', 'y']);
  assert.deepEqual(uiReducer(checking, { type: 'checkFinished', id: 'x' }).checking, ['y']);
});
