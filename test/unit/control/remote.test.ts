/**
 * The attached console's data source against a fake control server that
 * speaks the watch protocol: first snapshot, streamed events merged, actions
 * as separate requests with their replies as results, a lost link said and
 * retried, a protocol mismatch refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { attachRemote } from '../../../src/control/remote.js';
import { PROTOCOL_VERSION } from '../../../src/control/protocol.js';
import type { Snapshot } from '../../../src/runtime/snapshot.js';
import { waitFor } from '../../helpers/wait.js';
import { KNOWN, SNAPSHOT, tmpDir } from './fake-actions.js';

interface Fake {
  sock: string;
  /** Request lines received, in order. */
  seen: string[];
  /** Connections watching now. */
  watchers: Set<net.Socket>;
  send(s: net.Socket, msg: unknown): void;
  /** Stop listening and drop everyone (the tcplb went away). */
  stop(): Promise<void>;
  /** Listen again on the same path (the tcplb came back). */
  start(): Promise<void>;
}

const snap = (over: Partial<Snapshot>): Snapshot => ({ ...SNAPSHOT, ...over }) as Snapshot;

/** A fake tcplb: watch gets a reply and a first snapshot; other requests get `answer(req)`. */
async function fakeTcplb(opts: { protocol?: unknown; pid?: number; answer?: (req: Record<string, unknown>) => unknown } = {}): Promise<Fake> {
  const dir = tmpDir();
  const sock = path.join(dir, 's');
  const seen: string[] = [];
  const watchers = new Set<net.Socket>();
  const all = new Set<net.Socket>();
  let srv: net.Server;
  const send = (s: net.Socket, msg: unknown): void => {
    if (!s.destroyed) s.write(`${JSON.stringify(msg)}\n`);
  };
  const start = async (): Promise<void> => {
    srv = net.createServer((s) => {
      all.add(s);
      s.on('close', () => {
        all.delete(s);
        watchers.delete(s);
      });
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          seen.push(line);
          const req = JSON.parse(line) as Record<string, unknown>;
          if (req.cmd === 'watch') {
            const protocol = 'protocol' in opts ? opts.protocol : PROTOCOL_VERSION;
            send(s, { id: req.id, ok: true, message: 'watching', protocol, pid: opts.pid ?? 4242, started: Date.UTC(2024, 0, 1, 12), version: '0.1.0', config: { file: '/etc/tcplb/config.json5', watch: 'static', loadedAt: 1 }, interval: req.interval, events: true, snapshots: true });
            watchers.add(s);
            send(s, { type: 'snapshot', data: snap({ time: 10, events: [{ time: 5, kind: 'action', text: 'old event' }] }) });
          } else {
            send(s, { id: req.id, ...(opts.answer?.(req) as object) });
          }
        }
      });
    });
    await new Promise<void>((r) => srv.listen(sock, r));
  };
  await start();
  return {
    sock,
    seen,
    watchers,
    send,
    start,
    stop: () =>
      new Promise<void>((r) => {
        for (const c of all) c.destroy();
        srv.close(() => r());
      }),
  };
}

function cleanup(f: Fake): () => Promise<void> {
  return async () => {
    await f.stop().catch(() => {});
    fs.rmSync(path.dirname(f.sock), { recursive: true, force: true });
  };
}

test('attach: the first snapshot and the instance facts; streamed events merge into the log, a new snapshot replaces it', async (t) => {
  const f = await fakeTcplb();
  t.after(cleanup(f));
  const src = await attachRemote(f.sock, { intervalMs: 200 });
  t.after(() => src.attachment.close());
  assert.deepEqual(JSON.parse(f.seen[0]!), { cmd: 'watch', id: 1, interval: 200, events: true, snapshots: true });
  const link = src.attachment.link();
  assert.equal(link.pid, 4242);
  assert.equal(link.config, '/etc/tcplb/config.json5');
  assert.equal(link.started, Date.UTC(2024, 0, 1, 12));
  assert.equal(link.lost, undefined);
  assert.equal(src.snapshot().time, 10);
  assert.deepEqual(src.snapshot().events.map((e) => e.text), ['old event']);

  const w = [...f.watchers][0]!;
  f.send(w, { type: 'event', data: { time: 11, kind: 'action', backend: KNOWN, text: `drain ${KNOWN} by ctl (user bob, pid 7)` } });
  await waitFor(() => src.snapshot().events.length === 2, { what: 'the streamed event' });
  assert.match(src.snapshot().events[1]!.text, /by ctl \(user bob, pid 7\)/);

  // The next snapshot has every event streamed before it: it replaces the list (no duplicates).
  f.send(w, { type: 'snapshot', data: snap({ time: 20, events: [{ time: 5, kind: 'action', text: 'old event' }, { time: 11, kind: 'action', text: 'drained' }] }) });
  await waitFor(() => src.snapshot().time === 20, { what: 'the second snapshot' });
  assert.deepEqual(src.snapshot().events.map((e) => e.text), ['old event', 'drained']);
});

