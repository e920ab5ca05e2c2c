/** Check options that cannot work together are refused with their position. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { formatIssue } from '../../../src/core/config.js';

function issues(check: string): string[] {
  const r = loadConfigText(`{ listeners: [{ listen: "127.0.0.1:7000", upstream: "u" }],\n  upstreams: { u: { check: ${check}, servers: ["127.0.0.2:1"] } } }`, 'c.json5');
  return r.ok ? [] : r.issues.map(formatIssue);
}

test('tls on ssl_hello or mysql, and verify without tls, are errors at the key', () => {
  assert.deepEqual(issues('{ type: "ssl_hello", tls: true }'), ['c.json5:2:49: upstreams.u.check.tls: not valid with type "ssl_hello" (it sends its own ClientHello)']);
  assert.match(issues('{ type: "mysql", tls: true }')[0]!, /c\.json5:2:45: .*MySQL has no implicit TLS/);
  assert.match(issues('{ type: "imap", verify: true }')[0]!, /c\.json5:2:44: upstreams\.u\.check\.verify: needs tls: true/);
  assert.deepEqual(issues('{ type: "imap", tls: true, verify: true, servername: "mail.test" }'), []);
});
