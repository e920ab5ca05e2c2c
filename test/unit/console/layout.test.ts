/** layout.ts: columns per width, row budget, scroll windows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeHeights, MARKER_WIDTH, MIN_BACKEND_WIDTH, scrollOffset, selectionWindow, tableColumns } from '../../../src/console/layout.js';

const rowWidth = (cols: { width: number }[]): number => MARKER_WIDTH + cols.reduce((n, c) => n + c.width, 0) + cols.length - 1;

test('columns always sum to the width (marker + one space between columns)', () => {
  for (let width = 60; width <= 220; width++) {
    for (const hasCert of [false, true]) {
      const cols = tableColumns(width, { hasCert, longest: 30 });
      assert.equal(rowWidth(cols), width, `width ${width} cert ${hasCert}`);
      assert.ok(cols.find((c) => c.key === 'backend')!.width >= MIN_BACKEND_WIDTH);
    }
  }
});

test('80 columns keep the essentials; wider terminals add total, weight, reason', () => {
  const keys = (w: number, hasCert: boolean): string[] => tableColumns(w, { hasCert, longest: 21 }).map((c) => c.key);
  assert.deepEqual(keys(80, true), ['backend', 'state', 'probe', 'check', 'active', 'bytes', 'cert']);
  assert.deepEqual(keys(80, false), ['backend', 'state', 'probe', 'check', 'active', 'total', 'bytes']);
  assert.deepEqual(keys(140, true), ['backend', 'state', 'probe', 'check', 'active', 'total', 'bytes', 'weight', 'cert', 'reason']);
  assert.equal(tableColumns(140, { hasCert: true, longest: 21 }).find((c) => c.key === 'backend')!.width, 21);
});

test('row budget at 24 rows: 3 header, 12 tables, 6 panel, 2 footer = 23', () => {
  assert.deepEqual(computeHeights(24, 50), { frame: 23, header: 3, table: 12, panel: 6, footer: 2 });
  // Few backends: the panel gets the rows the tables don't need.
  assert.deepEqual(computeHeights(24, 5), { frame: 23, header: 3, table: 5, panel: 13, footer: 2 });
  // Tall terminals show more table rows.
  assert.ok(computeHeights(50, 100).table > 20);
  // Tiny terminals drop the panel but never exceed the frame.
  for (let rows = 1; rows < 60; rows++) {
    const h = computeHeights(rows, 40);
    assert.ok(h.header + h.table + h.panel + h.footer <= Math.max(1, rows - 1), `rows ${rows}`);
  }
  assert.equal(computeHeights(10, 40).panel, 0);
});

test('scroll window moves minimally to keep the target visible', () => {
  assert.equal(scrollOffset(0, 3, 10, 50), 0);
  assert.equal(scrollOffset(0, 12, 10, 50), 3);
  assert.equal(scrollOffset(3, 2, 10, 50), 2);
  assert.equal(scrollOffset(40, 49, 10, 50), 40);
  assert.equal(scrollOffset(45, 49, 10, 50), 40); // clamped: never past the end
  assert.equal(scrollOffset(5, 0, 10, 4), 0);
  // Scrolling up onto an upstream's first backend also shows its title row.
  assert.equal(selectionWindow(10, 5, 10, 50, true), 4);
  assert.equal(selectionWindow(10, 5, 10, 50, false), 5);
});
