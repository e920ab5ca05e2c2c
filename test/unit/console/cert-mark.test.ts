/** The console's certificate mark in header line 3 (#16): days to the nearest expiry, yellow under 14 days, red once expired. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certMark, totalsLine } from '../../../src/console/rows.js';
import type { Snapshot } from '../../../src/runtime/snapshot.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 0, 1);

test('a TLS listener shows its nearest expiry: dim from 14 days, yellow under, red EXPIRED once past; a plain one nothing', () => {
  assert.deepEqual(certMark(NOW + 40 * DAY + 5, NOW), [{ text: ' tls 40d', dim: true }]);
  assert.deepEqual(certMark(NOW + 14 * DAY, NOW), [{ text: ' tls 14d', dim: true }]);
  assert.deepEqual(certMark(NOW + 13 * DAY + 1, NOW), [{ text: ' tls 13d', color: 'yellow', bold: true }]);
  assert.deepEqual(certMark(NOW + 1000, NOW), [{ text: ' tls 0d', color: 'yellow', bold: true }]);
  assert.deepEqual(certMark(NOW, NOW), [{ text: ' tls EXPIRED', color: 'red', bold: true }]);
  assert.deepEqual(certMark(undefined, NOW), []);
});

test('header line 3 carries the mark after each TLS listener', () => {
  const s = {
    time: NOW,
    totals: { active: 0, accepted: 0, connPerSec: 0, bytesPerSec: 0 },
    listeners: [
      { name: 'imaps', listen: '0.0.0.0:993', upstream: 'imap', certExpiry: NOW + 3 * DAY },
      { name: 'imap', listen: '0.0.0.0:143', upstream: 'imap' },
    ],
  } as unknown as Snapshot;
  const segs = totalsLine(s, 200);
  const text = segs.map((x) => x.text).join('');
  assert.match(text, / imaps \*:993 tls 3d imap \*:143/);
  assert.equal(segs.find((x) => x.text === ' tls 3d')?.color, 'yellow');
});
