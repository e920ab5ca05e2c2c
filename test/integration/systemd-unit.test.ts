/**
 * packaging/tcplb.service: its ExecStart line, as written, starts a serving
 * instance (run here without systemd: `${VAR}` expanded from the unit's
 * Environment= with TCPLB_CONFIG overridden as `systemctl edit` would, and
 * /usr/local/bin/tcplb-console mapped to the built binary).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT } from '../helpers/cli.js';
import { reservePort, greetingVia, listen, namedEcho, waitFor } from '../helpers/net.js';

function unit(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of fs.readFileSync(path.join(ROOT, 'packaging/tcplb.service'), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    out.set(line.slice(0, i), [...(out.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
  }
  return out;
}

test('the unit file has what an operator expects', () => {
  const u = unit();
  assert.match(u.get('ExecStart')![0]!, /tcplb-console --headless --config /);
  assert.equal(u.get('ExecReload')![0], '/bin/kill -HUP $MAINPID');
  assert.equal(u.get('Restart')![0], 'on-failure');
  assert.equal(u.get('AmbientCapabilities')![0], 'CAP_NET_BIND_SERVICE');
  assert.ok(u.has('ProtectSystem') && u.has('NoNewPrivileges'));
});

test('ExecStart as written serves traffic and stops on SIGTERM', async (t) => {
  const be = await listen(namedEcho('unit'));
  t.after(() => be.close());
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-unit-'));
  const config = path.join(dir, 'config.json5');
  fs.writeFileSync(config, `{ listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } }, log: { access: null } }`);
  const u = unit();
  const env: Record<string, string> = {};
  for (const e of u.get('Environment') ?? []) {
    const [k, v] = e.split('=') as [string, string];
    env[k] = v;
  }
  env['TCPLB_CONFIG'] = config; // the drop-in override
  const argv = u.get('ExecStart')![0]!.split(/\s+/).map((w) => w.replace(/\$\{(\w+)\}/g, (_, k: string) => env[k] ?? ''));
  assert.equal(argv[0], '/usr/local/bin/tcplb-console');
  const child = spawn(process.execPath, [BIN, ...argv.slice(1)], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await waitFor(() => /serving/.test(err), { timeoutMs: 5000, what: 'serving' });
  assert.equal(await greetingVia(port), 'unit');
  child.kill('SIGTERM');
  assert.equal(await new Promise((r) => child.on('close', r)), 0);
});
