/** The probe histogram's `result` label keeps tcplb's own shortage apart from a backend's failure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Engine } from '../../../src/core/dataplane.js';
import { createMetrics } from '../../../src/metrics/server.js';
import { Runtime } from '../../../src/runtime/store.js';

test('probe durations are labelled pass, fail, or local_error (a probe that could not run for tcplb\'s own shortage)', async () => {
  const res = loadConfigText(`{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }], upstreams: { u: { check: { type: "tcp" }, servers: ["127.0.0.2:1"] } } }`, '/tmp/x.json5');
  assert.ok(res.ok);
  const runtime = new Runtime(res.config);
  const engine = { activeByListener: () => new Map(), activeByBackend: () => new Map() } as unknown as Engine;
  const { registry } = createMetrics(runtime, engine);
  const id = 'u/127.0.0.2:1';
  runtime.applyProbe(id, { ok: true, status: 'L4_OK', latencyMs: 1, detail: 'connected' });
  runtime.applyProbe(id, { ok: false, status: 'L4_REFUSED', latencyMs: 1, detail: 'connection refused' });
  runtime.applyProbe(id, { ok: false, status: 'LOCAL_ERROR', latencyMs: 0, detail: 'EMFILE: tcplb is out of file descriptors' });
  runtime.applyProbe(id, { ok: false, status: 'LOCAL_ERROR', latencyMs: 0, detail: 'EMFILE: tcplb is out of file descriptors' });
  const text = await registry.metrics();
  const count = (result: string): number => Number(new RegExp(`tcplb_probe_duration_seconds_count\\{backend="${id}",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.deepEqual([count('pass'), count('fail'), count('local_error')], [1, 1, 2]);
  runtime.close();
});
