/**
 * One count of open connections per backend, the engine's: what balancing
 * and maxConns use is what the snapshot (console, `ctl status`) and the
 * metrics show. The load test of the same (reloads, kills, drains) is
 * test/faults/counts.test.ts.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { startTestApp } from '../helpers/app.js';
import { blackhole, connect, waitFor } from '../helpers/net.js';
import { reservePort } from '../helpers/ports.js';

test('a session that ends while the connect to its backend hangs (idle timeout) takes nothing off that backend\'s open count', { timeout: 20_000 }, async (t) => {
  // A listen(0) socket that never accepts: its queue takes the first connect or two, later ones hang.
  const hole = await blackhole('127.0.0.1', false);
  t.after(() => hole.close());
  const port = await reservePort();
  const app = await startTestApp(`{
    listeners: [{ listen: "127.0.0.1:${port}", upstream: "u", connectTimeout: "1500ms", idleTimeout: "400ms" }],
    upstreams: { u: { servers: [{ address: "127.0.0.1:${hole.port}", maxFails: 0 }] } },
  }`);
  t.after(() => app.stopNow());
  const id = `u/127.0.0.1:${hole.port}`;
  const open = (): number => app.engine.activeByBackend().get(id) ?? 0;
  const clients: net.Socket[] = [];
  // Connected clients keep sending (the kernel queues it for the backend) so the idle timeout spares them.
  const talk = setInterval(() => clients.forEach((c) => c.writable && c.write('x')), 50);
  t.after(() => (clearInterval(talk), clients.forEach((c) => c.destroy())));
  let hanging = false;
  for (let i = 0; i < 4 && !hanging; i++) {
    const c = await connect(port);
    c.on('error', () => {});
    try {
      await waitFor(() => open() === clients.length + 1, { what: 'the backend connect', timeoutMs: 300 });
      clients.push(c);
    } catch {
      hanging = true;
    }
  }
  assert.ok(hanging, 'no backend connect hung: the blackhole took every connect');
  const reached = clients.length;
  assert.ok(reached >= 1, 'the first backend connect should complete');
  // The dialling session ends, the connected ones carry on. The JS engine idles it out (nothing
  // moved for idleTimeout); the native engine's idle timer starts at the connect, so it times out.
  await waitFor(() => app.records.length === 1, { what: "the dialling session's end", timeoutMs: 4000 });
  assert.match(app.records[0]!.reason, /^(idle_timeout|connect_failed)$/);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(app.engine.sessions(0).total, reached, 'sessions still open');
  assert.equal(open(), reached, `engine count after a session ended while dialling (${reached} connections are open to the backend)`);
  const view = (): { active: number; total: number } => app.actions.snapshot().upstreams[0]!.backends[0]!;
  assert.equal(view().active, reached, 'snapshot (ctl status) open count');
  clearInterval(talk);
  for (const c of clients) c.destroy();
  await waitFor(() => app.engine.sessions(0).total === 0, { what: 'sessions to end', timeoutMs: 3000 });
  assert.equal(open(), 0);
  assert.equal(view().active, 0);
  assert.equal(view().total, reached, 'connections made to the backend');
});
