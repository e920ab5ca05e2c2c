/**
 * Fault 10: the control socket under abuse. Mode 0600; a stale socket file
 * (left by a SIGKILLed process) is replaced; garbage, partial lines, a 10 MB
 * line and 1,000 concurrent clients (in batches of 250) do not take it down,
 * and it still answers afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../../src/control/client.js';
import { startTestApp } from '../helpers/app.js';
import { reservePort, greetingVia, listen, namedEcho } from '../helpers/net.js';
import { waitUntil } from '../helpers/wait.js';
import { deadline, lo, sleep, tmpDir } from './helpers.js';

const HOST = lo(69);

/** Open a unix socket connection; collect reply lines until it closes or `untilLines` lines came. */
function session(sock: string): Promise<{ s: net.Socket; lines: () => string[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let buf = '';
    const lines: string[] = [];
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', () => {});
    s.once('connect', () => resolve({ s, lines: () => lines, closed }));
    s.once('error', reject);
  });
}

/** The reply lines once there are `n` (or what there is after `ms`: the assertions on them say what is missing). */
async function waitLines(get: () => string[], n: number, ms = 5000): Promise<string[]> {
  await waitUntil(() => get().length, { what: `${n} reply lines`, timeoutMs: ms, intervalMs: 10, until: (k) => k >= n });
  return get();
}

/** A stale socket file: a child listens on `sock`, then is SIGKILLed (nothing unlinks the file). */
async function staleSocket(sock: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
}

