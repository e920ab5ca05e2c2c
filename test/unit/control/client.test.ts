import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runCtl } from '../../../src/control/client.js';
import { capture, tmpDir } from './fake-actions.js';

async function ctl(args: string[], sock: string, timeoutMs?: number): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCtl(args, sock, out, err, timeoutMs);
  return { code, out: out.text, err: err.text };
}

/** A fake server that answers each connection with `respond(requestLine)` (or never, for undefined). */
async function fakeServer(respond: (line: string, s: net.Socket) => void): Promise<{ sock: string; seen: string[]; close: () => Promise<void> }> {
  const dir = tmpDir();
  const sock = path.join(dir, 's');
  const seen: string[] = [];
  const clients = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    clients.add(s);
    let buf = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      seen.push(buf.slice(0, nl));
      respond(buf.slice(0, nl), s);
    });
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  return {
    sock,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const c of clients) c.destroy();
        srv.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          r();
        });
      }),
  };
}

test('usage errors exit 2 without connecting', async () => {
  const cases: [string[], RegExp][] = [
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['drain'], /"drain" needs a backend as upstream\/host:port/],
    [['check', '  '], /needs a backend/],
    [['status', 'extra'], /takes no arguments/],
    [['kill', 'a/b:1', 'c/d:2'], /takes one backend/],
  ];
  for (const [args, re] of cases) {
    const r = await ctl(args, '/nonexistent/tcplb.sock');
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, re);
    assert.match(r.err, /usage: tcplb-console ctl \[--socket TARGET\]\.\.\. \[--fleet FILE\] CMD \[U\/S\]\n  CMD: status \| drain U\/S/);
    assert.equal(r.out, '');
  }
});

test('a missing socket exits 1 with a hint', async () => {
  const dir = tmpDir();
  const sock = path.join(dir, 'gone.sock');
  const r = await ctl(['status'], sock);
  assert.equal(r.code, 1);
  assert.equal(r.err, `cannot reach tcplb at ${sock}: ENOENT (is it running? is control.socket set in the config?)\n`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('requests carry the command, backend and an id', async () => {
  const f = await fakeServer((line, s) => s.write(`${JSON.stringify({ id: JSON.parse(line).id, ok: true, message: 'fine' })}\n`));
  assert.equal((await ctl(['disable', 'smtp/[::1]:25'], f.sock)).out, 'fine\n');
  assert.deepEqual(JSON.parse(f.seen[0]!), { cmd: 'disable', backend: 'smtp/[::1]:25', id: 1 });
  await f.close();
});

test('no answer within the timeout exits 1', async () => {
  const f = await fakeServer(() => {});
  const t0 = Date.now();
  const r = await ctl(['check', 'a/b:1'], f.sock, 150);
  assert.equal(r.code, 1);
  assert.match(r.err, /no answer from tcplb at .* within 0.15 s/);
  assert.ok(Date.now() - t0 < 2000);
  await f.close();
});

test('a server that hangs up or talks nonsense exits 1', async () => {
  const hang = await fakeServer((_l, s) => s.end());
  assert.match((await ctl(['status'], hang.sock)).err, /closed the connection without an answer/);
  await hang.close();
  const junk = await fakeServer((_l, s) => s.write('<html>\n'));
  const r = await ctl(['status'], junk.sock);
  assert.equal(r.code, 1);
  assert.match(r.err, /unreadable reply: <html>/);
  await junk.close();
  const noEol = await fakeServer((_l, s) => s.end('{"ok":false,"error":"nope"}'));
  assert.deepEqual(await ctl(['reload'], noEol.sock), { code: 1, out: '', err: 'nope\n' });
  await noEol.close();
});

test('a reply split over many writes is reassembled', async () => {
  const body = JSON.stringify({ ok: true, message: 'status', data: { pad: 'é'.repeat(300_000) } }) + '\n';
  const f = await fakeServer((_l, s) => {
    const b = Buffer.from(body);
    for (let i = 0; i < b.length; i += 4093) s.write(b.subarray(i, i + 4093));
  });
  const r = await ctl(['status'], f.sock);
  assert.equal(r.code, 0);
  assert.equal(JSON.parse(r.out).pad.length, 300_000);
  await f.close();
});

test('a server of another protocol version is refused with a clear message, exit 1', async () => {
  const v2 = await fakeServer((line, s) => s.write(`${JSON.stringify({ id: JSON.parse(line).id, ok: true, message: 'x', protocol: 2, data: {} })}\n`));
  const st = await ctl(['status'], v2.sock);
  assert.deepEqual([st.code, st.out], [1, '']);
  assert.match(st.err, /^tcplb at .* speaks control protocol 2; this tcplb-console speaks protocol 1: use the tcplb-console of the running tcplb's release\n$/);
  const w = await ctl(['watch'], v2.sock);
  assert.deepEqual([w.code, w.out], [1, '']);
  assert.match(w.err, /speaks control protocol 2; this tcplb-console speaks protocol 1/);
  await v2.close();
  // A tcplb from before versioning: status works as before, watch says what is wrong.
  const old = await fakeServer((line, s) => {
    const req = JSON.parse(line) as { cmd: string; id: number };
    s.write(`${JSON.stringify(req.cmd === 'watch' ? { id: req.id, ok: false, error: 'unknown cmd "watch" (one of status, drain)' } : { id: req.id, ok: true, message: 'status', data: { pid: 1 } })}\n`);
  });
  assert.equal((await ctl(['status'], old.sock)).code, 0);
  const ow = await ctl(['watch', '--json'], old.sock);
  assert.equal(ow.code, 1);
  assert.match(ow.err, /does not support watch \(an older tcplb\)/);
  await old.close();
});

test('ctl watch: usage errors exit 2', async () => {
  const r = await ctl(['watch', '--jsn'], '/nonexistent/tcplb.sock');
  assert.equal(r.code, 2);
  assert.match(r.err, /"watch" takes only --json \(got "--jsn"\)/);
});
