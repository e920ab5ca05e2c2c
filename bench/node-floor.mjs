// The floor of a Node.js relay on this machine, for bench/cpu-per-conn.sh:
// what Node's own `net` layer costs per connection with no policy at all.
// Two variants, picked by argv[2]:
//   pipe   socket.pipe() both ways (the textbook proxy)
//   tuned  what tcplb's JavaScript engine does below its policy: noDelay,
//          pauseOnConnect, backend reads through `onread` into one buffer
//          (copied out before write), shared handlers, no timers
// Usage: node bench/node-floor.mjs pipe|tuned LISTEN_HOST:PORT BACKEND_HOST:PORT
import net from 'node:net';

const [mode, listen, backend] = process.argv.slice(2);
const split = (s) => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};
if (!['pipe', 'tuned'].includes(mode) || !listen || !backend) {
  process.stderr.write('usage: node bench/node-floor.mjs pipe|tuned LISTEN_HOST:PORT BACKEND_HOST:PORT\n');
  process.exit(2);
}
const l = split(listen);
const b = split(backend);

function pipeRelay(client) {
  const up = net.connect(b);
  client.pipe(up).pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
}

const PEER = Symbol('peer');
const buf = Buffer.allocUnsafe(64 * 1024);
function onUpRead(n, data) {
  const chunk = Buffer.allocUnsafe(n);
  data.copy(chunk, 0, 0, n);
  return this[PEER].write(chunk);
}
function onClientData(chunk) {
  if (!this[PEER].write(chunk)) this.pause();
}
function onDrain() {
  this[PEER].resume();
}
function onEnd() {
  this[PEER].end();
}
function onGone() {
  this[PEER].destroy();
}
function onUpConnect() {
  const client = this[PEER];
  client.on('data', onClientData);
  client.on('drain', onDrain);
  this.on('drain', onDrain);
  client.resume();
}
function tunedRelay(client) {
  client.setNoDelay(true);
  const up = net.connect({ ...b, noDelay: true, allowHalfOpen: true, onread: { buffer: buf, callback: onUpRead } });
  client[PEER] = up;
  up[PEER] = client;
  up.once('connect', onUpConnect);
  client.on('end', onEnd);
  up.on('end', onEnd);
  client.on('close', onGone);
  up.on('close', onGone);
  client.on('error', onGone);
  up.on('error', onGone);
}

const server = net.createServer({ allowHalfOpen: mode === 'tuned', pauseOnConnect: mode === 'tuned', noDelay: mode === 'tuned' }, mode === 'pipe' ? pipeRelay : tunedRelay);
server.listen({ ...l, backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
