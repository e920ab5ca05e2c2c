/** Operator states saved to the state file and restored at start-up, through the actions. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Actions, AdminResult } from '../../../src/runtime/actions-types.js';
import { operatorState } from '../../../src/runtime/operator-state.js';
import { Runtime } from '../../../src/runtime/store.js';

function runtime(): Runtime {
  const res = loadConfigText(
    `{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.2:1", "127.0.0.3:1"] } } }`,
    '/tmp/x.json5',
  );
  assert.ok(res.ok);
  return new Runtime(res.config);
}

function logger() {
  const lines: string[] = [];
  return { lines, info: (m: string) => void lines.push(`info ${m}`), warn: (m: string) => void lines.push(`warn ${m}`), error: (m: string) => void lines.push(`error ${m}`) };
}

/** Actions that apply the state and save as the real ones do; each save's promise is kept. */
function actions(r: Runtime, save: () => Promise<void> | undefined, saves: (Promise<void> | undefined)[]): Actions {
  const set = (id: string, admin: 'drain' | 'disabled', by: string): AdminResult => {
    r.setAdmin(id, admin, 'statefile', `${admin} by ${by}`);
    saves.push(save());
    return { ok: true, message: `${id} ${admin}` };
  };
  return { drain: (id, by) => set(id, 'drain', by), disable: (id, by) => set(id, 'disabled', by) } as Actions;
}

test('without a state file nothing is saved or read', () => {
  const r = runtime();
  const s = operatorState(null, r, logger());
  assert.equal(s.save(), undefined);
  s.restore(actions(r, s.save, []));
  assert.deepEqual(r.backends().map((b) => b.admin), ['ready', 'ready']);
  r.close();
});

test('restore reapplies saved states, drops stale ones, and rewrites the file once after them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-opstate-'));
  const file = path.join(dir, 'state.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ version: 1, savedAt: 0, backends: [{ backend: 'u/127.0.0.2:1', admin: 'drain' }, { backend: 'u/127.0.0.3:1', admin: 'disabled' }, { backend: 'gone/10.0.0.9:1', admin: 'drain' }] }),
  );
  const r = runtime();
  const log = logger();
  const s = operatorState(file, r, log);
  const saves: (Promise<void> | undefined)[] = [];
  s.restore(actions(r, s.save, saves));
  assert.deepEqual(r.backends().map((b) => b.admin), ['drain', 'disabled']);
  assert.deepEqual(saves, [undefined, undefined], 'no save per restored state');
  assert.ok(log.lines.some((l) => /^info state file: u\/127\.0\.0\.2:1 drain$/.test(l)));
  assert.ok(log.lines.some((l) => l.startsWith('info ') && l.includes('gone/10.0.0.9:1')), 'the stale entry is named');
  // The one save after the restore: wait for it through a later save (saves run one at a time, in order).
  await s.save();
  const back = JSON.parse(fs.readFileSync(file, 'utf8')) as { backends: unknown[] };
  assert.deepEqual(back.backends, [{ backend: 'u/127.0.0.2:1', admin: 'drain' }, { backend: 'u/127.0.0.3:1', admin: 'disabled' }]);
  r.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
