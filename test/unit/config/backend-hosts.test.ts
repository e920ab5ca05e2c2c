/** The start-up and reload check that backend host names resolve. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unresolvedBackendHosts } from '../../../src/config/backend-hosts.js';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';

function config(servers: string[]): Config {
  const res = loadConfigText(
    `{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }], upstreams: { u: { servers: ${JSON.stringify(servers)} } } }`,
    '/tmp/x.json5',
  );
  assert.ok(res.ok);
  return res.config;
}

/** A lookup that knows `good.test` only, and records what it was asked. */
function fakeLookup() {
  const asked: string[] = [];
  const lookup = async (host: string): Promise<unknown> => {
    asked.push(host);
    if (host === 'good.test') return { address: '192.0.2.1', family: 4 };
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  return { asked, lookup };
}

test('a name that does not resolve is one problem naming its server; IP literals are not looked up', async () => {
  const { asked, lookup } = fakeLookup();
  const problems = await unresolvedBackendHosts(config(['10.0.0.2:1', '[::1]:1', 'good.test:1', 'bad.test:1']), undefined, lookup);
  assert.deepEqual(problems, ['server u/bad.test:1: cannot resolve host "bad.test" (ENOTFOUND)']);
  assert.deepEqual(asked.sort(), ['bad.test', 'good.test']);
});

test('each name is looked up once, and on a reload only names new since the running config', async () => {
  const { asked, lookup } = fakeLookup();
  const old = config(['bad.test:1']);
  const problems = await unresolvedBackendHosts(config(['bad.test:1', 'bad.test:2', 'good.test:1', 'good.test:2']), old, lookup);
  assert.deepEqual(problems, [], 'a name already running is not refused for a DNS hiccup');
  assert.deepEqual(asked, ['good.test']);
});
