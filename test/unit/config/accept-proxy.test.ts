/** `listeners[].acceptProxyProtocol`: read with defaults; an empty trust list, a bad CIDR and the combination with tls are errors at their place. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../../src/config/load.js';

/** Configs are placed next to the test fixtures, so `tls/mail.pem` resolves to the fixture certificate. */
const FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/configs/x.json5');
const cfg = (listener: string): ReturnType<typeof loadConfigText> =>
  loadConfigText(`{ listeners: [{ listen: "127.0.0.1:2525", upstream: "u", ${listener} }],\n  upstreams: { u: { servers: ["10.0.0.2:25"] } } }`, FILE);

test('acceptProxyProtocol: from is required and non-empty, timeout defaults to 5 s; errors name the place', () => {
  const ok = cfg('acceptProxyProtocol: { from: ["10.0.0.0/8", "::1"] }');
  assert.ok(ok.ok);
  assert.deepEqual(ok.config.listeners[0]!.acceptProxyProtocol, { from: ['10.0.0.0/8', '::1'], timeoutMs: 5000 });
  const plain = cfg('');
  assert.ok(plain.ok);
  assert.equal(plain.config.listeners[0]!.acceptProxyProtocol, undefined);
  const msgs = (r: ReturnType<typeof loadConfigText>): string => (r.ok ? '' : r.issues.map((i) => `${i.line}:${i.column}: ${i.message}`).join('\n'));
  assert.match(msgs(cfg('acceptProxyProtocol: { from: [] }')), /^1:\d+: listeners\[0\]\.acceptProxyProtocol\.from: must list the front tier's addresses/m);
  assert.match(msgs(cfg('acceptProxyProtocol: { from: ["10.0.0.0/33"] }')), /acceptProxyProtocol\.from\[0\]/);
  assert.match(msgs(cfg('acceptProxyProtocol: { timeout: "1s" }')), /acceptProxyProtocol(\.from)?: .*from/);
  assert.ok(cfg('tls: { certificates: [{ cert: "tls/mail.pem", key: "tls/mail.key" }] }').ok, 'the fixture certificate loads');
  assert.match(msgs(cfg('acceptProxyProtocol: { from: ["10.0.0.0/8"] }, tls: { certificates: [{ cert: "tls/mail.pem", key: "tls/mail.key" }] }')), /^1:\d+: listeners\[0\]\.acceptProxyProtocol: not supported together with "tls" yet/m);
});
