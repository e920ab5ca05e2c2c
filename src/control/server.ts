/**
 * The control socket: a Unix socket (mode 0600) speaking newline-delimited
 * JSON (see protocol.ts, docs/control-protocol.md), the back end of
 * `tcplb-console ctl`. Every request is answered with one line, errors
 * included; no client input can crash it. A `watch` request turns its
 * connection into a stream (watch.ts).
 */
import fs from 'node:fs';
import net from 'node:net';
import nodePath from 'node:path';
import type { ActionResult, Actions, Actor } from '../runtime/actions-types.js';
import type { Snapshot } from '../runtime/snapshot.js';
import { settleAdmin } from '../runtime/actions.js';
import { formatExplanation } from '../runtime/explain.js';
import { peerActor, type PeerLookup } from './peer.js';
import { clampInterval, WATCH_CONNECTIONS, encodeLine, LineSplitter, MAX_LINE_BYTES, MAX_SOCKET_PATH_BYTES, parseRequest, PROTOCOL_VERSION, type Reply, type Request, type WatchRequest } from './protocol.js';
import { WATCH_LIMITS, Watcher, type WatchLimits } from './watch.js';

/** A running control server. */
export interface ControlServer {
  /** Stop listening, drop the clients, and unlink the socket (if it is still ours). */
  close(): Promise<void>;
  readonly path: string;
  /** Connected clients, and how many of them are watching (for tests and leak checks). */
  stats(): { clients: number; watchers: number };
}

/** Epoch ms this process started: the `started` of a watch reply. */
const STARTED = Math.round(performance.timeOrigin);

/** A client with nothing in flight is dropped after this long without traffic. */
const IDLE_MS = 5 * 60_000;

/** How the server names who sent a request. */
export interface ControlServerOptions {
  /**
   * The addon's SO_PEERCRED lookup: clients are `ctl (user NAME, pid N)`.
   * null: no lookup on this machine, every client is `ctl (peer unknown)`.
   * Absent: peers are not named, every client is plain `ctl`.
   */
  readonly peerCredentials?: PeerLookup | null;
  /** Bounds on each `watch` subscriber (watch.ts); default WATCH_LIMITS. */
  readonly limits?: Partial<WatchLimits>;
}

/**
 * Listen on the Unix socket `path` and serve operator commands through
 * `actions`, as actor `ctl (user NAME, pid N)` from the kernel's record of the
 * client (control/peer.ts), never from the request. The socket is created under umask 0177 and
 * chmodded to 0600, so no other user can ever connect.
 *
 * An existing `path` is replaced only when it is a socket nobody answers on
 * (a crashed tcplb's leftover). A live socket rejects with `control socket
 * PATH is in use by another tcplb`; a non-socket rejects and is left alone.
 */
export async function startControlServer(path: string, actions: Actions, log: (msg: string) => void, opts: ControlServerOptions = {}): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`control socket path is too long (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH_BYTES}): ${path}`);
  }
  await clearStale(path);
  const clients = new Set<net.Socket>();
  const ctx: Context = { actions, log, limits: { ...WATCH_LIMITS, ...opts.limits }, watchers: new Set() };
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    // Once per connection: the kernel recorded the peer at connect().
    serveClient(sock, ctx, peerActor(sock, opts.peerCredentials));
  });
  let ino = 0;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      // libuv reports a missing folder as EACCES: say what is really wrong.
      const noDir = err.code === 'EACCES' && !fs.existsSync(nodePath.dirname(path));
      const why = err.code === 'EADDRINUSE' ? ' is in use by another tcplb' : noDir ? `: folder ${nodePath.dirname(path)} does not exist` : `: ${err.message}`;
      reject(new Error(`control socket ${path}${why}`));
    };
    server.once('error', onError);
    // bind() happens synchronously inside listen(): the restrictive umask
    // covers the socket's creation, and is restored right after.
    const old = setUmask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        try {
          fs.chmodSync(path, 0o600);
          ino = fs.lstatSync(path).ino;
          resolve();
        } catch (err) {
          server.close();
          reject(new Error(`control socket ${path}: ${(err as Error).message}`));
        }
      });
    } finally {
      if (old !== undefined) setUmask(old);
    }
  });
  server.on('error', (err) => log(`control socket ${path}: ${err.message}`));
  let closing: Promise<void> | undefined;
  return {
    path,
    stats: () => ({ clients: clients.size, watchers: ctx.watchers.size }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const w of [...ctx.watchers]) w.stop();
        for (const c of clients) c.destroy();
        server.close(() => resolve());
      }).then(() => {
        // Node unlinks its own socket on close; never remove one someone else bound since.
        try {
          if (fs.lstatSync(path).ino === ino) fs.unlinkSync(path);
        } catch {
          /* already gone */
        }
      });
      return closing;
    },
  };
}

/** Set the umask; undefined where that is not allowed (worker threads), then chmod alone protects. */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

