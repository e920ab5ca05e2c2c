import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadState, saveState, type StateEntry } from '../../../src/runtime/state-file.js';

const MODULE = new URL('../../../src/runtime/state-file.js', import.meta.url).href;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-state-'));
}

const A: StateEntry[] = [
  { backend: 'imap/10.0.0.2:143', admin: 'drain' },
  { backend: 'smtp/[::1]:25', admin: 'disabled' },
];

test('save then load round-trips, with version and savedAt', async () => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  await saveState(file, A);
  assert.deepEqual(loadState(file), { entries: A });
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(raw.version, 1);
  assert.ok(Math.abs(Date.parse(raw.savedAt) - Date.now()) < 5000);
  await saveState(file, []);
  assert.deepEqual(loadState(file), { entries: [] });
  assert.deepEqual(fs.readdirSync(dir), ['tcplb.state'], 'no tmp file left behind');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a missing file is an empty state without warning', () => {
  assert.deepEqual(loadState(path.join(os.tmpdir(), 'tcplb-no-such-dir', 'x.state')), { entries: [] });
});

test('corrupt, partial or foreign files give [] and a warning', () => {
  const dir = tmp();
  const file = path.join(dir, 's');
  const cases: [string, RegExp][] = [
    ['', /is empty/],
    ['{"version":1,"savedAt":"2024-01-01T00:00:00Z","backends":[{"backend":"imap/a:1","adm', /is corrupt/],
    ['\u0000\u0000\u0000', /is corrupt/],
    ['[]', /not a tcplb state file/],
    ['{"version":2,"backends":[]}', /unsupported version 2/],
    ['{"version":1}', /no "backends" list/],
  ];
  for (const [text, re] of cases) {
    fs.writeFileSync(file, text);
    const r = loadState(file);
    assert.deepEqual(r.entries, [], text);
    assert.match(r.warning ?? '', re);
    assert.match(r.warning ?? '', /starting without saved operator states/);
  }
  fs.rmSync(file);
  fs.mkdirSync(file);
  assert.match(loadState(file).warning ?? '', /unreadable \(EISDIR\)/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('invalid entries are skipped with a warning; duplicates keep the last', () => {
  const dir = tmp();
  const file = path.join(dir, 's');
  const backends = [A[0], { backend: 'x/y:1', admin: 'ready' }, null, { backend: '', admin: 'drain' }, { backend: 'imap/10.0.0.2:143', admin: 'disabled' }];
  fs.writeFileSync(file, JSON.stringify({ version: 1, backends }));
  const r = loadState(file);
  assert.deepEqual(r.entries, [{ backend: 'imap/10.0.0.2:143', admin: 'disabled' }]);
  assert.match(r.warning ?? '', /ignored 3 invalid entries/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('concurrent saves are serialised, coalesced, and end with the last state', async (t) => {
  const dir = tmp();
  const file = path.join(dir, 's');
  const states = Array.from({ length: 50 }, (_, i): StateEntry[] => Array.from({ length: i + 1 }, (_, j) => ({ backend: `u/10.0.0.${j}:${i}`, admin: j % 2 ? 'drain' : 'disabled' })));
  let writing = 0;
  let overlap = false;
  const realOpen = fsp.open;
  const realRename = fsp.rename;
  const renames = t.mock.method(fsp, 'rename', async (from: string, to: string) => {
    await new Promise((r) => setTimeout(r, 5)); // slow disk: later saves pile up meanwhile
    writing--;
    return realRename(from, to);
  });
  t.mock.method(fsp, 'open', (...a: Parameters<typeof fsp.open>) => {
    if (String(a[0]).includes('.tmp-') && ++writing > 1) overlap = true;
    return realOpen(...a);
  });
  const input = states.map((s) => [...s]);
  const all = input.map((s) => saveState(file, s));
  input[49]!.length = 0; // the caller's array changing after the call does not matter
  await Promise.all(all);
  t.mock.restoreAll();
  assert.deepEqual(loadState(file), { entries: states[49] });
  assert.equal(overlap, false, 'no two writes at once');
  assert.equal(renames.mock.callCount(), 2, 'the first save, then one for the whole burst');
  // after the burst, a new save still goes through
  await saveState(file, A);
  assert.deepEqual(loadState(file).entries, A);
  assert.deepEqual(fs.readdirSync(dir), ['s']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a failed save rejects and the next save still works', async () => {
  const dir = tmp();
  const file = path.join(dir, 'sub', 's');
  await assert.rejects(saveState(file, A), /cannot save state file .*ENOENT/);
  fs.mkdirSync(path.join(dir, 'sub'));
  await saveState(file, A);
  assert.deepEqual(loadState(file).entries, A);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('SIGKILL at random moments never leaves an unreadable file', async () => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  const child = `
    const { saveState } = await import(${JSON.stringify(MODULE)});
    const file = ${JSON.stringify(file)};
    for (let i = 0; ; i++) {
      const n = 200 + (i % 7) * 300;
      await saveState(file, Array.from({ length: n }, (_, j) => ({ backend: 'up' + i + '/10.0.' + (j >> 8) + '.' + (j & 255) + ':143', admin: 'drain' })));
      if (i === 0) process.stdout.write('saved\\n');
    }`;
  for (let round = 0; round < 20; round++) {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
    // Odd rounds: kill as soon as it saved once (mid-loop); even rounds: at any moment, start-up included.
    if (round % 2 === 1) await new Promise((r) => p.stdout!.once('data', r));
    else p.stdout!.resume();
    await new Promise((r) => setTimeout(r, Math.random() * (round % 2 ? 30 : 120)));
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
    fs.writeFileSync(`${file}.tmp-4194303`, '{"version":1,"backends":[{"backe'); // a torn tmp of a dead writer
    const r = loadState(file);
    assert.equal(r.warning, undefined, `round ${round}: ${r.warning}`);
    if (fs.existsSync(file)) {
      const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.equal(doc.version, 1);
      assert.ok(r.entries.length >= 200, `round ${round}: a whole state (${r.entries.length} entries)`);
      assert.ok(r.entries.every((e) => e.backend.startsWith(r.entries[0]!.backend.split('/')[0] + '/')), 'one save, not a mix');
    } else {
      assert.ok(round === 0, `round ${round}: the file vanished`);
    }
  }
  // Tmp files of the killed writers don't disturb loading, and the next writer sweeps them.
  await saveState(file, A);
  assert.deepEqual(loadState(file), { entries: A });
  assert.deepEqual(fs.readdirSync(dir), ['tcplb.state']);
  fs.rmSync(dir, { recursive: true, force: true });
});