test('attach: actions are requests on their own connections; replies become results', async (t) => {
  const f = await fakeTcplb({
    answer: (req) => {
      if (req.backend !== undefined && req.backend !== KNOWN) return { ok: false, error: `no backend "${String(req.backend)}"` };
      switch (req.cmd) {
        case 'drain':
          return { ok: true, message: `${KNOWN} draining`, data: { persisted: false, error: 'state.json: EACCES' } };
        case 'enable':
          return { ok: true, message: `${KNOWN} enabled` };
        case 'check':
          return { ok: true, message: `${KNOWN}: pass L4_OK`, data: { ok: true, status: 'L4_OK', latencyMs: 1, detail: 'connected' } };
        case 'kill':
          return { ok: true, message: `${KNOWN}: closed 2 open connections` };
        case 'reload':
          return { ok: true, message: 'reloaded', data: { changes: ['+listener x 127.0.0.1:1'] } };
      }
      return { ok: false, error: 'unexpected' };
    },
  });
  t.after(cleanup(f));
  const src = await attachRemote(f.sock);
  t.after(() => src.attachment.close());

  const drained = await src.drain(KNOWN, 'console');
  assert.equal(drained.ok, true);
  assert.equal(drained.message, `${KNOWN} draining`);
  assert.equal(await drained.persisted, 'state.json: EACCES', 'a failed save is reported like in-process');
  const enabled = await src.enable(KNOWN, 'console');
  assert.deepEqual({ ok: enabled.ok, message: enabled.message, persisted: enabled.persisted }, { ok: true, message: `${KNOWN} enabled`, persisted: undefined });
  const bad = await src.disable('nope/1.2.3.4:1', 'console');
  assert.deepEqual(bad, { ok: false, message: 'no backend "nope/1.2.3.4:1"' });
  const checked = await src.check(KNOWN, 'console');
  assert.equal(checked.result?.status, 'L4_OK');
  assert.equal((await src.kill(KNOWN, 'console')).message, `${KNOWN}: closed 2 open connections`);
  assert.deepEqual(await src.reload('console'), { ok: true, message: 'reloaded', changes: ['+listener x 127.0.0.1:1'] });
  // One watch connection; every action its own request (the watching connection takes no commands).
  assert.deepEqual(
    f.seen.map((l) => (JSON.parse(l) as { cmd: string }).cmd),
    ['watch', 'drain', 'enable', 'disable', 'check', 'kill', 'reload'],
  );
});

test('attach: a lost link is said, the last data stays, actions fail with a reason, and the link comes back', async (t) => {
  const f = await fakeTcplb();
  t.after(cleanup(f));
  const src = await attachRemote(f.sock, { retryMs: 100 });
  t.after(() => src.attachment.close());
  await f.stop();
  await waitFor(() => src.attachment.link().lost !== undefined, { what: 'the link marked lost' });
  assert.equal(src.snapshot().time, 10, 'the last snapshot stays on screen');
  const r = await src.drain(KNOWN, 'console');
  assert.equal(r.ok, false);
  assert.match(r.message, /cannot reach tcplb/);
  // Retrying: the socket's gone, each attempt says so.
  await waitFor(() => /cannot reach tcplb|ENOENT|ECONNREFUSED/.test(src.attachment.link().lost ?? ''), { what: 'a failed retry' });
  fs.rmSync(f.sock, { force: true });
  await f.start();
  await waitFor(() => src.attachment.link().lost === undefined, { what: 'the link back', timeoutMs: 3000 });
  assert.equal(f.watchers.size, 1);
});

test('attach: a stream that goes silent counts as lost', async (t) => {
  const f = await fakeTcplb();
  t.after(cleanup(f));
  const src = await attachRemote(f.sock, { silenceMs: 200, retryMs: 60_000 });
  t.after(() => src.attachment.close());
  await waitFor(() => src.attachment.link().lost !== undefined, { what: 'silence noticed' });
  assert.match(src.attachment.link().lost!, /nothing from tcplb at .* for \d+ s/);
});

test('attach: an `end` line is a lost link with the server\'s reason', async (t) => {
  const f = await fakeTcplb();
  t.after(cleanup(f));
  const src = await attachRemote(f.sock, { retryMs: 60_000 });
  t.after(() => src.attachment.close());
  f.send([...f.watchers][0]!, { type: 'end', reason: 'dropped: too slow' });
  await waitFor(() => src.attachment.link().lost !== undefined, { what: 'end noticed' });
  assert.match(src.attachment.link().lost!, /dropped: too slow/);
});

test('attach: another protocol version, an older tcplb, or no tcplb at all is refused with a reason', async (t) => {
  const other = await fakeTcplb({ protocol: PROTOCOL_VERSION + 1 });
  t.after(cleanup(other));
  await assert.rejects(attachRemote(other.sock), new RegExp(`speaks control protocol ${PROTOCOL_VERSION + 1}; this tcplb-console speaks protocol ${PROTOCOL_VERSION}`));
  const old = await fakeTcplb({ protocol: undefined });
  t.after(cleanup(old));
  await assert.rejects(attachRemote(old.sock), /no protocol version/);
  await assert.rejects(attachRemote(path.join(tmpDir(), 'none.sock')), /cannot reach tcplb at .*none\.sock/);
});

test('attach: close detaches (the watch connection ends) and stops retrying', async (t) => {
  const f = await fakeTcplb();
  t.after(cleanup(f));
  const src = await attachRemote(f.sock, { retryMs: 50 });
  assert.equal(f.watchers.size, 1);
  src.attachment.close();
  await waitFor(() => f.watchers.size === 0, { what: 'the watcher gone' });
  const before = f.seen.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(f.seen.length, before, 'no reconnect after close');
});
