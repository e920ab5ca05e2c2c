// fd hygiene: 2,000 connections (20 at a time) over every ending path, then
// the engine holds only its listener and the process is back to its fd count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  Harness, HOW, connectClient, sleep, startEchoServer, withTimeout,
} from './helpers.mjs';

const TOTAL = 2000;
const CONCURRENCY = 20;

const openFds = () => fs.readdirSync('/proc/self/fd').length;

test('2,000 connections over all paths leave no fd behind', { timeout: 60000 }, async (t) => {
  const echo = await startEchoServer('127.0.0.71');
  const h = new Harness({
    // Policy by connId: some rejected, some refused-then-retried, most relayed.
    onAccept: (ev, hh) => {
      if (ev.connId % 10 === 3) return hh.engine.reject(ev.connId);
      const port = ev.connId % 10 === 7 ? 1 : echo.port;  // port 1 on .75: refused
      hh.engine.connect(ev.connId, port === 1 ? '127.0.0.75' : '127.0.0.71', port, 2000, 0, undefined);
    },
    onEvent: (ev, hh) => {
      if (ev.type === 'CONNECT_FAILED') hh.engine.connect(ev.connId, '127.0.0.71', echo.port, 2000, 0, undefined);
    },
  });
  try {
    const port = h.listen(1, '127.0.0.70');
    await sleep(50);
    const baseline = openFds();

    const oneClient = async (i) => {
      const c = await connectClient(port);
      c.on('error', () => {});
      const closed = new Promise((r) => c.on('close', r));
      c.write(`hello ${i}`);
      if (i % 10 === 5) {
        c.once('data', () => c.resetAndDestroy());  // client reset mid-relay
      } else if (i % 10 === 9) {
        c.destroy();  // gone at once (possibly before the backend connects)
      } else {
        c.once('data', () => c.end());
      }
      await closed;
    };
    let next = 0;
    const worker = async () => {
      while (next < TOTAL) await oneClient(next++);
    };
    await withTimeout(Promise.all(Array.from({ length: CONCURRENCY }, worker)), 50000, 'clients');
    await h.waitFor(() => h.closed.size === TOTAL, 10000, `${TOTAL} CLOSED`);

    assert.equal(h.events.filter((e) => e.type === 'ACCEPT').length, TOTAL);
    assert.deepEqual(h.engine.counts(), { connections: 0, listeners: 1, fds: 1 });
    const hows = new Set([...h.closed.values()].map((c) => c.how));
    assert.ok(hows.has(HOW.NORMAL) && hows.has(HOW.REJECTED) && hows.has(HOW.RESET), [...hows].join());

    // The echo server's sockets close asynchronously after the relay's FIN/RST.
    let now = openFds();
    for (let i = 0; i < 100 && now > baseline + 3; i++) {
      await sleep(50);
      now = openFds();
    }
    t.diagnostic(`process fds: baseline ${baseline}, after ${TOTAL} connections ${now}`);
    assert.ok(now <= baseline + 3, `process fds: baseline ${baseline}, now ${now}`);
  } finally {
    h.stop();
    await echo.close();
  }
});