/** Make `path` free: absent, or a dead socket (unlinked). Throws otherwise. */
async function clearStale(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`control socket ${path}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new Error(`control socket ${path} exists and is not a socket; refusing to replace it (remove it or set another control.socket)`);
  const alive = await new Promise<boolean | Error>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? false : err.code === 'ENOENT' ? false : err));
  });
  if (alive === true) throw new Error(`control socket ${path} is in use by another tcplb`);
  if (alive instanceof Error) throw new Error(`control socket ${path} exists and cannot be probed: ${alive.message}`);
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`control socket ${path}: cannot remove stale socket: ${(err as Error).message}`);
  }
}

interface Context {
  readonly actions: Actions;
  readonly log: (msg: string) => void;
  readonly limits: WatchLimits;
  /** The connections streaming now. */
  readonly watchers: Set<Watcher>;
}

/**
 * Read request lines and run them in order, one at a time; replies go out in
 * the same order. A drain/disable/enable counts as done once applied: the next
 * command runs while its state file save is still under way (its reply waits
 * for the save), so pipelined actions share one save instead of one fsync each.
 *
 * After a `watch` the connection is a stream: the watch reply goes out in its
 * turn, then stream lines; a request line sent after the watch is not run
 * (actions use another connection) and is answered with an error line, which
 * counts against the watcher's backlog like any stream line.
 */
function serveClient(sock: net.Socket, ctx: Context, by: Actor): void {
  const { actions, log } = ctx;
  const lines = new LineSplitter(MAX_LINE_BYTES);
  let queue: Promise<unknown> = Promise.resolve(); // commands, each after the previous one took effect
  let replies: Promise<void> = Promise.resolve(); // answers, in request order
  let inFlight = 0;
  let watchAsked = false; // a watch is queued or running: later lines are refused
  let watcher: Watcher | undefined;
  const send = (r: Reply): void => {
    if (watcher !== undefined) watcher.write(encodeLine(r));
    else if (!sock.destroyed && sock.writable) sock.write(encodeLine(r));
  };
  const startWatch = (req: WatchRequest): void => {
    if (sock.destroyed || !sock.writable) return;
    const opts = { interval: clampInterval(req.interval), events: req.events ?? true, snapshots: req.snapshots ?? true };
    // One snapshot for the reply's facts and the stream's first line.
    let snap: Snapshot;
    try {
      snap = actions.snapshot(WATCH_CONNECTIONS);
    } catch (err) {
      log(`control: watch failed: ${(err as Error).stack ?? String(err)}`);
      send({ ...(req.id === undefined ? {} : { id: req.id }), ok: false, error: `internal error: ${(err as Error).message}` });
      watchAsked = false;
      return;
    }
    send({
      ...(req.id === undefined ? {} : { id: req.id }),
      ok: true,
      message: `watching: ${[opts.snapshots ? `snapshots every ${opts.interval} ms` : '', opts.events ? 'events' : ''].filter((x) => x !== '').join(', ')}`,
      protocol: PROTOCOL_VERSION,
      pid: snap.pid,
      started: STARTED,
      version: snap.version,
      config: snap.config,
      ...opts,
    });
    const w = new Watcher(sock, actions, opts, ctx.limits, log, () => ctx.watchers.delete(w));
    watcher = w;
    ctx.watchers.add(w);
    // A stream is never idle in the 5-minute sense: a quiet proxy sends nothing.
    sock.setTimeout(0);
    sock.once('close', () => w.stop());
    w.start(snap);
  };
  const enqueue = (line: string): void => {
    if (watchAsked) {
      replies = replies.then(() => {
        if (!sock.destroyed) send({ ok: false, error: 'this connection is watching; send other commands on another connection' });
      });
      return;
    }
    const parsed = parseRequest(line);
    if (parsed.ok && parsed.req.cmd === 'watch') {
      const req = parsed.req;
      watchAsked = true;
      replies = replies.then(() => startWatch(req));
      return;
    }
    inFlight++;
    const started = queue.then(() => (sock.destroyed ? undefined : answer(parsed, actions, log, by)));
    queue = started.then((a) => a?.applied);
    replies = replies.then(async () => {
      const a = await started;
      if (a !== undefined) {
        const r = await a.reply;
        if (!sock.destroyed) send(r);
      }
      inFlight--;
    });
  };
  sock.on('error', () => sock.destroy());
  sock.setTimeout(IDLE_MS, () => {
    if (inFlight === 0) sock.destroy();
  });
  sock.on('data', (chunk: Buffer) => {
    const got = lines.push(chunk);
    if (got === 'overflow') {
      sock.removeAllListeners('data');
      sock.pause();
      log(`control: dropped a client that sent a line over ${MAX_LINE_BYTES} bytes`);
      void replies.then(() => {
        if (!sock.destroyed) sock.end(encodeLine({ ok: false, error: `request line too long (over ${MAX_LINE_BYTES} bytes); closing` }), () => sock.destroy());
      });
      return;
    }
    for (const line of got) if (line.trim() !== '') enqueue(line);
  });
  sock.on('end', () => {
    // The client half-closed: answer what it sent (a last line needs no newline), then close.
    // A watcher half-closing detaches: its stream ends.
    const rest = lines.flush();
    if (rest.trim() !== '') enqueue(rest);
    void replies.then(() => {
      watcher?.stop();
      if (!sock.destroyed) sock.end();
    });
  });
}

/**
 * One request line to one reply. `applied` settles once the command took
 * effect, `reply` once it can be answered (for drain/disable/enable: after
 * the state file save). Never throws; neither promise rejects.
 */
function answer(p: ReturnType<typeof parseRequest>, actions: Actions, log: (msg: string) => void, by: Actor): { applied: Promise<unknown>; reply: Promise<Reply> } {
  if (!p.ok) {
    const reply = Promise.resolve<Reply>({ ok: false, error: p.error, ...(p.id === undefined ? {} : { id: p.id }) });
    return { applied: reply, reply };
  }
  const req = p.req;
  const id = req.id === undefined ? {} : { id: req.id };
  let step: Step;
  try {
    step = run(req, actions, by);
  } catch (err) {
    step = { applied: Promise.resolve(), result: Promise.reject(err as Error) };
  }
  // `status` says the protocol version, so a client can refuse a server it does not understand.
  const version = req.cmd === 'status' ? { protocol: PROTOCOL_VERSION } : {};
  const reply = step.result.then(
    (r): Reply => (r.ok ? { ...id, ok: true, message: r.message, ...version, ...(r.data === undefined ? {} : { data: r.data }) } : { ...id, ok: false, error: r.message }),
    (err: Error): Reply => {
      log(`control: ${req.cmd} failed: ${err.stack ?? String(err)}`);
      return { ...id, ok: false, error: `internal error: ${err.message}` };
    },
  );
  return { applied: step.applied.catch(() => {}), reply };
}

type Outcome = ActionResult & { data?: unknown };
interface Step {
  readonly applied: Promise<unknown>;
  readonly result: Promise<Outcome>;
}

function run(req: Request, actions: Actions, by: Actor): Step {
  switch (req.cmd) {
    case 'drain':
    case 'disable':
    case 'enable': {
      // Applied now; answered once the state file has the change (or failed to
      // take it), so the reply can say "applied, not persisted" and ctl exit 1.
      const result = settleAdmin(actions[req.cmd](req.backend, by)).then((r): Outcome => {
        if (!r.ok || r.persisted === null) return { ok: r.ok, message: r.message };
        return { ok: true, message: r.message, data: r.persisted ? { persisted: true } : { persisted: false, error: r.error } };
      });
      return { applied: Promise.resolve(), result };
    }
    case 'standby': {
      const result = settleAdmin(actions.standby(req.on, by)).then((r): Outcome => {
        if (!r.ok || r.persisted === null) return { ok: r.ok, message: r.message };
        return { ok: true, message: r.message, data: r.persisted ? { persisted: true } : { persisted: false, error: r.error } };
      });
      return { applied: Promise.resolve(), result };
    }
    default: {
      const result = runOther(req, actions, by);
      return { applied: result, result };
    }
  }
}

async function runOther(req: Request, actions: Actions, by: Actor): Promise<Outcome> {
  switch (req.cmd) {
    case 'status':
      return { ok: true, message: 'status', data: actions.snapshot() };
    case 'reload': {
      const r = await actions.reload(by);
      return { ok: r.ok, message: r.message, data: { changes: r.changes ?? [] } };
    }
    case 'check': {
      const r = await actions.check(req.backend, by);
      return { ok: r.ok, message: r.message, data: r.result };
    }
    case 'kill':
      return actions.kill(req.backend, by);
    case 'health': {
      const r = actions.readiness();
      return { ok: true, message: r.why, data: r };
    }
    case 'certs': {
      if (actions.certs === undefined) return { ok: false, message: 'this tcplb keeps no certificate report' };
      const r = actions.certs();
      const n = r.listeners.reduce((sum, l) => sum + l.certificates.length, 0);
      return { ok: true, message: `${n} certificate${n === 1 ? '' : 's'} on ${r.listeners.length} TLS listener${r.listeners.length === 1 ? '' : 's'}`, data: r };
    }
    case 'acme': {
      if (actions.acmeRenew === undefined) return { ok: false, message: 'this tcplb has no ACME client' };
      const r = await actions.acmeRenew(req.domain);
      return { ok: r.ok, message: r.message };
    }
    case 'explain': {
      const r = actions.explain(req.client, req.listener);
      return 'error' in r ? { ok: false, message: r.error } : { ok: true, message: formatExplanation(r), data: r };
    }
    default:
      // `watch` never gets here: serveClient turns the connection into a stream.
      throw new Error(`no handler for ${req.cmd}`);
  }
}
