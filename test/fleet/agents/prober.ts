/**
 * A client for fleet tests, run inside a namespace: opens a new connection
 * to HOST:PORT every EVERY ms, reads the greeting line (the backend's name),
 * and closes it; with HOLD > 0 it also keeps HOLD connections open and
 * sends a line on each every 100 ms, counting those that break. On SIGTERM
 * (or after SECONDS) it prints one JSON line of results and exits:
 *
 *   { ok, failed, firstFail, lastFail, maxGapMs, names: {A: n, …},
 *     held: { opened, broken }, why: {ECONNRESET: n, timeout: n, …}, start }
 *
 * `firstFail` and `lastFail` are when the failed attempts began, in ms from
 * `start` (this process's clock at start, ms since the epoch).
 * `why` counts the failed new connections by cause: an error code, `timeout`
 * (no greeting within 2 s) or `closed` (closed before the greeting).
 *
 * `maxGapMs` is the longest time between two successful new connections:
 * the failover gap a user would see. `node prober.js HOST:PORT EVERY SECONDS [HOLD]`.
 * On stderr it says `first ok` after its first good connection and `held open`
 * once all HOLD connections are up, so a test acts only on a running prober
 * (a failover before its first success would not show in `maxGapMs`).
 */
import net from 'node:net';

const [target, everyArg, secondsArg, holdArg] = process.argv.slice(2);
const i = target?.lastIndexOf(':') ?? -1;
const host = target?.slice(0, i) ?? '';
const port = Number(target?.slice(i + 1));
const every = Number(everyArg ?? 10);
const seconds = Number(secondsArg ?? 30);
const hold = Number(holdArg ?? 0);

let ok = 0;
let failed = 0;
let firstFail: number | null = null;
let lastFail: number | null = null;
let lastOk = 0;
let maxGapMs = 0;
const start = Date.now();
const names: Record<string, number> = {};
const held = { opened: 0, broken: 0 };
const why: Record<string, number> = {};

function once(): void {
  const t0 = Date.now();
  const s = net.connect({ host, port });
  let buf = '';
  const fail = (cause: string): void => {
    if (s.destroyed && buf === 'done') return;
    buf = 'done';
    why[cause] = (why[cause] ?? 0) + 1;
    s.destroy();
    failed++;
    firstFail ??= t0 - start;
    lastFail = t0 - start;
  };
  const timer = setTimeout(() => fail('timeout'), 2000);
  s.on('data', (d) => {
    if (buf === 'done') return;
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const name = buf.slice(0, nl);
    buf = 'done';
    clearTimeout(timer);
    s.destroy();
    ok++;
    if (ok === 1) process.stderr.write('first ok\n');
    names[name] = (names[name] ?? 0) + 1;
    const now = Date.now();
    if (lastOk !== 0) maxGapMs = Math.max(maxGapMs, now - lastOk);
    lastOk = now;
  });
  s.on('error', (e: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    fail(e.code ?? 'error');
  });
  s.on('close', () => {
    clearTimeout(timer);
    if (buf !== 'done') fail('closed');
  });
}

function holdOne(): void {
  const s = net.connect({ host, port });
  let alive = false;
  let timer: NodeJS.Timeout | undefined;
  s.on('data', () => {
    if (!alive) {
      alive = true;
      held.opened++;
      if (held.opened === hold) process.stderr.write('held open\n');
      timer = setInterval(() => s.write('ping\n'), 100);
    }
  });
  const broke = (): void => {
    clearInterval(timer);
    if (alive) held.broken++;
    alive = false;
  };
  s.on('error', broke);
  s.on('close', broke);
}

for (let k = 0; k < hold; k++) holdOne();
const tick = setInterval(once, every);
const finish = (): void => {
  clearInterval(tick);
  process.stdout.write(`${JSON.stringify({ ok, failed, firstFail, lastFail, maxGapMs, names, held, why, start })}\n`);
  process.exit(0);
};
process.on('SIGTERM', finish);
setTimeout(finish, seconds * 1000);
