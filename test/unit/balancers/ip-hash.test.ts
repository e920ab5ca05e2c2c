import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpHashBalancer, hashString32, normalizeClientIp } from '../../../src/balancers/ip-hash.js';
import type { Candidate } from '../../../src/balancers/types.js';

/** Deterministic PRNG (mulberry32) so the IP sets are the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` distinct IPv4 client addresses. */
function ipv4s(count: number, seed = 1): string[] {
  const rand = rng(seed);
  const set = new Set<string>();
  while (set.size < count) {
    const n = Math.floor(rand() * 4294967296);
    set.add(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  return [...set];
}

function backends(...weights: number[]): Candidate[] {
  return weights.map((weight, i) => ({ id: `web/10.0.0.${i + 1}:80`, weight, active: 0 }));
}

function assign(candidates: readonly Candidate[], ips: readonly string[]): string[] {
  const lb = new IpHashBalancer();
  return ips.map((clientIp) => lb.pick(candidates, { clientIp })!.id);
}

function shares(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1 / ids.length);
  return m;
}

test('ip_hash: the same IP always gets the same backend, whatever the list order', () => {
  const lb = new IpHashBalancer();
  const list = backends(1, 1, 1, 1);
  const reversed = [...list].reverse();
  for (const clientIp of ipv4s(500)) {
    const first = lb.pick(list, { clientIp })!.id;
    assert.equal(lb.pick(list, { clientIp })!.id, first);
    assert.equal(new IpHashBalancer().pick(reversed, { clientIp })!.id, first);
  }
});

test('ip_hash: a v4-mapped v6 client maps like the plain v4 client', () => {
  const lb = new IpHashBalancer();
  const list = backends(1, 1, 1);
  for (const ip of ipv4s(500, 7)) {
    assert.equal(lb.pick(list, { clientIp: `::ffff:${ip}` })!.id, lb.pick(list, { clientIp: ip })!.id);
    assert.equal(lb.pick(list, { clientIp: `::FFFF:${ip}` })!.id, lb.pick(list, { clientIp: ip })!.id);
  }
});

const normalizeCases = [
  { input: '::ffff:10.1.2.3', expected: '10.1.2.3' },
  { input: '::FFFF:10.1.2.3', expected: '10.1.2.3' },
  { input: '10.1.2.3', expected: '10.1.2.3' },
  { input: '::1', expected: '::1' },
  { input: '2001:db8::ffff:1', expected: '2001:db8::ffff:1' },
  { input: '::ffff:a01:203', expected: '::ffff:a01:203' }, // hex form is left to Node's canonical printing
  { input: '', expected: '' },
];

for (const { input, expected } of normalizeCases) {
  test(`normalizeClientIp(${JSON.stringify(input)}) = ${JSON.stringify(expected)}`, () => {
    assert.equal(normalizeClientIp(input), expected);
  });
}

test('ip_hash: plain IPv6 clients are sticky and spread over all backends', () => {
  const lb = new IpHashBalancer();
  const list = backends(1, 1, 1);
  const rand = rng(3);
  const ids: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const group = () => Math.floor(rand() * 65536).toString(16);
    const clientIp = `2001:db8:${group()}:${group()}::${group()}`;
    const id = lb.pick(list, { clientIp })!.id;
    assert.equal(lb.pick(list, { clientIp })!.id, id);
    ids.push(id);
  }
  for (const [id, share] of shares(ids)) assert.ok(Math.abs(share - 1 / 3) < 0.04, `${id}: ${share}`);
  assert.equal(shares(ids).size, 3);
});

test('ip_hash: 10,000 clients over 3 backends; removing one moves only its clients; re-adding restores the mapping', () => {
  const ips = ipv4s(10_000, 42);
  const all = backends(1, 1, 1);
  const original = assign(all, ips);

  const removed = all[1]!.id;
  const after = assign(all.filter((c) => c.id !== removed), ips);
  let moved = 0;
  for (let i = 0; i < ips.length; i++) {
    if (after[i] !== original[i]) {
      moved++;
      // Only clients of the removed backend may move.
      assert.equal(original[i], removed, `${ips[i]} moved from ${original[i]} to ${after[i]}`);
    }
  }
  assert.ok(moved / ips.length <= 1 / 3 + 0.02, `moved ${moved}`);
  // And every client of the removed backend had to move somewhere.
  assert.equal(moved, original.filter((id) => id === removed).length);

  assert.deepEqual(assign(all, ips), original);
});

test('ip_hash: unweighted distribution is even', () => {
  const ids = assign(backends(1, 1, 1, 1, 1), ipv4s(20_000, 5));
  for (const [id, share] of shares(ids)) assert.ok(Math.abs(share - 0.2) < 0.02, `${id}: ${share}`);
});

const weightedCases = [{ weights: [1, 2, 3] }, { weights: [5, 1, 1] }, { weights: [1, 1, 8] }];

for (const { weights } of weightedCases) {
  test(`ip_hash: weighted distribution follows weights {${weights}}`, () => {
    const list = backends(...weights);
    const total = weights.reduce((a, b) => a + b, 0);
    const got = shares(assign(list, ipv4s(30_000, 9)));
    for (const c of list) {
      const share = got.get(c.id) ?? 0;
      assert.ok(Math.abs(share - c.weight / total) < 0.02, `${c.id}: ${share} vs ${c.weight / total}`);
    }
  });
}

test('ip_hash: single and empty candidate lists', () => {
  const lb = new IpHashBalancer();
  const [only] = backends(1);
  assert.equal(lb.pick([only!], { clientIp: '1.2.3.4' }), only);
  assert.equal(lb.pick([], { clientIp: '1.2.3.4' }), undefined);
});

test('ip_hash: odd inputs never throw', () => {
  const lb = new IpHashBalancer();
  const list = backends(1, 1);
  assert.ok(lb.pick(list, { clientIp: '' }));
  assert.ok(lb.pick(list, { clientIp: 'not an address' }));
  assert.ok(lb.pick([{ id: 'x', weight: Number.NaN, active: 0 }, { id: 'y', weight: 0, active: 0 }], { clientIp: '1.1.1.1' }));
  // More distinct ids than the id-hash cache holds: it resets and keeps answering.
  for (let i = 0; i < 3000; i++) {
    assert.ok(lb.pick([{ id: `u/${i}`, weight: 1, active: 0 }, ...list], { clientIp: '9.9.9.9' }));
  }
});

test('hashString32 is deterministic, seed-dependent and unsigned', () => {
  assert.equal(hashString32('10.0.0.1'), hashString32('10.0.0.1'));
  assert.notEqual(hashString32('10.0.0.1'), hashString32('10.0.0.2'));
  assert.notEqual(hashString32('abc', 1), hashString32('abc', 2));
  assert.notEqual(hashString32('ab'), hashString32('ab\0'));
  for (const s of ['', 'a', '255.255.255.255', '2001:db8::1']) {
    const h = hashString32(s);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
  }
});
