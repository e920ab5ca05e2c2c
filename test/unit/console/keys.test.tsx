/** <App/> keys -> operator actions: each calls the right action with the selected id and 'console', and shows its result. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { App } from '../../../src/console/App.js';
import { fakeActions, renderAt, tick, until } from '../../fixtures/snapshot.js';

const STATUS = 21; // status line index at 80x24

async function mount(t: { after(fn: () => void): void }, opts: { checkMs?: number } = {}) {
  const actions = fakeActions(undefined, opts);
  let quits = 0;
  const r = await renderAt(<App actions={actions} onQuit={() => quits++} />, 80, 24);
  t.after(() => r.unmount());
  const status = (): string => r.lines()[STATUS]!.trimEnd();
  return { r, actions, status, quits: () => quits };
}

test('d drains the selected backend (after moving down), by console, and shows the result', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('j');
  await until(() => r.lines().some((l) => l.startsWith('› mail3')), 'second backend selected');
  r.stdin.write('\u001B[B'); // arrow down
  await until(() => r.lines().some((l) => l.startsWith('› 10.0.0.21:25')), 'moved across upstream tables');
  r.stdin.write('d');
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls, [{ name: 'drain', id: 'smtp/10.0.0.21:25', by: 'console' }]);
  await until(() => status() === 'smtp/10.0.0.21:25 draining: no new connections', 'result in the status line');
  await until(() => r.lines().some((l) => /^› 10\.0\.0\.21:25 +DRAINING/.test(l)), 'state updated at once');
});

test('d whose save fails: the status line says "applied, not persisted"', async (t) => {
  const { r, actions, status } = await mount(t);
  const plain = actions.drain;
  actions.drain = (id, by) => ({ ...plain(id, by), persisted: new Promise((res) => setTimeout(() => res('cannot save state file /s: ENOSPC'), 50)) });
  r.stdin.write('d');
  await until(() => actions.calls.length === 1, 'drain called');
  await until(() => status().startsWith('imaps/mail2.example.net:993 draining: no new connections'), 'applied at once');
  await until(() => status().startsWith('imaps/mail2.example.net:993: applied, not persisted: cannot save state file'), 'then the failed save');
});

test('x disables and e enables the selected backend', async (t) => {
  const { r, actions } = await mount(t);
  r.stdin.write('x');
  await until(() => actions.calls.length === 1, 'disable');
  r.stdin.write('e');
  await until(() => actions.calls.length === 2, 'enable');
  assert.deepEqual(actions.calls.map((c) => [c.name, c.id, c.by]), [
    ['disable', 'imaps/mail2.example.net:993', 'console'],
    ['enable', 'imaps/mail2.example.net:993', 'console'],
  ]);
});

test('K asks with the open-connection count and kills only after y', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('K');
  await until(() => status() === 'Kill 5 open connections to imaps/mail2.example.net:993? y/N', 'kill prompt');
  r.stdin.write('n');
  await until(() => status().startsWith('kill cancelled'), 'cancelled');
  assert.equal(actions.calls.length, 0);
  r.stdin.write('K');
  await until(() => status().startsWith('Kill 5'), 'kill prompt again');
  r.stdin.write('j'); // any other key cancels, and is not also a move
  await until(() => status().startsWith('kill cancelled'), 'cancelled by another key');
  assert.ok(r.lines().some((l) => l.startsWith('› mail2')));
  r.stdin.write('K');
  await until(() => status().startsWith('Kill 5'), 'kill prompt a third time');
  r.stdin.write('y');
  await until(() => actions.calls.length === 1, 'kill called');
  assert.deepEqual(actions.calls, [{ name: 'kill', id: 'imaps/mail2.example.net:993', by: 'console' }]);
  await until(() => status() === 'imaps/mail2.example.net:993: closed 5 open connections', 'kill result');
});

test('K on a backend without open connections says so and asks nothing', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('G'); // web2.internal: 0 active
  await until(() => r.lines().some((l) => l.startsWith('› web2')), 'last backend');
  r.stdin.write('K');
  await until(() => status() === 'https/web2.internal:443: no open connections to kill', 'note');
  assert.equal(actions.calls.length, 0);
});

test('q shows the open-connection count and calls onQuit only after y; Ctrl-C behaves like q', async (t) => {
  const { r, status, quits } = await mount(t);
  r.stdin.write('q');
  await until(() => status() === 'Quit? 12 open connections will be closed. y/N', 'quit prompt');
  r.stdin.write('\r'); // Enter takes the default: No
  await until(() => status() === 'quit cancelled', 'cancelled');
  assert.equal(quits(), 0);
  r.stdin.write('\u0003');
  await until(() => status().startsWith('Quit? 12'), 'Ctrl-C asks too');
  await tick(); // proving a negative: no quit yet
  assert.equal(quits(), 0);
  r.stdin.write('y');
  await until(() => quits() === 1, 'onQuit called');
  await until(() => status().startsWith('quitting'), 'quitting note');
});

test('c checks now: checking… in place, then the result in the status line', async (t) => {
  const { r, actions, status } = await mount(t, { checkMs: 150 });
  r.stdin.write('c');
  await until(() => r.lines().some((l) => /^› mail2\S+ +UP +checking…/.test(l)), 'checking… in the PROBE cell');
  assert.equal(status(), 'checking imaps/mail2.example.net:993…');
  await until(() => status() === 'imaps/mail2.example.net:993: pass L7_OK 7ms * OK', 'check result');
  assert.deepEqual(actions.calls, [{ name: 'check', id: 'imaps/mail2.example.net:993', by: 'console' }]);
  await until(() => !r.lines().some((l) => l.includes('checking…')), 'PROBE cell back');
});

test('r reloads and shows the ReloadResult message with its changes', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('r');
  await until(() => status() === 'config.json5 reloaded (+listener smtps 0.0.0.0:465)', 'reload result');
  assert.deepEqual(actions.calls, [{ name: 'reload', by: 'console' }]);
});

test('Esc clears the status line back to the selected backend', async (t) => {
  const { r, status } = await mount(t);
  r.stdin.write('x');
  await until(() => status().endsWith('disabled'), 'result');
  r.stdin.write('\u001B');
  await until(() => status().startsWith('imaps/mail2.example.net:993 DISABLED since'), 'selected backend line');
});

test('fast typing: each key acts on the newest state, not on the last drawn frame', async (t) => {
  const { r, actions, status } = await mount(t);
  // Written back to back: Ink has not re-rendered between them.
  r.stdin.write('j');
  r.stdin.write('\u001B[B');
  r.stdin.write('d');
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls[0], { name: 'drain', id: 'smtp/10.0.0.21:25', by: 'console' });
  // A mode switch and a key for the new mode in one go: the Esc still closes the help.
  r.stdin.write('?');
  r.stdin.write('\u001B');
  await tick(50); // the frame below is the same before '?' and after Esc: nothing to wait on until both are handled
  await until(() => r.lines()[3]!.includes('BACKEND'), 'help closed again');
  r.stdin.write('K');
  r.stdin.write('n');
  await until(() => status().startsWith('kill cancelled'), 'prompt answered');
  assert.equal(actions.calls.length, 1);
});

test('PgDn/PgUp scroll the connection list down and up', async (t) => {
  const { r } = await mount(t);
  r.stdin.write('\t');
  await until(() => r.lines().some((l) => l.includes('CLIENT')), 'connections panel');
  const first = (): string => r.lines().find((l) => l.includes(' → '))!;
  assert.match(first(), /^203\.0\.113\.10:/);
  r.stdin.write('\u001B[6~'); // PgDn
  await until(() => /^203\.0\.113\.1[1-9]:/.test(first()), 'scrolled down');
  r.stdin.write('\u001B[5~'); // PgUp
  await until(() => /^203\.0\.113\.10:/.test(first()), 'back at the top');
});

// Keys that arrive in one read (typed ahead over a slow ssh link, `tmux send-keys -l`) reach
// the handler as one string: each must act, in order, in the mode the previous key left.

test('keys in one read: jjd moves twice and drains the third row', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('jjd');
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls, [{ name: 'drain', id: 'smtp/10.0.0.21:25', by: 'console' }]);
  await until(() => status() === 'smtp/10.0.0.21:25 draining: no new connections', 'result in the status line');
  await until(() => r.lines().some((l) => /^› 10\.0\.0\.21:25 +DRAINING/.test(l)), 'the third row selected and draining');
});

test('keys in one read: jjjk ends on the third row', async (t) => {
  const { r, actions } = await mount(t);
  r.stdin.write('jjjk');
  await until(() => r.lines().some((l) => l.startsWith('› 10.0.0.21:25')), 'third row selected');
  r.stdin.write('d');
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls, [{ name: 'drain', id: 'smtp/10.0.0.21:25', by: 'console' }]);
});

test('keys in one read with an arrow in the middle: the escape sequence stays one key', async (t) => {
  const { r, actions } = await mount(t);
  r.stdin.write('j\u001B[Bjd'); // down, down (arrow), down, drain: the fourth row
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls, [{ name: 'drain', id: 'smtp/10.0.0.22:25', by: 'console' }]);
  await until(() => r.lines().some((l) => l.startsWith('› 10.0.0.22:25')), 'the fourth row selected');
});

test('keys in one read: Ky answers the kill prompt, the keys after it go to the table', async (t) => {
  const { r, actions, status, quits } = await mount(t);
  r.stdin.write('Kyj');
  await until(() => actions.calls.length === 1, 'kill called');
  assert.deepEqual(actions.calls, [{ name: 'kill', id: 'imaps/mail2.example.net:993', by: 'console' }]);
  await until(() => status() === 'imaps/mail2.example.net:993: closed 5 open connections', 'kill result');
  await until(() => r.lines().some((l) => l.startsWith('› mail3')), 'the j after the answer moved');
  r.stdin.write('qn'); // the n answers the quit prompt only
  await until(() => status() === 'quit cancelled', 'quit cancelled');
  r.stdin.write('j\u0003'); // Ctrl-C in a run still asks to quit
  await until(() => status().startsWith('Quit? 12'), 'quit prompt');
  assert.ok(r.lines().some((l) => l.startsWith('› 10.0.0.21:25')));
  assert.equal(quits(), 0);
  assert.equal(actions.calls.length, 1);
});

test('keys in one read: a filter typed with its Enter applies, and the next key acts on the filtered table', async (t) => {
  const { r, actions, status } = await mount(t);
  r.stdin.write('/mail3x\u007F\rd'); // a typo and Backspace too
  await until(() => actions.calls.length === 1, 'drain called');
  assert.deepEqual(actions.calls, [{ name: 'drain', id: 'imaps/mail3.example.net:993', by: 'console' }]);
  await until(() => status() === 'imaps/mail3.example.net:993 draining: no new connections', 'drain result');
  assert.match(r.lines()[22]!, /^filter "mail3" │/);
  assert.ok(!r.lines().some((l) => /^[ ›] 10\.0\.0\.21:25/.test(l)), 'smtp rows filtered out');
});
