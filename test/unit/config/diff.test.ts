/** diffConfigs on listeners written with a host name (resolved at load). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffConfigs } from '../../../src/config/diff.js';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';

test('a listen host name that now resolves to another address is a change (the listener is re-bound), though its spelling is the same', () => {
  const r = loadConfigText('{ listeners: [{ name: "a", listen: "localhost:7000", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:1"] } } }', '');
  assert.ok(r.ok);
  const as = (host: string): Config => ({ ...r.config, listeners: [{ ...r.config.listeners[0]!, listen: { host, port: 7000 } }] });
  assert.deepEqual(diffConfigs(as('127.0.0.1'), as('::1')), ['~listener a listen localhost:7000 127.0.0.1->::1']);
  assert.deepEqual(diffConfigs(as('127.0.0.1'), as('127.0.0.1')), []);
});
