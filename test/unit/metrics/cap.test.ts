/** The metrics endpoint's connection cap: small, and a share of a low descriptor limit. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { METRICS_BOUNDS, descriptorLimit, metricsConnectionCap } from '../../../src/metrics/server.js';

test('metrics connection cap: maxConnections, lowered to 1/16 of a small descriptor limit, never below 2', () => {
  assert.equal(METRICS_BOUNDS.maxConnections, 16);
  assert.equal(metricsConnectionCap(undefined), 16); // limit unknown (not Linux) or unlimited
  assert.equal(metricsConnectionCap(65536), 16);
  assert.equal(metricsConnectionCap(1024), 16);
  assert.equal(metricsConnectionCap(256), 16);
  assert.equal(metricsConnectionCap(128), 8);
  assert.equal(metricsConnectionCap(64), 4);
  assert.equal(metricsConnectionCap(20), 2);
  assert.equal(metricsConnectionCap(1), 2);
});

test('descriptor limit: the soft limit `ulimit -n` reports for this process (undefined when unlimited or not Linux)', () => {
  const shell = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(descriptorLimit(), process.platform !== 'linux' || shell === 'unlimited' ? undefined : Number(shell));
});
