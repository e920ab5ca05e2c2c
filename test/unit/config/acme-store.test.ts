/** acme/ storage: atomic 0600 writes in a 0700 folder, lookups that never leave the folder, the order lock of a shared storage. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ORDER_LOCK_STALE_MS, readAlpnChallenge, readHttpChallenge, takeOrderLock, writeFileAtomic } from '../../../src/config/acme-store.js';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-acme-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'acme');
}

test('writeFileAtomic: the folder is made 0700, the file 0600, no temporary file stays; a second write replaces the first', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'challenges', 'http-01', 'tok');
  writeFileAtomic(f, 'one');
  writeFileAtomic(f, 'two');
  assert.equal(fs.readFileSync(f, 'utf8'), 'two');
  assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(f)).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['tok']);
  assert.equal(readHttpChallenge(dir, 'tok'), 'two');
  assert.equal(readHttpChallenge(dir, 'nope'), undefined);
  assert.equal(readHttpChallenge(dir, '../../etc/passwd'), undefined, 'a token is never a path');
  assert.equal(readAlpnChallenge(dir, '../x'), undefined, 'a name is never a path');
});

test('the order lock: one member at a time; a stale lock (a member died mid-order) is taken over', (t) => {
  const dir = tmp(t);
  const now = Date.now();
  const a = takeOrderLock(dir, 'a', now);
  assert.ok(a !== false);
  assert.equal(takeOrderLock(dir, 'b', now), false, 'b waits while a orders');
  a.release();
  const b = takeOrderLock(dir, 'b', now);
  assert.ok(b !== false, 'free again after release');
  const old = (now - ORDER_LOCK_STALE_MS - 1000) / 1000;
  fs.utimesSync(path.join(dir, 'order.lock'), old, old);
  assert.ok(takeOrderLock(dir, 'c', now) !== false, 'a stale lock is taken over');
});
