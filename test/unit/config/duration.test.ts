import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../../src/config/duration.js';

test('parseDuration: numbers are milliseconds', () => {
  assert.equal(parseDuration(2000), 2000);
  assert.equal(parseDuration(0), 0);
  assert.equal(parseDuration(1.5), 1.5);
});

test('parseDuration: strings with units', () => {
  const cases: Array<[string, number]> = [
    ['5s', 5000], ['2000ms', 2000], ['10m', 600_000], ['1h', 3_600_000], ['1d', 86_400_000],
    ['1.5s', 1500], ['.5s', 500], ['0ms', 0], ['1h30m', 5_400_000], ['1m 30s', 90_000], [' 5s ', 5000], ['5 s', 5000],
    ['1.1s', 1100],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

test('parseDuration: rejects negatives, unitless strings and garbage', () => {
  for (const bad of [-1, -0.5, NaN, Infinity, -Infinity]) assert.equal(parseDuration(bad), undefined, String(bad));
  for (const bad of ['', ' ', '-5s', '2000', '5', '5 sec', 's', '5x', '5S', '1.s', '1..5s', '5s5', 'ms', '1e3ms', '0x10s', '5s-', `${'9'.repeat(70)}s`]) {
    assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
  }
  // Not a string or number at all (untyped callers).
  assert.equal(parseDuration(null as unknown as string), undefined);
});

test('formatDuration: shortest exact spelling', () => {
  const cases: Array<[number, string]> = [
    [0, '0ms'], [250, '250ms'], [1000, '1s'], [1500, '1.5s'], [5000, '5s'], [60_000, '1m'], [90_000, '90s'],
    [600_000, '10m'], [3_600_000, '1h'], [86_400_000, '1d'], [1234, '1234ms'], [0.5, '0.5ms'],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  for (const [ms] of cases) assert.equal(parseDuration(formatDuration(ms)), ms, `round trip ${ms}`);
});
