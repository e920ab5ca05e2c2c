import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobinBalancer, SmoothWeighted } from '../../../src/balancers/round-robin.js';
import type { Candidate } from '../../../src/balancers/types.js';

const ctx = { clientIp: '127.0.0.1' };

/** Candidates named a, b, c… with the given weights and no connections. */
function weighted(...weights: number[]): Candidate[] {
  return weights.map((weight, i) => ({ id: String.fromCharCode(97 + i), weight, active: 0 }));
}

function picks(rr: RoundRobinBalancer, candidates: readonly Candidate[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rr.pick(candidates, ctx)!.id);
  return out;
}

const sequences = [
  // nginx's own example (ngx_http_upstream_round_robin.c): {5,1,1} → a a b a c a a.
  { name: 'weights {5,1,1}', weights: [5, 1, 1], expected: 'a a b a c a a a a b a c a a' },
  { name: 'weights {1,1,1}', weights: [1, 1, 1], expected: 'a b c a b c a b c' },
  { name: 'weights {2,1}', weights: [2, 1], expected: 'a b a a b a' },
  { name: 'weights {1,3}', weights: [1, 3], expected: 'b a b b b a b b' },
  { name: 'single backend', weights: [4], expected: 'a a a' },
];

for (const { name, weights, expected } of sequences) {
  test(`round_robin sequence: ${name}`, () => {
    const want = expected.split(' ');
    assert.deepEqual(picks(new RoundRobinBalancer(), weighted(...weights), want.length), want);
  });
}

const distributions = [
  { weights: [5, 1, 1] },
  { weights: [1, 1, 1] },
  { weights: [3, 2, 1, 1] },
  { weights: [100, 1] },
];

for (const { weights } of distributions) {
  test(`round_robin distribution over 7000 picks follows weights {${weights}}`, () => {
    const candidates = weighted(...weights);
    const counts = new Map<string, number>();
    for (const id of picks(new RoundRobinBalancer(), candidates, 7000)) {
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const total = weights.reduce((a, b) => a + b, 0);
    for (const c of candidates) {
      const share = (counts.get(c.id) ?? 0) / 7000;
      assert.ok(Math.abs(share - c.weight / total) <= 0.01, `${c.id}: ${share} vs ${c.weight / total}`);
    }
  });
}

test('round_robin: empty candidate list returns undefined', () => {
  assert.equal(new RoundRobinBalancer().pick([], ctx), undefined);
});

test('round_robin: a backend disappearing and reappearing', () => {
  const rr = new RoundRobinBalancer();
  const [a, b, c] = weighted(1, 1, 1) as [Candidate, Candidate, Candidate];
  assert.deepEqual(picks(rr, [a, b, c], 3), ['a', 'b', 'c']);
  // b leaves: the others alternate, b is never chosen.
  const without = picks(rr, [a, c], 10);
  assert.ok(!without.includes('b'));
  assert.equal(without.filter((id) => id === 'a').length, 5);
  // b is back: fair shares again over whole cycles, and b is served promptly.
  const back = picks(rr, [a, b, c], 30);
  assert.ok(back.slice(0, 3).includes('b'));
  for (const id of ['a', 'b', 'c']) assert.equal(back.filter((x) => x === id).length, 10, id);
});

test('round_robin: a new backend joining gets its share', () => {
  const rr = new RoundRobinBalancer();
  const [a, b, d] = weighted(1, 1, 2) as [Candidate, Candidate, Candidate];
  picks(rr, [a, b], 7);
  const after = picks(rr, [a, b, d], 40);
  assert.equal(after.filter((x) => x === 'c').length, 20);
});

test('round_robin: a backend excluded for one pick (retry) keeps its state', () => {
  const rr = new RoundRobinBalancer();
  const all = weighted(1, 1, 1);
  picks(rr, all, 1); // a
  // Retry of the next connection without a: state for a must survive one pick.
  assert.equal(rr.pick(all.slice(1), ctx)!.id, 'b');
  assert.equal(rr.stateSize, 3);
  // Fair shares again straight away (a is at most one turn behind, as in nginx).
  const next = picks(rr, all, 30);
  for (const id of ['a', 'b', 'c']) {
    const n = next.filter((x) => x === id).length;
    assert.ok(n >= 9 && n <= 11, `${id}: ${n}`);
  }
});

test('round_robin: state is bounded by the last two candidate sets', () => {
  const rr = new RoundRobinBalancer();
  for (let i = 0; i < 1000; i++) {
    // Every pick sees three brand-new ids: without forgetting the map would hold 3000.
    const candidates = [0, 1, 2].map((k) => ({ id: `u/10.0.${i}.${k}:80`, weight: 1 + k, active: 0 }));
    assert.ok(rr.pick(candidates, ctx));
    assert.ok(rr.stateSize <= 6, `stateSize ${rr.stateSize}`);
  }
  rr.pick(weighted(1), ctx);
  rr.pick(weighted(1), ctx);
  assert.equal(rr.stateSize, 1);
});

test('round_robin: odd inputs never throw', () => {
  const rr = new RoundRobinBalancer();
  const dup: Candidate = { id: 'a', weight: 1, active: 0 };
  assert.ok(rr.pick([dup, dup, { id: 'b', weight: 1, active: 0 }], ctx));
  assert.ok(rr.pick([{ id: 'z', weight: 0, active: 0 }], ctx));
});

test('SmoothWeighted is usable on its own (least_conn tie-break)', () => {
  const sw = new SmoothWeighted();
  const seq = [];
  for (let i = 0; i < 7; i++) seq.push(sw.pick(weighted(5, 1, 1))!.id);
  assert.deepEqual(seq, ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  assert.equal(sw.pick([]), undefined);
});
