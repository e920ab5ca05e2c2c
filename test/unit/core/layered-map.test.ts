/** LayeredMap: each version behaves as a plain Map of its entries, and older versions never change. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LayeredMap } from '../../../src/core/layered-map.js';
import { rng } from '../../faults/helpers.js';

test('10,000 random versions agree with a plain Map, and every kept older version still reads as it did', () => {
  const random = rng(20261203);
  let m = LayeredMap.of<string, number>(Array.from({ length: 500 }, (_, i) => [`k${i}`, i] as const));
  const ref = new Map(m);
  const kept: [LayeredMap<string, number>, Map<string, number>][] = [];
  for (let step = 0; step < 10_000; step++) {
    const changes = new Map<string, number | undefined>();
    for (let j = 0, n = 1 + Math.floor(random() * 3); j < n; j++) {
      const k = `k${Math.floor(random() * 700)}`;
      changes.set(k, random() < 0.2 ? undefined : step);
    }
    m = m.with(changes);
    for (const [k, v] of changes) if (v === undefined) ref.delete(k); else ref.set(k, v);
    if (step % 997 === 0) kept.push([m, new Map(ref)]);
  }
  const same = (a: ReadonlyMap<string, number>, b: Map<string, number>): void => {
    assert.equal(a.size, b.size);
    assert.deepEqual(new Map([...a].sort()), new Map([...b].sort()));
    for (const k of ['k0', 'k499', 'k650', 'k699']) {
      assert.equal(a.get(k), b.get(k), k);
      assert.equal(a.has(k), b.has(k), k);
    }
  };
  same(m, ref);
  for (const [old, snapshot] of kept) same(old, snapshot);
});
