import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dropStale, loadState, MAX_STATE_BYTES, saveState, type StateEntry } from '../../../src/runtime/state-file.js';

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
  assert.match(loadState(file).warning ?? '', /is not a regular file \(a directory\)/);
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

// Defect 3: the tmp file of a save must never be written through a planted symlink or file.

test('a symlink planted at the old predictable tmp name is not written through; the file is 0600', async () => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  fs.symlinkSync(victim, `${file}.tmp-${process.pid}`);
  await saveState(file, A);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the victim is unchanged');
  assert.ok(fs.lstatSync(file).isFile(), 'the state file is a regular file, not the planted symlink');
  assert.deepEqual(loadState(file), { entries: A });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'owner-only, like the tmp file it was');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a symlink or file planted at the very tmp name a save draws is skipped, never written through', async (t) => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  // Make the "random" part predictable, as if an attacker guessed it: the first
  // two draws hit a planted symlink and a planted file, the third is free.
  const real = crypto.randomBytes;
  const draws = [Buffer.alloc(8, 0xaa), Buffer.alloc(8, 0xbb)];
  t.mock.method(crypto, 'randomBytes', (n: number) => draws.shift() ?? real(n));
  const name = (b: number): string => `${file}.tmp-${process.pid}-${b.toString(16).repeat(8)}`;
  fs.symlinkSync(victim, name(0xaa));
  fs.writeFileSync(name(0xbb), 'planted\n');
  await saveState(file, A);
  t.mock.restoreAll();
  assert.equal(draws.length, 0, 'both planted names were drawn');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the victim behind the symlink is unchanged');
  assert.equal(fs.readFileSync(name(0xbb), 'utf8'), 'planted\n', 'the planted file is unchanged');
  assert.ok(fs.lstatSync(name(0xaa)).isSymbolicLink(), 'the planted symlink is left alone');
  assert.deepEqual(loadState(file), { entries: A });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('names used by earlier saves are not reused: symlinks planted at all of them stay unwritten', async (t) => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  const used: string[] = [];
  const realOpen = fsp.open;
  t.mock.method(fsp, 'open', (...a: Parameters<typeof fsp.open>) => {
    if (String(a[0]).includes('.tmp-')) used.push(String(a[0]));
    return realOpen(...a);
  });
  for (let i = 0; i < 5; i++) await saveState(file, A);
  for (const n of used) fs.symlinkSync(victim, n);
  for (let i = 0; i < 5; i++) await saveState(file, [A[0]!]);
  t.mock.restoreAll();
  assert.equal(used.length, 10);
  assert.equal(new Set(used).size, 10, 'ten saves, ten different tmp names');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.deepEqual(loadState(file), { entries: [A[0]] });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a full disk (ENOSPC on write) rejects with the error, keeps the old file and leaves no tmp file', async (t) => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  await saveState(file, A);
  const realOpen = fsp.open;
  t.mock.method(fsp, 'open', async (...a: Parameters<typeof fsp.open>) => {
    const fh = await realOpen(...a);
    if (String(a[0]).includes('.tmp-')) {
      t.mock.method(fh, 'writeFile', async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      });
    }
    return fh;
  });
  await assert.rejects(saveState(file, []), /^Error: cannot save state file .*tcplb\.state: ENOSPC: no space left on device/);
  t.mock.restoreAll();
  assert.deepEqual(loadState(file), { entries: A }, 'the previous state is intact');
  assert.deepEqual(fs.readdirSync(dir), ['tcplb.state']);
  fs.rmSync(dir, { recursive: true, force: true });
});

// Defect 9: a warning names the path once and never quotes what the path points to.

