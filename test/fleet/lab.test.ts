/**
 * The fleet lab itself: namespaces on one segment, a tcplb in one relaying
 * to a backend in another for a client in a third; a pulled cable (the
 * node's link down) stops new connections and putting it back restores them;
 * everything is gone after cleanup.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { createLab, requireNetns } from './lab.js';

const AGENTS = path.join(path.dirname(BIN), '../../test/fleet/agents');

test('lab: tcplb in one namespace relays a client in another to a backend in a third; a pulled cable stops it', async (t) => {
  if (!requireNetns(t)) return;
  const lab = createLab(t, ['be', 'lb1', 'client'], 91);
  const be = lab.spawn('be', process.execPath, [path.join(AGENTS, 'echo.js'), 'A', `${lab.node('be').ip}:1143`]);
  await waitFor(() => be.output().includes('listening'), { what: 'the backend', timeoutMs: 5000 });
  const cfg = path.join(lab.dir, 'lb1.json5');
  fs.writeFileSync(cfg, `{ listeners: [{ listen: "0.0.0.0:143", upstream: "u" }], upstreams: { u: { servers: ["${lab.node('be').ip}:1143"] } }, log: { access: null } }`);
  const lb = lab.spawn('lb1', process.execPath, [BIN, '--headless', '-c', cfg]);
  await waitFor(() => /serving/.test(lb.output()), { what: 'tcplb in lb1', timeoutMs: 8000 });
  const probe = (): string => lab.exec('client', process.execPath, [path.join(AGENTS, 'prober.js'), `${lab.node('lb1').ip}:143`, '50', '1']);
  const r1 = JSON.parse(probe()) as { ok: number; failed: number; names: Record<string, number> };
  assert.ok(r1.ok >= 10 && r1.failed === 0 && r1.names.A === r1.ok, JSON.stringify(r1));
  lab.link('lb1', false);
  const r2 = JSON.parse(probe()) as { ok: number; failed: number };
  assert.equal(r2.ok, 0, 'a pulled cable still let connections through');
  lab.link('lb1', true);
  await waitFor(() => (JSON.parse(probe()) as { ok: number }).ok > 0, { what: 'connections after the cable is back', timeoutMs: 8000 });
  await lab.cleanup();
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.doesNotMatch(left, new RegExp(`^tl${process.pid}-`, 'm'));
});
