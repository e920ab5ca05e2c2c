/** When the ACME client renews and retries (pure functions; the clock is an argument). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renewalTime, retryDelay } from '../../../src/runtime/acme.js';

const DAY = 86_400_000;

test('renewal at two thirds of the lifetime, or renewBefore the expiry', () => {
  const from = Date.UTC(2027, 0, 1);
  // Let's Encrypt's 90 days: day 60; 45 days (2028): day 30.
  assert.equal(renewalTime(from, from + 90 * DAY, null), from + 60 * DAY);
  assert.equal(renewalTime(from, from + 45 * DAY, null), from + 30 * DAY);
  assert.equal(renewalTime(from, from + 90 * DAY, 30 * DAY), from + 60 * DAY);
  assert.equal(renewalTime(from, from + 90 * DAY, 7 * DAY), from + 83 * DAY);
});

test('retries: retryMin doubled per failure up to retryMax, jittered to 50-100%', () => {
  const top = (): number => 1; // the largest jitter
  const bottom = (): number => 0;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => retryDelay(n, 60_000, 12 * 3_600_000, top)),
    [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_840_000, 7_680_000, 15_360_000, 30_720_000]);
  assert.equal(retryDelay(11, 60_000, 12 * 3_600_000, top), 12 * 3_600_000, 'capped at retryMax');
  assert.equal(retryDelay(500, 60_000, 12 * 3_600_000, top), 12 * 3_600_000, 'no overflow after many failures');
  assert.equal(retryDelay(1, 60_000, 12 * 3_600_000, bottom), 30_000, 'half at the smallest jitter');
  const seen = new Set(Array.from({ length: 50 }, () => retryDelay(3, 1000, 60_000)));
  assert.ok(seen.size > 10 && [...seen].every((d) => d >= 2000 && d <= 4000), 'jitter spreads a fleet that failed together');
});
