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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `count()` reaches n, rejects after ms. */
async function waitFor(count: () => number, n: number, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (count() < n) {
    if (Date.now() > end) throw new Error(`${what}: ${count()} reloads after ${ms} ms, expected ${n}`);
    await sleep(20);
  }
}

test('the config watcher fires once per save: in place, by rename (vim), after delete + create; never for a busy sibling file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-watch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, '{}');
  let fired = 0;
  const w = watchConfig(file, () => fired++, 50);
  t.after(() => w.close());
  await sleep(300); // chokidar's first scan

  fs.writeFileSync(file, '{ a: 1 }');
  await waitFor(() => fired, 1, 3000, 'write in place');

  fs.writeFileSync(file + '.swp', '{ a: 2 }');
  fs.renameSync(file + '.swp', file);
  await waitFor(() => fired, 2, 3000, 'save by rename');

  fs.writeFileSync(file, '{ a: 3 }'); // the watch follows the new inode
  await waitFor(() => fired, 3, 3000, 'write after a rename');

  fs.unlinkSync(file);
  await sleep(400);
  const afterDelete = fired;
  fs.writeFileSync(file, '{ a: 4 }');
  await waitFor(() => fired, afterDelete + 1, 3000, 'create after delete');

  const before = fired;
  const log = fs.openSync(path.join(dir, 'access.log'), 'a');
  for (let i = 0; i < 200; i++) {
    fs.writeSync(log, `line ${i}\n`);
    if (i % 20 === 0) await sleep(10);
  }
  fs.closeSync(log);
  fs.writeFileSync(path.join(dir, 'state.json'), '{}');
  await sleep(500);
  assert.equal(fired, before, 'writes to other files in the folder fired the config watcher');
});

test('a symlinked config is followed when the link is re-pointed, also to an older file of the same size (a rollback)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-watch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const older = path.join(dir, 'release-1.json5');
  const newer = path.join(dir, 'release-2.json5');
  fs.writeFileSync(older, '{ port: 8081 }');
  await sleep(50);
  fs.writeFileSync(newer, '{ port: 8080 }'); // same size, newer mtime
  const link = path.join(dir, 'config.json5');
  fs.symlinkSync('release-2.json5', link);
  let fired = 0;
  const w = watchConfig(link, () => fired++, 50);
  t.after(() => w.close());
  await sleep(700);

  fs.unlinkSync(link);
  fs.symlinkSync('release-1.json5', link);
  await waitFor(() => fired, 1, 3000, 'link re-pointed to the older release');

  fs.writeFileSync(older, '{ port: 8083 }'); // the watch follows the link's new target
  await waitFor(() => fired, 2, 3000, 'edit of the new target');

  const before = fired;
  fs.writeFileSync(newer, '{ port: 9999 }'); // no longer the config
  await sleep(1200);
  assert.equal(fired, before, 'an edit of the old target fired the watcher');
});
