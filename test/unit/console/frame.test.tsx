/** The 80x24 frame over the realistic fake snapshot: layout, states, widths. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { App } from '../../../src/console/App.js';
import { fakeActions, renderAt } from '../../fixtures/snapshot.js';

test('80x24 frame', async () => {
  const actions = fakeActions();
  const r = await renderAt(<App actions={actions} onQuit={() => {}} />, 80, 24);
  const lines = r.lines();
  console.log(lines.join('\n'));
  for (const l of lines) assert.ok(l.length <= 80, l);
  r.unmount();
});