test('control socket: 0600, stale file replaced, garbage / partial / 10 MB lines / 1,000 clients survived, still answering', { timeout: 90_000 }, async (t) => {
  const be = await listen(namedEcho('A'), HOST);
  t.after(() => be.close());
  const port = await reservePort(HOST);
  const dir = tmpDir('ctl');
  const sock = path.join(dir, 'tcplb.sock');
  await staleSocket(sock);
  assert.ok(fs.lstatSync(sock).isSocket(), 'the stale socket file is there');
  // (Inode numbers are reused at once on this filesystem: that the app started on the path and answers is the proof.)

  // startTestApp writes its own temp config folder; name the socket by absolute path in ours.
  const app = await startTestApp(`{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u" }],
    upstreams: { u: { servers: ["${HOST}:${be.port}"] } },
    log: { access: null },
    control: { socket: ${JSON.stringify(sock)} },
  }`);
  t.after(() => app.stopNow());
  const st = fs.lstatSync(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600, `socket mode ${(st.mode & 0o777).toString(8)}`);
  const ok = async (): Promise<boolean> => (await request(sock, { cmd: 'status' }, 5000)).ok;
  assert.ok(await ok(), 'status before the abuse');
  const figures: string[] = [`mode ${(st.mode & 0o777).toString(8)}, stale socket replaced`];

  // Garbage: random binary lines, JSON of every wrong shape.
  {
    const c = await session(sock);
    const bad = [
      crypto.randomBytes(4096),
      Buffer.from('\n\n\r\n   \n'),
      Buffer.from('{"cmd":"status"\n'),
      Buffer.from('[]\nnull\n42\n"status"\n{"cmd":42}\n{"cmd":"drain"}\n{"cmd":"drain","backend":7}\n{"cmd":"nope","backend":"x"}\n'),
      Buffer.from('{"cmd":"status","id":{"x":1}}\n{"cmd":"__proto__"}\n{"__proto__":{"cmd":"status"}}\n{"cmd":"kill","backend":"u/' + 'z'.repeat(5000) + '"}\n'),
      Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0xc3, 0x28, 0x0a]),
    ];
    for (const b of bad) c.s.write(b);
    c.s.write('{"cmd":"status","id":"last"}\n');
    const lines = await waitLines(c.lines, 1, 5000).then(async () => {
      await waitUntil(() => c.lines().some((l) => l.includes('"last"')), { what: 'the reply to the status after the garbage', timeoutMs: 5000, intervalMs: 10 });
      return c.lines();
    });
    c.s.destroy();
    const parsed = lines.map((l) => JSON.parse(l) as { ok: boolean; id?: string });
    assert.ok(parsed.some((p) => p.id === 'last' && p.ok), 'no answer to the status after the garbage');
    assert.ok(parsed.filter((p) => !p.ok).length >= 10, `only ${parsed.filter((p) => !p.ok).length} error replies to the garbage`);
    figures.push(`garbage: ${parsed.length} replies (${parsed.filter((p) => !p.ok).length} errors), then status ok`);
  }

  // Partial lines: a request split byte by byte, then one without newline ended by a half-close.
  {
    const c = await session(sock);
    for (const ch of '{"cmd":"status","id":1}\n') {
      c.s.write(ch);
      await sleep(2); // the scenario: one byte per segment
    }
    c.s.end('{"cmd":"status","id":2}');
    await c.closed;
    const ids = c.lines().map((l) => (JSON.parse(l) as { id: number; ok: boolean }).id);
    assert.deepEqual(ids, [1, 2], 'partial lines: answers by id');
    figures.push(`` + 'partial lines answered (byte-by-byte and at half-close)');
  }

  // A 10 MB line: refused, connection closed, server alive.
  {
    const c = await session(sock);
    const t0 = Date.now();
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    for (let i = 0; i < 10 && !c.s.destroyed; i++) c.s.write(chunk);
    c.s.write('\n');
    await Promise.race([c.closed, deadline(10_000)]);
    const closedMs = Date.now() - t0;
    assert.ok(c.s.destroyed || c.s.readableEnded, 'the 10 MB line did not get the connection closed');
    const reply = c.lines()[0] ?? '';
    assert.match(reply, /too long/, 'no "too long" reply');
    assert.ok(await ok(), 'status after the 10 MB line');
    figures.push(`10 MB line: refused (${JSON.stringify(reply.slice(0, 60))}) and closed in ${closedMs} ms`);
  }

  // 1,000 concurrent clients, in batches of 250, each status + a drain/enable pair.
  {
    const id = `u/${HOST}:${be.port}`;
    const t0 = Date.now();
    let answered = 0;
    const failures: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      await Promise.all(
        Array.from({ length: 250 }, async (_, k) => {
          try {
            const c = await session(sock);
            c.s.write(`{"cmd":"status","id":1}\n{"cmd":"${k % 2 === 0 ? 'drain' : 'enable'}","backend":"${id}","id":2}\n{"cmd":"enable","backend":"${id}","id":3}\n`);
            const lines = await waitLines(c.lines, 3, 20_000);
            c.s.destroy();
            const r = lines.map((l) => JSON.parse(l) as { ok: boolean; id: number });
            if (r.length === 3 && r.every((x) => x.ok)) answered++;
            else failures.push(JSON.stringify(lines).slice(0, 200));
          } catch (e) {
            failures.push((e as NodeJS.ErrnoException).code ?? (e as Error).message);
          }
        }),
      );
    }
    const ms = Date.now() - t0;
    figures.push(`1,000 clients (4 batches of 250): ${answered} fully answered in ${(ms / 1000).toFixed(1)} s${failures.length > 0 ? `, failures ${JSON.stringify(failures.slice(0, 3))}` : ''}`);
    assert.equal(answered, 1000, `only ${answered} of 1,000 clients answered: ${failures.slice(0, 3).join('; ')}`);
  }

  assert.ok(await ok(), 'status after everything');
  assert.equal(await greetingVia(port, HOST), 'A', 'traffic still relayed');
  console.log(`control socket: ${figures.join('; ')}; still answering`);
  const warn = app.lines.filter((l) => /control/.test(l));
  console.log(`control socket: ${warn.length} control log lines, e.g. ${warn.slice(0, 2).map((l) => l.trim().slice(25, 140)).join(' | ')}`);
  assert.equal(warn.filter((l) => /control: control:/.test(l)).length, 0, `log lines prefixed twice: ${warn[0]?.trim()}`);
});
