/**
 * A backend for fleet tests, run inside a namespace: greets each connection
 * with its name and echoes. `node echo.js NAME HOST:PORT [HOST:PORT…]`.
 * Prints `listening` once every address is bound.
 */
import net from 'node:net';

const [name, ...addrs] = process.argv.slice(2);
if (name === undefined || addrs.length === 0) {
  process.stderr.write('usage: echo.js NAME HOST:PORT...\n');
  process.exit(2);
}
let left = addrs.length;
for (const a of addrs) {
  const i = a.lastIndexOf(':');
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  srv.listen(Number(a.slice(i + 1)), a.slice(0, i), () => {
    if (--left === 0) process.stdout.write('listening\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
