/** keymap.ts: key -> command per mode, and the key-help list. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { confirmAnswer, filterCommand, firstKey, helpCommand, isOneKey, KEY_HELP, normalCommand, PAGE } from '../../../src/console/keymap.js';

test('normal mode: letters and special keys', () => {
  const cases: [string, object, object | undefined][] = [
    ['', { upArrow: true }, { type: 'move', delta: -1 }],
    ['', { downArrow: true }, { type: 'move', delta: 1 }],
    ['k', {}, { type: 'move', delta: -1 }],
    ['j', {}, { type: 'move', delta: 1 }],
    ['g', {}, { type: 'jump', to: 'first' }],
    ['G', { shift: true }, { type: 'jump', to: 'last' }],
    ['', { pageUp: true }, { type: 'scrollPanel', delta: -PAGE }],
    ['', { pageDown: true }, { type: 'scrollPanel', delta: PAGE }],
    ['d', {}, { type: 'drain' }],
    ['x', {}, { type: 'disable' }],
    ['e', {}, { type: 'enable' }],
    ['c', {}, { type: 'check' }],
    ['K', { shift: true }, { type: 'kill' }],
    ['r', {}, { type: 'reload' }],
    ['s', {}, { type: 'sort' }],
    ['/', {}, { type: 'filter' }],
    ['?', {}, { type: 'help' }],
    ['q', {}, { type: 'quit' }],
    ['', { tab: true }, { type: 'panel' }],
    ['', { escape: true }, { type: 'escape' }],
    ['z', {}, undefined],
    ['d', { meta: true }, undefined],
  ];
  for (const [input, key, want] of cases) assert.deepEqual(normalCommand(input, key), want, `${JSON.stringify(input)} ${JSON.stringify(key)}`);
});

test('Ctrl-C means quit (asks), never check', () => {
  assert.deepEqual(normalCommand('c', { ctrl: true }), { type: 'quit' });
  assert.deepEqual(filterCommand('c', { ctrl: true }), { type: 'quit' });
  assert.equal(helpCommand('c', { ctrl: true }), 'quit');
  assert.equal(confirmAnswer('c', { ctrl: true }), 'no');
});

test('confirm prompts are y/N', () => {
  assert.equal(confirmAnswer('y', {}), 'yes');
  assert.equal(confirmAnswer('Y', {}), 'yes');
  for (const input of ['n', 'N', '', 'q', 'yes']) assert.equal(confirmAnswer(input, {}), 'no');
  assert.equal(confirmAnswer('', { return: true }), 'no');
  assert.equal(confirmAnswer('', { escape: true }), 'no');
});

test('filter mode: Enter applies, Esc clears, Backspace deletes, text is typed (pastes too)', () => {
  assert.deepEqual(filterCommand('', { return: true }), { type: 'apply' });
  assert.deepEqual(filterCommand('', { escape: true }), { type: 'clear' });
  assert.deepEqual(filterCommand('', { backspace: true }), { type: 'backspace' });
  assert.deepEqual(filterCommand('q', {}), { type: 'type', text: 'q' });
  assert.deepEqual(filterCommand('mail2', {}), { type: 'type', text: 'mail2' });
  assert.equal(filterCommand('', { upArrow: true }), undefined);
  assert.equal(filterCommand('\u0007', {}), undefined);
});

test('help overlay: Esc or ? closes, other keys do nothing', () => {
  assert.equal(helpCommand('?', {}), 'close');
  assert.equal(helpCommand('', { escape: true }), 'close');
  assert.equal(helpCommand('d', {}), undefined);
});

test('key help lists every command key once, with unique footer ranks', () => {
  const keys = KEY_HELP.map((k) => k.keys);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(new Set(KEY_HELP.map((k) => k.rank)).size, keys.length);
  for (const k of ['d', 'x', 'e', 'c', 'K', 'r', '/', '?', 'q', 's']) {
    assert.ok(keys.includes(k), k);
    assert.notEqual(normalCommand(k, {}), undefined, k);
  }
});

test('a run of keys from one read: one key per character, a text run only where text is taken', () => {
  assert.equal(isOneKey('j', {}), true);
  assert.equal(isOneKey('', { downArrow: true }), true);
  assert.equal(isOneKey('jj', { meta: true }), true);
  assert.equal(isOneKey('😀', {}), true);
  assert.equal(isOneKey('jjd', {}), false);
  const keys = (run: string, takesText: boolean) => {
    const out = [];
    for (let rest = run; rest !== ''; ) {
      const next = firstKey(rest, takesText);
      out.push(next.press);
      rest = next.rest;
    }
    return out;
  };
  assert.deepEqual(keys('jK😀', false), [{ input: 'j', key: {} }, { input: 'K', key: {} }, { input: '😀', key: {} }]);
  assert.deepEqual(keys('a\r\t\u007F\b\u0003', false), [
    { input: 'a', key: {} },
    { input: '', key: { return: true } },
    { input: '', key: { tab: true } },
    { input: '', key: { delete: true } },
    { input: '', key: { backspace: true } },
    { input: 'c', key: { ctrl: true } },
  ]);
  assert.deepEqual(keys('web 1\rd', true), [{ input: 'web 1', key: {} }, { input: '', key: { return: true } }, { input: 'd', key: {} }]);
});
