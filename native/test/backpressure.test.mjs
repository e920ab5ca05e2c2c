// Backpressure: 50 MB from a fast backend to a slow client must not be
// buffered by the engine (at most 64 KiB pending per direction).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Harness, startServer, withTimeout } from './helpers.mjs';

const TOTAL = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

test('50 MB to a slow reader: all bytes arrive, RSS stays flat', { timeout: 60000 }, async (t) => {
  let sawBackpressure = false;
  const backend = await startServer('127.0.0.71', (s) => {
    // Respect drain and reuse one chunk, so the backend itself holds nothing.
    let sent = 0;
    const pump = () => {
      while (sent < TOTAL) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) {
          sawBackpressure = true;
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const h = new Harness({
    onAccept: (ev) => h.engine.connect(ev.connId, '127.0.0.71', backend.port, 2000, 0, undefined),
  });
  const rss0 = process.memoryUsage.rss();
  let rssMax = rss0;
  const sampler = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage.rss()); }, 20);
  try {
    const port = h.listen(1, '127.0.0.70');
    // onread with one static buffer: the client allocates nothing per chunk.
    let received = 0;
    let sincePause = 0;
    const done = new Promise((resolve, reject) => {
      const client = net.connect({
        port,
        host: '127.0.0.70',
        onread: {
          buffer: Buffer.alloc(64 * 1024),
          callback: (n, buf) => {
            if (buf[0] !== 0x61) reject(new Error('corrupt data'));
            received += n;
            sincePause += n;
            if (sincePause >= 2 * 1024 * 1024) {  // slow reader: nap every 2 MB
              sincePause = 0;
              setTimeout(() => client.resume(), 15);
              return false;  // pause
            }
            return true;
          },
        },
      });
      client.on('error', reject);
      client.on('end', () => resolve());
    });
    await withTimeout(done, 50000, '50 MB transfer');
    assert.equal(received, TOTAL);
    assert.ok(sawBackpressure, 'the backend should have been slowed down by the engine');
    const accept = h.events.find((e) => e.type === 'ACCEPT');
    const closed = await h.closedFor(accept.connId);
    assert.equal(closed.bytesOut, TOTAL);
    const growthMb = (rssMax - rss0) / 1048576;
    t.diagnostic(`RSS growth ${growthMb.toFixed(1)} MB over a ${TOTAL / 1048576} MB transfer`);
    assert.ok(growthMb < 50, `RSS grew by ${growthMb.toFixed(1)} MB`);
  } finally {
    clearInterval(sampler);
    h.stop();
    await backend.close();
  }
});
