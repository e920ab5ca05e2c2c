/**
 * watchConfig follows the config file through the ways editors and tools
 * save it, and ignores the files beside it (an access log or state file in
 * the same folder is written on every connection).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { watchConfig } from '../../../src/cli/watch.js';
import { sleep, waitFor } from '../../helpers/wait.js';

/** Resolves when `count()` reaches n, fails after ms naming the count seen. */
function reloads(count: () => number, n: number, ms: number, what: string): Promise<number> {
  return waitFor(count, { what: `${what} (${n} reloads)`, timeoutMs: ms, until: (k) => k >= n });
}

test('the config watcher fires once per save: in place, by rename (vim), after delete + create; never for a busy sibling file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-watch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, '{}');
  let fired = 0;
  const w = watchConfig(file, () => fired++, 50);
  t.after(() => w.close());
  await w.ready; // chokidar's first scan: a save before it would be the initial state

  fs.writeFileSync(file, '{ a: 1 }');
  await reloads(() => fired, 1, 3000, 'write in place');

  fs.writeFileSync(file + '.swp', '{ a: 2 }');
  fs.renameSync(file + '.swp', file);
  await reloads(() => fired, 2, 3000, 'save by rename');

  fs.writeFileSync(file, '{ a: 3 }'); // the watch follows the new inode
  await reloads(() => fired, 3, 3000, 'write after a rename');

  fs.unlinkSync(file);
  await sleep(400); // a poll (500 ms) may see the file gone; a delete fires nothing to wait for
  const afterDelete = fired;
  fs.writeFileSync(file, '{ a: 4 }');
  await reloads(() => fired, afterDelete + 1, 3000, 'create after delete');

  const before = fired;
  const log = fs.openSync(path.join(dir, 'access.log'), 'a');
  for (let i = 0; i < 200; i++) {
    fs.writeSync(log, `line ${i}\n`);
    if (i % 20 === 0) await sleep(10); // pacing: a log written over time
  }
  fs.closeSync(log);
  fs.writeFileSync(path.join(dir, 'state.json'), '{}');
  await sleep(500); // proving a negative: a poll would have fired by now
  assert.equal(fired, before, 'writes to other files in the folder fired the config watcher');
});

test('a symlinked config is followed when the link is re-pointed, also to an older file of the same size (a rollback)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-watch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const older = path.join(dir, 'release-1.json5');
  const newer = path.join(dir, 'release-2.json5');
  fs.writeFileSync(older, '{ port: 8081 }');
  await sleep(50); // the scenario: a newer mtime for the newer release
  fs.writeFileSync(newer, '{ port: 8080 }'); // same size, newer mtime
  const link = path.join(dir, 'config.json5');
  fs.symlinkSync('release-2.json5', link);
  let fired = 0;
  const w = watchConfig(link, () => fired++, 50);
  t.after(() => w.close());
  await w.ready; // chokidar's first scan (see above)

  fs.unlinkSync(link);
  fs.symlinkSync('release-1.json5', link);
  await reloads(() => fired, 1, 3000, 'link re-pointed to the older release');

  fs.writeFileSync(older, '{ port: 8083 }'); // the watch follows the link's new target
  await reloads(() => fired, 2, 3000, 'edit of the new target');

  const before = fired;
  fs.writeFileSync(newer, '{ port: 9999 }'); // no longer the config
  await sleep(1200); // proving a negative: two polls would have fired by now
  assert.equal(fired, before, 'an edit of the old target fired the watcher');
});
