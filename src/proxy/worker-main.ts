/**
 * Entry point of a relay worker process (`workers` > 1). It runs a JsEngine
 * with the routes and listeners the primary sends, and reports what happened
 * in batches. All policy inputs come from the primary; nothing here reads
 * the config file, probes or draws the console.
 */
import { JsEngine } from './engine.js';
import type { Session } from './session.js';
import type { BackendId } from '../core/types.js';
import type { PreparedListeners, SessionRecord, TlsSides } from '../core/dataplane.js';
import { fromWire, type FromWorker, type ToWorker, type WireSession } from './worker-protocol.js';

const FLUSH_MS = 100;
const BYTES_EVERY = 10; // flushes between byte-count updates (1 s)

const workers = Math.max(1, Number(process.env.TCPLB_WORKERS ?? '1'));
const send = (m: FromWorker): void => {
  if (process.connected) process.send!(m);
};

const opened = new Map<BackendId, number>();
const connectOk = new Set<BackendId>();
let connectFailed: [BackendId, string][] = [];
let closed: SessionRecord[] = [];
let closedIds: number[] = [];
let fresh: Session[] = [];
const reported = new Map<number, { s: Session; bytes: number }>();
let dirty = false;

const engine = new JsEngine(
  {
    connectFailed(id, detail) {
      connectFailed.push([id, detail]);
      dirty = true;
    },
    connectOk(id) {
      connectOk.add(id);
    },
    sessionOpened(id) {
      opened.set(id, (opened.get(id) ?? 0) + 1);
      dirty = true;
    },
    sessionClosed(rec) {
      closed.push(rec);
      dirty = true;
    },
  },
  {
    log: (line) => send({ t: 'log', line: `worker ${process.pid}: ${line}` }),
    onSession: (s) => {
      fresh.push(s);
      dirty = true;
    },
    onSessionEnd: (s) => {
      closedIds.push(s.id);
      reported.delete(s.id);
    },
  },
);

let flushes = 0;
function flush(force = false): void {
  flushes++;
  const withBytes = flushes % BYTES_EVERY === 0;
  if (!dirty && !withBytes && !force) return;
  dirty = false;
  const live: WireSession[] = [];
  for (const s of fresh) {
    if (s.ended) continue;
    live.push([s.id, s.acceptedOn, s.clientIp, s.backend?.id ?? '', s.start, s.tls]);
    reported.set(s.id, { s, bytes: 0 });
  }
  fresh = [];
  const bytes: [number, number, number, TlsSides][] = [];
  if (withBytes) {
    for (const [id, r] of reported) {
      const b = r.s.bytesIn + r.s.bytesOut;
      if (b !== r.bytes) {
        r.bytes = b;
        bytes.push([id, r.s.bytesIn, r.s.bytesOut, r.s.tls]);
      }
    }
  }
  send({
    t: 'batch',
    opened: [...opened],
    connectOk: [...connectOk],
    connectFailed,
    closed,
    closedIds,
    live,
    bytes,
    perListener: [...engine.activeByListener()],
    perBackend: [...engine.activeByBackend()],
    total: engine.sessions(0).total,
    liveBytes: withBytes ? engine.liveBytes() : -1,
  });
  opened.clear();
  connectOk.clear();
  connectFailed = [];
  closed = [];
  closedIds = [];
}
const timer = setInterval(flush, FLUSH_MS);

const prepared = new Map<number, PreparedListeners>();

async function onMessage(m: ToWorker): Promise<void> {
  switch (m.t) {
    case 'routes':
      engine.setRoutes(fromWire(m.table, workers, engine.routes), m.table.partial === true ? new Set(m.table.upstreams.map(([n]) => n).concat(m.table.removed ?? [])) : undefined);
      return;
    case 'prepare': {
      const p = await engine.prepareListeners(m.listeners);
      if (p.ok) prepared.set(m.seq, p);
      send({ t: 'prepared', seq: m.seq, phase: 'p', ok: p.ok, results: p.results, bound: [] });
      return;
    }
    case 'commit':
      prepared.get(m.seq)?.commit();
      prepared.delete(m.seq);
      send({ t: 'prepared', seq: m.seq, phase: 'c', ok: true, results: [], bound: [...engine.boundAddresses()] });
      return;
    case 'abort':
      prepared.get(m.seq)?.abort();
      prepared.delete(m.seq);
      return;
    case 'kill':
      engine.killBackend(m.backend, m.reason);
      return;
    case 'shutdown':
      await engine.shutdown(m.timeoutMs);
      return stop();
    case 'closeNow':
      engine.closeAllNow();
      return stop();
  }
}

/** Report the last records, then leave (the primary waits for `stopped`). */
function stop(): void {
  // Aborted sessions report on their sockets' close events: let them run first.
  setTimeout(() => {
    flush(true);
    clearInterval(timer);
    send({ t: 'stopped' });
    process.disconnect?.();
  }, 20);
}

process.on('message', (m: ToWorker) => {
  onMessage(m).catch((err: Error) => send({ t: 'log', line: `worker ${process.pid}: internal: ${err.stack ?? err.message}` }));
});
// The primary is gone (crashed or killed): nothing to report to, close and leave.
process.on('disconnect', () => {
  engine.closeAllNow();
  setTimeout(() => process.exit(0), 50).unref();
  clearInterval(timer);
});
send({ t: 'ready' });
