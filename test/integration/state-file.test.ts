/**
 * The state file seen from the running app: what start-up logs for a foreign
 * or stale file, and what `ctl` (and the event log) say when a change is
 * applied but cannot be saved.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCtl } from '../../src/control/client.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { reservePort, waitFor } from '../helpers/net.js';

function capture(): { text: string; write(s: string): boolean } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

/** An app with two backends (no checks: they stay UP), a control socket and `stateFile` at `state`. */
async function start(t: import('node:test').TestContext, dir: string, state: string): Promise<{ app: TestApp; ids: string[]; sock: string }> {
  const ports = [await reservePort(), await reservePort(), await reservePort()];
  const sock = path.join(dir, 'c.sock');
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${ports[0]}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${ports[1]}", "127.0.0.1:${ports[2]}"] } },
    control: { socket: ${JSON.stringify(sock)} },
    stateFile: ${JSON.stringify(state)},
  }`);
  t.after(() => app.stopNow());
  return { app, ids: [`u/127.0.0.1:${ports[1]}`, `u/127.0.0.1:${ports[2]}`], sock };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-sf-'));
}

test('start-up: a state file pointing at another file is reported once, by path, without its content', async (t) => {
  const dir = tmpDir();
  const state = path.join(dir, 'tcplb.state');
  fs.writeFileSync(path.join(dir, 'secret'), 'SECRET-TOKEN-4242 = hunter2\n');
  fs.symlinkSync(path.join(dir, 'secret'), state);
  const { app } = await start(t, dir, state);
  const about = app.lines.filter((l) => l.includes(state));
  assert.equal(about.length, 1, about.join('\n'));
  assert.match(about[0]!, /state file \S+ is corrupt \(not valid JSON\); starting without saved operator states/);
  assert.equal(about[0]!.split(state).length - 1, 1, `the path is named once: ${about[0]}`);
  assert.ok(!app.lines.some((l) => l.includes('SECRET')), 'no byte of the file reaches the log');
});

test('start-up: 5,000 entries of removed backends give one summary line; the live one is reapplied', async (t) => {
  const dir = tmpDir();
  const state = path.join(dir, 'tcplb.state');
  const ports = [await reservePort(), await reservePort(), await reservePort()];
  const live = `u/127.0.0.1:${ports[1]}`;
  const stale = Array.from({ length: 5000 }, (_, i) => ({ backend: `old/10.0.${i >> 8}.${i & 255}:143`, admin: 'drain' }));
  fs.writeFileSync(state, JSON.stringify({ version: 1, savedAt: new Date().toISOString(), backends: [...stale, { backend: live, admin: 'disabled' }] }));
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${ports[0]}", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:${ports[1]}", "127.0.0.1:${ports[2]}"] } },
    stateFile: ${JSON.stringify(state)},
  }`);
  t.after(() => app.stopNow());
  const staleLines = app.lines.filter((l) => l.includes('old/10.0.'));
  assert.equal(staleLines.length, 1, `one line for all stale entries, got ${staleLines.length}`);
  assert.match(staleLines[0]!, /state file \S+: 5,000 entries for backends no longer in the config dropped \(old\/10\.0\.0\.0:143 drain, old\/10\.0\.0\.1:143 drain, old\/10\.0\.0\.2:143 drain, …\)/);
  assert.equal(app.runtime.backend(live)?.admin, 'disabled');
  assert.ok(app.lines.some((l) => l.includes(`state file: ${live} disabled`)));
  // Saved once after the restore: the dropped entries are gone from the file, so the next start reads one entry.
  await waitFor(() => JSON.parse(fs.readFileSync(state, 'utf8')).backends.length === 1, { timeoutMs: 3000, what: 'state file rewritten' });
  assert.deepEqual(JSON.parse(fs.readFileSync(state, 'utf8')).backends, [{ backend: live, admin: 'disabled' }]);
});

test('ctl drain/disable whose save fails: applied, "not persisted" with the error in the reply and the event log, exit 1', async (t) => {
  const dir = tmpDir();
  const stDir = path.join(dir, 'st');
  const state = path.join(stDir, 'tcplb.state');
  fs.mkdirSync(stDir);
  const { app, ids, sock } = await start(t, dir, state);
  const ctl = async (...args: string[]) => {
    const out = capture();
    const err = capture();
    const code = await runCtl(args, sock, out, err);
    return { code, out: out.text, err: err.text };
  };

  // The state folder vanished (deleted, unmounted): the save cannot create its file.
  fs.rmSync(stDir, { recursive: true });
  const d = await ctl('drain', ids[0]!);
  assert.equal(d.code, 1, 'scripts relying on persistence see a failure');
  assert.match(d.out, /^u\/\S+ draining: no new connections; 0 open continue — applied, not persisted: cannot save state file \S+tcplb\.state: ENOENT/);
  assert.equal(app.runtime.backend(ids[0]!)?.admin, 'drain', 'the drain itself applies');
  const ev = app.actions.snapshot().events.filter((e) => e.kind === 'action' && !e.ok);
  assert.equal(ev.length, 1);
  assert.match(ev[0]!.text, /^drain by ctl \(user \S+, pid \d+\): applied, not persisted: cannot save state file .*ENOENT/);
  assert.ok(app.lines.some((l) => /cannot save state file .*ENOENT/.test(l)), 'and the log has it');

  // A full disk: writing the tmp file fails with ENOSPC.
  fs.mkdirSync(stDir);
  const realOpen = fsp.open;
  t.mock.method(fsp, 'open', async (...a: Parameters<typeof fsp.open>) => {
    const fh = await realOpen(...a);
    if (String(a[0]).includes('.tmp-')) {
      t.mock.method(fh, 'writeFile', async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      });
    }
    return fh;
  });
  const x = await ctl('disable', ids[1]!);
  assert.equal(x.code, 1);
  assert.match(x.out, /disabled: .* — applied, not persisted: cannot save state file \S+: ENOSPC: no space left on device/);
  assert.ok(app.actions.snapshot().events.some((e) => /^disable by ctl \(user \S+, pid \d+\): applied, not persisted: .*ENOSPC/.test(e.text)));
  assert.deepEqual(fs.readdirSync(stDir), [], 'no tmp file left on the full disk');
  t.mock.restoreAll();

  // Space again: repeating the command persists it (and exits 0).
  const again = await ctl('drain', ids[0]!);
  assert.equal(again.code, 0, again.out);
  assert.doesNotMatch(again.out, /not persisted/);
  const saved = JSON.parse(fs.readFileSync(state, 'utf8')) as { backends: { backend: string; admin: string }[] };
  assert.deepEqual(saved.backends, [
    { backend: ids[0], admin: 'drain' },
    { backend: ids[1], admin: 'disabled' },
  ]);
});
