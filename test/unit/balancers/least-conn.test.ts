import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeastConnBalancer } from '../../../src/balancers/least-conn.js';
import type { Candidate } from '../../../src/balancers/types.js';

const ctx = { clientIp: '127.0.0.1' };

/** `a:2/1` → id a, active 2, weight 1. */
function parse(spec: string): Candidate[] {
  return spec.split(' ').map((s) => {
    const [id, rest] = s.split(':') as [string, string];
    const [active, weight] = rest.split('/').map(Number) as [number, number];
    return { id, active, weight };
  });
}

const cases = [
  { name: 'fewest active wins', candidates: 'a:2/1 b:1/1 c:3/1', expected: 'b' },
  { name: 'zero active wins', candidates: 'a:5/1 b:9/1 c:0/1', expected: 'c' },
  { name: 'weight divides load', candidates: 'a:4/2 b:3/1', expected: 'a' }, // 2 < 3
  { name: 'heavy backend takes more', candidates: 'a:9/10 b:1/1', expected: 'a' }, // 0.9 < 1
  // 1/3 == 2/6 < 1/2: a and b tie exactly; the tie-break's first turn goes to the heavier b.
  { name: 'equal ratios tie exactly', candidates: 'a:1/3 b:2/6 c:1/2', expected: 'b' },
  { name: 'single candidate', candidates: 'z:100/1', expected: 'z' },
];

for (const { name, candidates, expected } of cases) {
  test(`least_conn: ${name}`, () => {
    assert.equal(new LeastConnBalancer().pick(parse(candidates), ctx)?.id, expected);
  });
}

const tieCases = [
  { name: 'all idle, equal weights', candidates: 'a:0/1 b:0/1 c:0/1', expected: 'a b c a b c' },
  { name: 'all idle, weights {5,1,1}', candidates: 'a:0/5 b:0/1 c:0/1', expected: 'a a b a c a a' },
  { name: 'tie among a subset only', candidates: 'a:1/1 b:3/1 c:1/1', expected: 'a c a c' },
  { name: 'equal weighted load', candidates: 'a:2/2 b:1/1', expected: 'a b a a b a' },
];

for (const { name, candidates, expected } of tieCases) {
  test(`least_conn tie-break rotates: ${name}`, () => {
    const lc = new LeastConnBalancer();
    const list = parse(candidates);
    const want = expected.split(' ');
    const got = want.map(() => lc.pick(list, ctx)!.id);
    assert.deepEqual(got, want);
  });
}

test('least_conn: simulated connections settle in proportion to weight', () => {
  const lc = new LeastConnBalancer();
  const state = parse('a:0/3 b:0/1 c:0/2');
  for (let i = 0; i < 600; i++) {
    const chosen = lc.pick(state, ctx)!;
    const idx = state.findIndex((c) => c.id === chosen.id);
    state[idx] = { ...chosen, active: chosen.active + 1 };
  }
  assert.deepEqual(
    state.map((c) => c.active),
    [300, 100, 200],
  );
});

test('least_conn: empty candidate list returns undefined', () => {
  assert.equal(new LeastConnBalancer().pick([], ctx), undefined);
});
