import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from '../../../src/runtime/event-log.js';
import type { EventView } from '../../../src/runtime/snapshot.js';

const ev = (text: string): EventView => ({ time: 1, kind: 'action', text });

test('EventLog.subscribe: each push reaches every subscriber until it unsubscribes; a throwing one harms nobody', () => {
  const log = new EventLog(3);
  const a: string[] = [];
  const b: string[] = [];
  const offA = log.subscribe((e) => a.push(e.text));
  log.subscribe(() => {
    throw new Error('a broken watcher');
  });
  const offB = log.subscribe((e) => b.push(e.text));
  assert.equal(log.subscribers, 3);
  log.push(ev('one'));
  offA();
  log.push(ev('two'));
  assert.deepEqual(a, ['one']);
  assert.deepEqual(b, ['one', 'two']);
  assert.deepEqual(log.list().map((e) => e.text), ['one', 'two'], 'the ring still takes every push');
  offB();
  offB(); // idempotent
  assert.equal(log.subscribers, 1);
});
