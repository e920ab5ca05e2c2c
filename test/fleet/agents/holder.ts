/**
 * A client for fleet tests that keeps connections open and says which ones
 * broke, per backend name: opens N connections to HOST:PORT (one every
 * 10 ms), records each one's greeting (the backend's name, which the fleet
 * tests make the balancer instance's name), sends a line on each every
 * 100 ms, and counts those that break. Prints `ready` once every connection
 * has its greeting; on SIGTERM (or after SECONDS) prints one JSON line and
 * exits:
 *
 *   { opened: {lb1: n, …}, broken: {lb1: n, …}, failed }
 *
 * `failed`: connections that never got a greeting.
 * `node holder.js HOST:PORT N SECONDS`.
 */
import net from 'node:net';

const [target, countArg, secondsArg] = process.argv.slice(2);
const i = target?.lastIndexOf(':') ?? -1;
const host = target?.slice(0, i) ?? '';
const port = Number(target?.slice(i + 1));
const count = Number(countArg ?? 60);
const seconds = Number(secondsArg ?? 30);

const opened: Record<string, number> = {};
const broken: Record<string, number> = {};
let failed = 0;
let settled = 0;
const timers: NodeJS.Timeout[] = [];

function settle(): void {
  if (++settled === count) process.stdout.write('ready\n');
}

function holdOne(): void {
  const s = net.connect({ host, port });
  let name: string | null = null;
  let buf = '';
  let done = false;
  s.on('data', (d) => {
    if (name !== null) return;
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    name = buf.slice(0, nl);
    opened[name] = (opened[name] ?? 0) + 1;
    timers.push(setInterval(() => s.write('ping\n'), 100));
    settle();
  });
  const end = (): void => {
    if (done) return;
    done = true;
    if (name === null) {
      failed++;
      settle();
    } else broken[name] = (broken[name] ?? 0) + 1;
  };
  s.on('error', end);
  s.on('close', end);
}

let k = 0;
const opener = setInterval(() => {
  if (k++ >= count) clearInterval(opener);
  else holdOne();
}, 10);
const finish = (): void => {
  process.stdout.write(`${JSON.stringify({ opened, broken, failed })}\n`);
  process.exit(0);
};
process.on('SIGTERM', finish);
setTimeout(finish, seconds * 1000);
