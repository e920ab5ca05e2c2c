import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../../src/config/load.js';
import { summarize } from '../../../src/config/summary.js';
import type { Config } from '../../../src/core/config.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/configs/', import.meta.url));

function load(text: string, file: string): Config {
  const r = loadConfigText(text, file);
  assert.ok(r.ok, r.ok ? '' : r.issues.map((i) => i.message).join('\n'));
  return r.config;
}

test('summary of the DESIGN.md example', () => {
  const c = load(readFileSync(`${FIXTURES}design-example.json5`, 'utf8'), '/etc/tcplb/config.json5');
  const s = summarize(c);
  assert.equal(s, [
    '/etc/tcplb/config.json5: OK, 1 listener, 1 upstream, 2 servers',
    'listeners:',
    '  imaps  0.0.0.0:993 -> imaps  (connect 5s, idle 10m, max 10000)',
    'upstreams:',
    '  imaps: ip_hash, onMarkedDown keep, 2 servers',
    '    mail2.example.net:993  weight 1, maxFails 1/10s',
    '    mail3.example.net:993  weight 1, maxFails 1/10s',
    '    check imap every 5s, rise 2, fall 5, timeout 2s, tls, servername mail.example.net',
    'log:      access - (text), level info',
    'control:  /etc/tcplb/tcplb.sock',
    'metrics:  http://127.0.0.1:9108/metrics',
    'state:    /etc/tcplb/tcplb.state',
    `process:  instance ${c.instance}, shutdownTimeout 30s, workers 1, engine auto`,
  ].join('\n'));
});

test('summary shows flags and stays short for the full fixture', () => {
  const c = load(readFileSync(`${FIXTURES}valid-full.json5`, 'utf8'), '/etc/tcplb/config.json5');
  const s = summarize(c);
  assert.ok(s.split('\n').length <= 24, s);
  assert.match(s, /imaps-public {2}\[::1\]:9993 -> imaps {2}\(connect 1\.5s, idle 2m, max 500, 20\/client, proxy v2, allow 4\/deny 1\)/);
  assert.match(s, /\[2001:db8::3\]:993 +weight 1, backup/);
  assert.match(s, /10\.0\.0\.4:993 +weight 1, down/);
  assert.match(s, /mail2\.example\.net:993 +weight 3, maxConns 100, no passive checks/);
  assert.match(s, /check http every 1s, rise 2, fall 5, timeout 2s, expect 2xx/);
  assert.match(s, /mail: round_robin.*\n.*\n {4}check: none \(passive only\)/);
  assert.match(s, /log: +access \/etc\/tcplb\/logs\/access\.log \(json\), level debug/);
  assert.match(s, /process: +instance lb1, shutdownTimeout 1m, leaveDelay 3s, workers auto, engine js/);
  assert.match(s, /state: +\/var\/lib\/tcplb\/state\.json; health requires imaps, web/);
});

test('summary of a big config still fits a screen, lists cut with "… and N more"', () => {
  const servers = Array.from({ length: 30 }, (_, i) => `"10.0.0.${i + 1}:143"`).join(', ');
  const listeners = Array.from({ length: 10 }, (_, i) => `{ name: "l${i}", listen: ${2000 + i}, upstream: "big" }`).join(', ');
  const ups = Array.from({ length: 6 }, (_, i) => `u${i}: { servers: ["h:1"] }`).join(', ');
  const c = load(`{ listeners: [${listeners}], upstreams: { big: { servers: [${servers}] }, ${ups} }, control: null, metrics: null }`, '');
  const s = summarize(c);
  const lines = s.split('\n');
  assert.ok(lines.length <= 24, s);
  assert.match(lines[0]!, /^config: OK, 10 listeners, 7 upstreams, 36 servers$/);
  assert.match(s, /l2 .*\n {2}… and 7 more\nupstreams:/, 'listeners cut');
  assert.match(s, /10\.0\.0\.1:143 .*\n {4}… and 29 more\n/, 'servers cut');
  assert.match(s, /\n {2}… and 4 more\nlog:/, 'upstreams cut');
  assert.match(s, /control: +none\nmetrics: +none\nstate: +none/);
});