test('warnings never quote the file, and name the path once', () => {
  const dir = tmp();
  const file = path.join(dir, 's');
  const secret = path.join(dir, 'secret');
  fs.symlinkSync(secret, file);
  const cases: [string, RegExp][] = [
    ['SECRET-TOKEN-4242 not json', /is corrupt \(not valid JSON\)/],
    ['{"SECRET-TOKEN-4242": tru', /is corrupt \(not valid JSON\)/],
    ['{"SECRET-TOKEN-4242": 1,,}', /is corrupt \(not valid JSON at character \d+\)/],
    ['{"version":"SECRET-TOKEN-4242","backends":[]}', /has unsupported version \(expected 1\)/],
    ['{"version":4242,"backends":[]}', /has unsupported version 4242 \(expected 1\)/],
    [JSON.stringify({ version: 1, backends: [{ backend: 'SECRET-TOKEN-\u001b[2J', admin: 'drain' }, { backend: 'x'.repeat(600), admin: 'drain' }] }), /ignored 2 invalid entries/],
  ];
  for (const [text, re] of cases) {
    fs.writeFileSync(secret, text);
    const w = loadState(file).warning ?? '';
    assert.match(w, re, text);
    assert.doesNotMatch(w, /SECRET|xxxx/, `the file's content leaked into: ${w}`);
    assert.equal(w.split(file).length - 1, 1, `the path once: ${w}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// Defect 10: bounded reading, no blocking on special files.

test('a FIFO, /dev/zero or an oversized file is refused at once, without reading it', () => {
  const dir = tmp();
  const fifo = path.join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const zero = path.join(dir, 'zero');
  fs.symlinkSync('/dev/zero', zero);
  const big = path.join(dir, 'big');
  fs.writeFileSync(big, '{"version":1,"backends":[');
  fs.truncateSync(big, MAX_STATE_BYTES + 1);
  // In a child with a deadline: reading a FIFO without a writer, or /dev/zero, would hang the test runner itself.
  const script = `
    const { loadState } = await import(${JSON.stringify(MODULE)});
    const out = {};
    for (const f of ${JSON.stringify([fifo, zero, big])}) {
      const t0 = performance.now();
      out[f] = { ...loadState(f), ms: performance.now() - t0 };
    }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000, encoding: 'utf8' });
  assert.equal(r.status, 0, `the loader hung or crashed (signal ${r.signal}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Record<string, { entries: unknown[]; warning: string; ms: number }>;
  assert.match(out[fifo]!.warning, /is not a regular file \(a named pipe \(FIFO\)\); starting without saved operator states/);
  assert.match(out[zero]!.warning, /is not a regular file \(a character device\)/);
  assert.match(out[big]!.warning, /is too large \(4,194,305 bytes, at most 4,194,304\)/);
  for (const f of [fifo, zero, big]) {
    assert.deepEqual(out[f]!.entries, []);
    assert.ok(out[f]!.ms < 100, `${f}: ${out[f]!.ms} ms`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a save that would exceed the size cap is refused (the next start could not read it)', async () => {
  const dir = tmp();
  const file = path.join(dir, 's');
  const host = 'h'.repeat(480);
  const many = Array.from({ length: 10_000 }, (_, i): StateEntry => ({ backend: `u/${host}${i}:143`, admin: 'drain' }));
  await assert.rejects(saveState(file, many), /cannot save state file .*10000 entries make \d+ bytes, over the 4194304-byte limit/);
  await saveState(file, many.slice(0, 1000)); // well under the cap: fine
  assert.equal(loadState(file).entries.length, 1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('stale entries are summarised in one line with a count, however many', () => {
  const n = 50_000; // about what fits under the size cap
  const entries = Array.from({ length: n + 1 }, (_, i): StateEntry => ({ backend: i === n ? 'live/10.0.0.1:1' : `gone/10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:143`, admin: i % 2 ? 'disabled' : 'drain' }));
  const r = dropStale('/var/lib/tcplb/s', entries, (id) => id.startsWith('live/'));
  assert.deepEqual(r.kept, [{ backend: 'live/10.0.0.1:1', admin: 'drain' }]);
  assert.equal(r.note, 'state file /var/lib/tcplb/s: 50,000 entries for backends no longer in the config dropped (gone/10.0.0.0:143 drain, gone/10.0.0.1:143 disabled, gone/10.0.0.2:143 drain, …)');
  assert.equal(dropStale('/s', [A[0]!], () => false).note, 'state file /s: 1 entry for a backend no longer in the config dropped (imap/10.0.0.2:143 drain)');
  assert.deepEqual(dropStale('/s', A, () => true), { kept: A });
});

test('standby is saved with the operator states and read back; a damaged standby is dropped with a warning (serving is the safe default)', async () => {
  const dir = tmp();
  const file = path.join(dir, 'tcplb.state');
  await saveState(file, A, { by: 'ctl (user alice, pid 42)', since: 1700000000000 });
  assert.deepEqual(loadState(file), { entries: A, standby: { by: 'ctl (user alice, pid 42)', since: 1700000000000 } });
  await saveState(file, A);
  assert.deepEqual(loadState(file), { entries: A }, 'standby off: the field goes');
  fs.writeFileSync(file, JSON.stringify({ version: 1, backends: [], standby: { by: 'x\u0007', since: 'soon' } }));
  const r = loadState(file);
  assert.equal(r.standby, undefined);
  assert.match(r.warning!, /ignored 1 invalid entry/);
  fs.rmSync(dir, { recursive: true, force: true });
});
