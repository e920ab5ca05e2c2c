import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK_TYPES } from '../../../src/core/types.js';
import { PROBES, probeFor } from '../../../src/health/registry.js';
import { probe as sslHello } from '../../../src/health/probes/ssl-hello.js';

test('registry: one probe per check type, nothing else', () => {
  assert.deepEqual(Object.keys(PROBES).sort(), [...CHECK_TYPES].sort());
  for (const type of CHECK_TYPES) assert.equal(typeof probeFor(type), 'function', type);
  assert.equal(probeFor('ssl_hello'), sslHello);
  assert.ok(Object.isFrozen(PROBES));
});
