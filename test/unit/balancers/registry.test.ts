import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BALANCERS, createBalancer } from '../../../src/balancers/registry.js';
import { BALANCE_ALGORITHMS, type BalanceAlgorithm } from '../../../src/core/types.js';
import { LbError } from '../../../src/core/errors.js';

const ctx = { clientIp: '192.0.2.7' };

test('every configured algorithm is registered, and nothing else', () => {
  assert.deepEqual(Object.keys(BALANCERS).sort(), [...BALANCE_ALGORITHMS].sort());
  assert.ok(Object.isFrozen(BALANCERS));
});

for (const name of BALANCE_ALGORITHMS) {
  test(`${name}: empty candidate list returns undefined`, () => {
    assert.equal(createBalancer(name).pick([], ctx), undefined);
  });

  test(`${name}: picks one of the candidates; each call makes a fresh instance`, () => {
    const list = [
      { id: 'u/a:1', weight: 1, active: 0 },
      { id: 'u/b:1', weight: 2, active: 0 },
    ];
    assert.ok(list.includes(createBalancer(name).pick(list, ctx)!));
    assert.notEqual(createBalancer(name), createBalancer(name));
  });
}

test('an unknown algorithm throws LB_ERR_CONFIG_INVALID', () => {
  for (const bad of ['random', 'toString', '__proto__']) {
    assert.throws(
      () => createBalancer(bad as BalanceAlgorithm),
      (err: unknown) => err instanceof LbError && err.code === 'LB_ERR_CONFIG_INVALID',
    );
  }
});
