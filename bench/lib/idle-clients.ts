/**
 * Idle clients (a child process of the benchmark): opens N TCP connections to
 * HOST:PORT, at most CONCURRENCY connects in flight, and holds them open
 * without sending anything. Sends its parent { done, connected, failed,
 * closed, error? } once every connect has settled, answers "status" the
 * same way, closes everything on "close" and exits when the parent goes away.
 * Usage: node dist/bench/lib/idle-clients.js HOST PORT N [CONCURRENCY=200]
 */
import net from 'node:net';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3]);
const n = Number(process.argv[4] ?? 1000);
const concurrency = Number(process.argv[5] ?? 200);

const sockets: net.Socket[] = [];
let connected = 0;
let failed = 0;
let closed = 0; // closed by the other side after connecting
let started = 0;
let settled = 0;
let firstError: string | undefined;

const status = (): object => ({ done: settled === n, connected, failed, closed, open: connected - closed, error: firstError });

function next(): void {
  if (started >= n) return;
  started++;
  const s = net.connect({ host, port });
  sockets.push(s);
  let ok = false;
  const settle = (): void => {
    settled++;
    if (settled === n) process.send?.(status());
    else next();
  };
  s.once('connect', () => {
    ok = true;
    connected++;
    settle();
  });
  s.on('error', (err) => {
    firstError ??= err.message;
    if (!ok) {
      failed++;
      settle();
    }
  });
  s.on('close', () => {
    if (ok) closed++;
  });
}

for (let i = 0; i < Math.min(concurrency, n); i++) next();
process.on('message', (m) => {
  if (m === 'status') process.send?.(status());
  if (m === 'close') {
    for (const s of sockets) s.destroy();
    process.send?.({ closedAll: true });
  }
});
process.on('disconnect', () => process.exit(0));
