/**
 * The idle backend (a child process of the benchmark): accepts TCP
 * connections on HOST, on K ports (one per proxy peer, so one peer's health
 * checks never show in another's count), and holds them without reading or
 * writing. Talks to its parent over IPC: sends { listening: [port, ...] }
 * once bound, answers { count: PORT } with { port, count } (connections open
 * on that port now), and exits when the parent goes away.
 * Usage: node dist/bench/lib/idle-server.js HOST K
 */
import net from 'node:net';

const host = process.argv[2] ?? '127.0.0.2';
const k = Number(process.argv[3] ?? 1);
const open = new Map<number, number>();

function listen(): Promise<number> {
  return new Promise((resolve, reject) => {
    let port = 0;
    const srv = net.createServer((s) => {
      open.set(port, (open.get(port) ?? 0) + 1);
      s.on('error', () => {});
      s.on('close', () => open.set(port, (open.get(port) ?? 0) - 1));
    });
    srv.maxConnections = 1_000_000;
    srv.once('error', reject);
    srv.listen({ host, port: 0, backlog: 4096 }, () => {
      port = (srv.address() as net.AddressInfo).port;
      open.set(port, 0);
      resolve(port);
    });
  });
}

try {
  const ports: number[] = [];
  for (let i = 0; i < k; i++) ports.push(await listen());
  process.send?.({ listening: ports });
} catch (err) {
  process.send?.({ error: (err as Error).message });
  process.exit(1);
}
process.on('message', (m: { count?: number }) => {
  if (m.count !== undefined) process.send?.({ port: m.count, count: open.get(m.count) ?? 0 });
});
process.on('disconnect', () => process.exit(0));
