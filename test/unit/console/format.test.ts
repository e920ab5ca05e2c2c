/** format.ts: colours, units, widths and truncation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  certCell,
  fitSegments,
  formatBytes,
  formatBytesShort,
  formatClock,
  formatDuration,
  formatLatency,
  formatPerSec,
  formatRate,
  pad,
  sanitize,
  segmentsText,
  shortListen,
  stateColor,
  textWidth,
  truncate,
  truncateMiddle,
} from '../../../src/console/format.js';

test('state -> colour', () => {
  assert.deepEqual(
    (['UP', 'DOWN', 'DRAINING', 'DISABLED', 'UNKNOWN'] as const).map(stateColor),
    ['green', 'red', 'yellow', 'gray', 'blue'],
  );
});

test('bytes, rates and counts in human units', () => {
  const cases: [number, string, string][] = [
    [0, '0 B', '0B'],
    [999, '999 B', '999B'],
    [1000, '1.0 kB', '1.0K'],
    [1234, '1.2 kB', '1.2K'],
    [45_000, '45 kB', '45K'],
    [999_999, '1.0 MB', '1.0M'],
    [1_234_567, '1.2 MB', '1.2M'],
    [120_000_000, '120 MB', '120M'],
    [3.2e12, '3.2 TB', '3.2T'],
  ];
  for (const [n, long, short] of cases) {
    assert.equal(formatBytes(n), long, `formatBytes(${n})`);
    assert.equal(formatBytesShort(n), short, `formatBytesShort(${n})`);
    assert.ok(formatBytesShort(n).length <= 4);
  }
  assert.equal(formatBytes(-1), '-');
  assert.equal(formatRate(1_234_567), '1.2 MB/s');
  assert.equal(formatPerSec(3.44), '3.4');
  assert.equal(formatPerSec(120.4), '120');
  assert.equal(formatPerSec(NaN), '0');
});

test('durations, latencies and clock times', () => {
  const cases: [number, string][] = [
    [850, '850ms'],
    [45_000, '45s'],
    [133_000, '2m13s'],
    [3_720_000, '1h02m'],
    [273_600_000, '3d04h'],
    [-5, '0ms'],
  ];
  for (const [ms, s] of cases) assert.equal(formatDuration(ms), s);
  assert.equal(formatLatency(3), '3ms');
  assert.equal(formatLatency(2000), '2s');
  assert.equal(formatLatency(1500), '1.5s');
  assert.equal(formatClock(new Date(2025, 0, 2, 3, 4, 5).getTime()), '03:04:05');
});

test('truncation never exceeds the width and marks the cut with …', () => {
  assert.equal(truncate('mail2.example.net:993', 30), 'mail2.example.net:993');
  assert.equal(truncate('mail2.example.net:993', 10), 'mail2.exa…');
  assert.equal(truncate('abc', 1), '…');
  assert.equal(truncate('abc', 0), '');
  assert.equal(truncateMiddle('backend-01.a-very-long-name.example.internal:8443', 20), 'backend-01…rnal:8443');
  assert.equal(truncateMiddle('short', 20), 'short');
  assert.equal(pad('UP', 8), 'UP      ');
  assert.equal(pad('12', 5, 'right'), '   12');
  assert.equal(pad('toolongvalue', 5), 'tool…');
  for (let w = 0; w < 30; w++) {
    assert.ok(textWidth(truncate('x'.repeat(40), w)) <= w);
    assert.ok(textWidth(truncateMiddle('y'.repeat(40), w)) <= w);
  }
});

test('wide characters count two cells; control characters are neutralised', () => {
  assert.equal(textWidth('日本'), 4);
  assert.equal(textWidth('e\u0301'), 1);
  assert.equal(truncate('日本語テキスト', 5), '日本…');
  assert.equal(sanitize('a\nb\u001b[31mc\td'), 'a b [31mc d');
});

test('fitSegments: cut with one …, keep styles, fill for the selection bar', () => {
  const segs = [{ text: 'hello ', bold: true }, { text: 'world', color: 'red' as const }];
  assert.equal(segmentsText(fitSegments(segs, 20)), 'hello world');
  const cut = fitSegments(segs, 8);
  assert.equal(segmentsText(cut), 'hello w…');
  assert.equal(cut[1]!.color, 'red');
  // A cut right at a segment boundary still shows the ellipsis.
  assert.equal(segmentsText(fitSegments(segs, 6)), 'hello…');
  const filled = fitSegments([{ text: 'ab', inverse: true }], 5, true);
  assert.equal(segmentsText(filled), 'ab   ');
  assert.equal(filled[1]!.inverse, true);
  for (let w = 0; w < 15; w++) assert.ok(textWidth(segmentsText(fitSegments(segs, w, true))) <= w);
});

test('certificate cell: days left, highlighted when <= 14 days or the name is not covered', () => {
  assert.deepEqual(certCell(undefined), { text: '' });
  assert.deepEqual(certCell({ daysLeft: 80, coversName: true }), { text: '80d' });
  assert.deepEqual(certCell({ daysLeft: 14 }), { text: '14d', color: 'yellow' });
  assert.deepEqual(certCell({ daysLeft: -2 }), { text: '-2d', color: 'red' });
  assert.deepEqual(certCell({ daysLeft: 200, coversName: false }), { text: '200d !name', color: 'red' });
});

test('listen addresses: wildcard hosts shortened', () => {
  assert.equal(shortListen('0.0.0.0:993'), '*:993');
  assert.equal(shortListen('[::]:443'), '*:443');
  assert.equal(shortListen('127.0.0.1:25'), '127.0.0.1:25');
});
