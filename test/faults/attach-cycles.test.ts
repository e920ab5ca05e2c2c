/**
 * 100 attach/detach cycles of the console's remote source against one real
 * tcplb: `attachRemote(socket)` (connect, `watch`, first snapshot), then
 * `attachment.close()` (what `q` does). Nothing may be left behind on either
 * side: the tcplb's open descriptors (each watcher holds its socket; the
 * watcher count is not in `status`, so descriptors stand for it) and the
 * client's active handles (sockets, timers: the silence timer, the retry
 * timer) come back to where they were before the first cycle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attachRemote } from '../../src/control/remote.js';
import { greetingVia } from '../helpers/net.js';
import { waitForSteady } from '../helpers/wait.js';
import { fdCount, lo, proxyWithSocket } from './helpers.js';

const HOST = lo(69);
const CYCLES = 100;

/** This process's ref'd handles by kind (what would keep it alive or leak). */
function handles(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) n[k] = (n[k] ?? 0) + 1;
  return { Timeout: n.Timeout ?? 0, PipeWrap: n.PipeWrap ?? 0, PipeConnectWrap: n.PipeConnectWrap ?? 0 };
}

test(`${CYCLES} attachRemote/close cycles leave no descriptor in tcplb and no handle in the client`, { timeout: 60_000 }, async (t) => {
  const { proxy, port, sock, id } = await proxyWithSocket(t, HOST, 'attach-cycles');
  const fds0 = await waitForSteady(() => fdCount(proxy.pid), { what: 'tcplb descriptors at rest', quietMs: 300 });
  const h0 = await waitForSteady(() => JSON.stringify(handles()), { what: 'client handles at rest', quietMs: 200 });

  // The check itself is live: an attached source holds a descriptor in tcplb and handles here.
  const held = await attachRemote(sock, { intervalMs: 100 });
  const fdsHeld = fdCount(proxy.pid);
  const hHeld = handles();
  held.attachment.close();
  assert.ok(fdsHeld > fds0, `an attached console holds a tcplb descriptor (${fds0} at rest, ${fdsHeld} attached)`);
  assert.ok(hHeld.PipeWrap > JSON.parse(h0).PipeWrap, `an attached console holds a socket here: ${JSON.stringify(hHeld)} vs ${h0}`);

  const t0 = performance.now();
  for (let i = 0; i < CYCLES; i++) {
    const src = await attachRemote(sock, { intervalMs: 100 });
    try {
      assert.equal(src.attachment.link().pid, proxy.pid, `cycle ${i}: attached to the tcplb`);
      // Half the cycles act first (an action is a request on its own connection, closed after its reply).
      if (i % 2 === 1) {
        const r = await (i % 4 === 1 ? src.drain(id, 'console') : src.enable(id, 'console'));
        assert.equal(r.ok, true, `cycle ${i}: ${r.message}`);
      }
    } finally {
      src.attachment.close(); // an open source retries for ever: never leave one behind, even on a failure
    }
  }
  const ms = performance.now() - t0;

  const fds1 = await waitForSteady(() => fdCount(proxy.pid), { what: `tcplb descriptors after ${CYCLES} cycles`, quietMs: 500, timeoutMs: 10_000 });
  const h1 = await waitForSteady(() => JSON.stringify(handles()), { what: `client handles after ${CYCLES} cycles`, quietMs: 300, timeoutMs: 10_000 });
  console.log(`attach-cycles: ${CYCLES} cycles in ${ms.toFixed(0)} ms; tcplb fds ${fds0} -> ${fds1}; client handles ${h0} -> ${h1}`);
  assert.equal(fds1, fds0, 'tcplb descriptors back to rest');
  assert.deepEqual(JSON.parse(h1), JSON.parse(h0), 'client handles back to rest');
  assert.equal(await greetingVia(port, HOST), 'A', 'tcplb still serves');
});
