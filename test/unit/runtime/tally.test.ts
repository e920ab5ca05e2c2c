/** The session tally: the one place cumulative figures are counted (snapshot and metrics read it). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SessionRecord } from '../../../src/core/dataplane.js';
import { Runtime } from '../../../src/runtime/store.js';
import { loadConfigText } from '../../../src/config/load.js';

function rec(over: Partial<SessionRecord>): SessionRecord {
  return { start: 0, durationMs: 1, listener: 'front', client: '127.0.0.1', clientPort: 1, backend: '', bytesIn: 0, bytesOut: 0, reason: 'closed', detail: '', ...over };
}

function config(servers: string[]) {
  const res = loadConfigText(`{ listeners: [{ name: "front", listen: "127.0.0.1:1", upstream: "u" }], upstreams: { u: { servers: ${JSON.stringify(servers)} } } }`, '/tmp/tally.json5');
  if (!res.ok) throw new Error('bad test config');
  return res.config;
}

test('the runtime tallies sessions once: per backend (connected ones), per listener (refusals by reason), overall', () => {
  const rt = new Runtime(config(['127.0.0.1:2', '127.0.0.1:3']));
  const a = 'u/127.0.0.1:2';
  rt.sessionOpened(a);
  rt.sessionClosed(rec({ backend: a, bytesIn: 5, bytesOut: 7 }));
  rt.sessionClosed(rec({ backend: a, reason: 'connect_failed' })); // never reached it: no bytes for it
  rt.sessionClosed(rec({ reason: 'denied', bytesIn: 0 }));
  assert.deepEqual({ ...rt.tally.backend(a) }, { total: 1, bytesIn: 5, bytesOut: 7 });
  assert.deepEqual({ ...rt.tally.backend('u/127.0.0.1:3') }, { total: 0, bytesIn: 0, bytesOut: 0 });
  const l = rt.tally.listeners().get('front')!;
  assert.equal(l.finished, 3);
  assert.deepEqual([...l.refused], [['connect_failed', 1], ['denied', 1]]);
  assert.equal(rt.tally.finished, 3);
  assert.equal(rt.tally.finishedBytes, 12);
  rt.close();
});

test('a backend removed and re-added by reloads keeps its totals, and a session that outlives its removal still counts', () => {
  const rt = new Runtime(config(['127.0.0.1:2', '127.0.0.1:3']));
  const b = 'u/127.0.0.1:3';
  rt.sessionOpened(b);
  rt.sessionOpened(b);
  rt.setConfig(config(['127.0.0.1:2']));
  rt.sessionClosed(rec({ backend: b, bytesOut: 10 }));
  rt.setConfig(config(['127.0.0.1:2', '127.0.0.1:3']));
  rt.sessionClosed(rec({ backend: b, bytesOut: 1 }));
  assert.deepEqual({ ...rt.tally.backend(b) }, { total: 2, bytesIn: 0, bytesOut: 11 });
  rt.close();
});
