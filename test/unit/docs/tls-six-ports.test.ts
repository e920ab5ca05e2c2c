/**
 * docs/tls.md's config for the tutorial's six ports loads as written (with
 * the test certificate in place of the operator's files): every TLS port has
 * the balancer's certificate, STARTTLS on 143/587, port 80 relayed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../../src/config/load.js';
import { formatIssue } from '../../../src/core/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

test('docs/tls.md: the six-port config is valid and holds the certificate on every TLS port', (t) => {
  const page = fs.readFileSync(path.join(ROOT, 'docs/tls.md'), 'utf8');
  const at = page.indexOf("## The tutorial's six ports, one certificate");
  assert.ok(at >= 0, 'the section is there');
  const block = /```json5\n([\s\S]*?)```/.exec(page.slice(at))![1]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-six-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fixtures = path.join(ROOT, 'test/fixtures/configs/tls');
  fs.copyFileSync(path.join(fixtures, 'mail.pem'), path.join(dir, 'mail.pem'));
  fs.copyFileSync(path.join(fixtures, 'mail.key'), path.join(dir, 'mail.key'));
  fs.copyFileSync(path.join(fixtures, 'ca.pem'), path.join(dir, 'internal-ca.pem'));
  const r = loadConfigText(block, path.join(dir, 'config.json5'));
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const byPort = new Map(r.config.listeners.map((l) => [l.listen.port, l]));
  assert.deepEqual([...byPort.keys()].sort((a, b) => a - b), [80, 143, 443, 465, 587, 993]);
  for (const p of [993, 143, 587, 465, 443]) assert.ok(byPort.get(p)!.tls !== undefined, `port ${p} holds the certificate`);
  assert.equal(byPort.get(80)!.tls, undefined);
  assert.equal(byPort.get(143)!.starttls, 'imap');
  assert.equal(byPort.get(587)!.starttls, 'smtp');
});
