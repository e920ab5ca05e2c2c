/** The access log across a reopen (SIGUSR1) whose new file cannot be opened. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AccessLog } from '../../../src/log/logger.js';
import type { SessionRecord } from '../../../src/core/dataplane.js';
import { waitFor } from '../../helpers/wait.js';

const record = (listener: string): SessionRecord => ({
  start: Date.now(), durationMs: 5, listener, client: '127.0.0.1', clientPort: 40000, backend: 'u/127.0.0.1:1', bytesIn: 1, bytesOut: 2, reason: 'closed', detail: '',
});

const until = (what: string, ms: number, ok: () => boolean): Promise<boolean> => waitFor(ok, { what, timeoutMs: ms });

test('reopen with the log folder gone: reported as a failure, lines go on to the old file, logging resumes in the new file once the folder is back', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-access-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'logs');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'access.log');
  const errors: string[] = [];
  const infos: string[] = [];
  const log = new AccessLog(file, 'text', (m) => errors.push(m), { onInfo: (m) => infos.push(m), retryMs: 50 });
  t.after(() => log.close());
  log.write(record('before'));
  log.flush();

  // logrotate-like: the whole folder is moved away.
  const moved = path.join(root, 'logs.1');
  fs.renameSync(dir, moved);
  assert.equal(log.reopen(), false, 'reopen must say it failed');
  assert.equal(log.isOpen, false);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, /^cannot open access log .*access\.log: ENOENT.*; still writing to the file open before; retrying every 0\.05 s$/);
  log.write(record('during'));
  log.flush();
  assert.match(fs.readFileSync(path.join(moved, 'access.log'), 'utf8'), /before.*\n.*during/s, 'lines go on to the moved file');

  // Retries do not repeat the error; a second SIGUSR1 fails the same way, quietly.
  await new Promise((r) => setTimeout(r, 200)); // proving a negative: four retries (every 50 ms) have run by now
  assert.equal(log.reopen(), false);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.deepEqual(infos, []);

  // The folder is back: the retry opens the new file and says so.
  fs.mkdirSync(dir);
  await until('logging resumes', 2000, () => infos.length > 0);
  assert.match(infos[0]!, /access\.log open again after [\d.]+ s of failed attempts: logging to it resumes/);
  assert.equal(log.isOpen, true);
  log.write(record('after'));
  log.flush();
  assert.match(fs.readFileSync(file, 'utf8'), /after/);
  assert.doesNotMatch(fs.readFileSync(path.join(moved, 'access.log'), 'utf8'), /after/);
  assert.equal(errors.length, 1);
});

test('an access log that cannot be opened at start is retried, and used once it opens', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-access-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const file = path.join(root, 'later', 'access.log');
  const errors: string[] = [];
  const infos: string[] = [];
  const log = new AccessLog(file, 'json', (m) => errors.push(m), { onInfo: (m) => infos.push(m), retryMs: 50 });
  t.after(() => log.close());
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /access lines are dropped until it opens; retrying every 0\.05 s$/);
  fs.mkdirSync(path.dirname(file));
  await until('logging resumes', 2000, () => infos.length > 0);
  log.write(record('late'));
  log.flush();
  assert.match(fs.readFileSync(file, 'utf8'), /"listener":"late"/);
});
