/** Plain `tcplb-console`: attach when a live tcplb answers the config's control socket, else start the proxy. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { chooseRun, instanceAnswers } from '../../../src/cli/attach.js';
import { parseCommand } from '../../../src/cli/args.js';

test('chooseRun: attach only on a terminal, with a socket, when it answers', async () => {
  const yes = async (): Promise<boolean> => true;
  const no = async (): Promise<boolean> => false;
  assert.equal(await chooseRun({ console: true, socket: '/s', answers: yes }), 'attach');
  assert.equal(await chooseRun({ console: true, socket: '/s', answers: no }), 'run');
  assert.equal(await chooseRun({ console: false, socket: '/s', answers: yes }), 'run', '--headless or no TTY never attaches');
  assert.equal(await chooseRun({ console: true, socket: null, answers: yes }), 'run', 'no control socket configured');
});

test('instanceAnswers: a live server that answers status is live; a stale socket file, a silent server and no file are not', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const live = path.join(dir, 'live');
  const silent = path.join(dir, 'silent');
  const servers = [
    net.createServer((s) => s.on('data', () => s.write('{"id":1,"ok":true,"message":"status","protocol":1}\n'))),
    net.createServer((s) => s.on('error', () => {})),
  ];
  await new Promise<void>((r) => servers[0]!.listen(live, r));
  await new Promise<void>((r) => servers[1]!.listen(silent, r));
  t.after(() => {
    for (const s of servers) s.close();
  });
  // A path where nothing listens (a crashed tcplb's leftover file): connect is refused.
  const stale = path.join(dir, 'stale');
  fs.writeFileSync(stale, '');
  assert.equal(await instanceAnswers(live), true);
  assert.equal(await instanceAnswers(silent, 300), false);
  assert.equal(await instanceAnswers(stale), false);
  assert.equal(await instanceAnswers(path.join(dir, 'none')), false);
});

test('args: attach [TARGET...] [--socket T]... [--fleet F] [-c CONFIG]; --socket on a plain start names the instance to attach to', () => {
  assert.deepEqual(parseCommand(['attach']), { kind: 'attach', targets: [], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['attach', '--socket', '/run/tcplb/tcplb.sock']), { kind: 'attach', targets: ['/run/tcplb/tcplb.sock'], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['attach', '-c', '/etc/tcplb/config.json5']), { kind: 'attach', targets: [], fleet: undefined, config: '/etc/tcplb/config.json5' });
  assert.deepEqual(parseCommand(['attach', 'ssh://lb1', 'ssh://lb2/run/x.sock', '--socket', '/s']), { kind: 'attach', targets: ['ssh://lb1', 'ssh://lb2/run/x.sock', '/s'], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['attach', '--fleet', 'fleet.json5']), { kind: 'attach', targets: [], fleet: 'fleet.json5', config: 'config.json5' });
  assert.deepEqual(parseCommand(['--socket', '/s']), { kind: 'run', config: 'config.json5', headless: false, socket: '/s' });
  assert.throws(() => parseCommand(['--socket', '/s', '--socket', '/t']), /several --socket go with ctl and attach only/);
  assert.throws(() => parseCommand(['--fleet', 'f.json5']), /--fleet goes with ctl and attach/);
  assert.throws(() => parseCommand(['attach', '--headless']), /attach cannot be combined/);
});
