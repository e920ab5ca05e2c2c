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
import { loadConfigFile } from '../../src/config/index.js';
import { BIN, ROOT, runCli } from '../helpers/cli.js';
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

test('the control socket has a fixed home: /run/tcplb/tcplb.sock in the unit\'s RuntimeDirectory', async () => {
  const u = unit();
  assert.deepEqual(u.get('RuntimeDirectory'), ['tcplb']);
  assert.ok(['0750', '0700'].includes(u.get('RuntimeDirectoryMode')?.[0] ?? ''), `RuntimeDirectoryMode ${u.get('RuntimeDirectoryMode')?.[0]}: not closed to other users`);
  // The packaged production config puts every file it writes in the unit's own folders.
  const r = await loadConfigFile(path.join(ROOT, 'packaging/config.json5'));
  assert.ok(r.ok, r.ok ? '' : r.issues.map((i) => i.message).join('\n'));
  assert.equal(r.config.control.socket, '/run/tcplb/tcplb.sock');
  assert.equal(r.config.stateFile, `/var/lib/${u.get('StateDirectory')![0]}/tcplb.state`);
  assert.equal(path.dirname(r.config.log.access!), `/var/log/${u.get('LogsDirectory')![0]}`);
  // The unit tells the operator where to reach it.
  assert.match(fs.readFileSync(path.join(ROOT, 'packaging/tcplb.service'), 'utf8'), /tcplb-console ctl --socket \/run\/tcplb\/tcplb\.sock status/);
});

test('ExecStart as written serves traffic and stops on SIGTERM', async (t) => {
  const be = await listen(namedEcho('unit'));
  t.after(() => be.close());
  const port = await reservePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-unit-'));
  const config = path.join(dir, 'config.json5');
  const u = unit();
  // The RuntimeDirectory as systemd makes it (here under the test's folder).
  const runDir = path.join(dir, 'run', u.get('RuntimeDirectory')![0]!);
  fs.mkdirSync(runDir, { recursive: true, mode: Number.parseInt(u.get('RuntimeDirectoryMode')![0]!, 8) });
  const sock = path.join(runDir, 'tcplb.sock');
  fs.writeFileSync(config, `{ listeners: [{ listen: "127.0.0.1:${port}", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:${be.port}"] } }, log: { access: null }, control: { socket: ${JSON.stringify(sock)} } }`);
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
  // `ctl --socket` reaches it there, as the unit's comment tells the operator.
  const st = await runCli(['ctl', '--socket', sock, 'status']);
  assert.equal(st.code, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as { listeners: unknown[] }).listeners.length, 1);
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  child.kill('SIGTERM');
  assert.equal(await new Promise((r) => child.on('close', r)), 0);
});
