/**
 * The control socket: a Unix socket (mode 0600) speaking newline-delimited
 * JSON (see protocol.ts), the back end of `tcplb-console ctl`. Every request
 * is answered with one line, errors included; no client input can crash it.
 */
import fs from 'node:fs';
import net from 'node:net';
import nodePath from 'node:path';
import type { ActionResult, Actions } from '../runtime/actions-types.js';
import { encodeLine, LineSplitter, MAX_LINE_BYTES, MAX_SOCKET_PATH_BYTES, parseRequest, type Reply, type Request } from './protocol.js';

/** A running control server. */
export interface ControlServer {
  /** Stop listening, drop the clients, and unlink the socket (if it is still ours). */
  close(): Promise<void>;
  readonly path: string;
}

/** A client with nothing in flight is dropped after this long without traffic. */
const IDLE_MS = 5 * 60_000;

/**
 * Listen on the Unix socket `path` and serve operator commands through
 * `actions` (as actor `ctl`). The socket is created under umask 0177 and
 * chmodded to 0600, so no other user can ever connect.
 *
 * An existing `path` is replaced only when it is a socket nobody answers on
 * (a crashed tcplb's leftover). A live socket rejects with `control socket
 * PATH is in use by another tcplb`; a non-socket rejects and is left alone.
 */
export async function startControlServer(path: string, actions: Actions, log: (msg: string) => void): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`control socket path is too long (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH_BYTES}): ${path}`);
  }
  await clearStale(path);
  const clients = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    serveClient(sock, actions, log);
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
    close() {
      closing ??= new Promise<void>((resolve) => {
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

/** Read request lines, answer them in order, one at a time. */
function serveClient(sock: net.Socket, actions: Actions, log: (msg: string) => void): void {
  const lines = new LineSplitter(MAX_LINE_BYTES);
  let queue: Promise<void> = Promise.resolve();
  let inFlight = 0;
  const send = (r: Reply): void => {
    if (!sock.destroyed && sock.writable) sock.write(encodeLine(r));
  };
  const enqueue = (line: string): void => {
    inFlight++;
    queue = queue.then(async () => {
      if (!sock.destroyed) send(await answer(line, actions, log));
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
      void queue.then(() => {
        if (!sock.destroyed) sock.end(encodeLine({ ok: false, error: `request line too long (over ${MAX_LINE_BYTES} bytes); closing` }), () => sock.destroy());
      });
      return;
    }
    for (const line of got) if (line.trim() !== '') enqueue(line);
  });
  sock.on('end', () => {
    // The client half-closed: answer what it sent (a last line needs no newline), then close.
    const rest = lines.flush();
    if (rest.trim() !== '') enqueue(rest);
    void queue.then(() => {
      if (!sock.destroyed) sock.end();
    });
  });
}

/** One request line to one reply. Never throws. */
async function answer(line: string, actions: Actions, log: (msg: string) => void): Promise<Reply> {
  const p = parseRequest(line);
  if (!p.ok) return { ok: false, error: p.error, ...(p.id === undefined ? {} : { id: p.id }) };
  const req = p.req;
  const id = req.id === undefined ? {} : { id: req.id };
  try {
    const r = await run(req, actions);
    return r.ok ? { ...id, ok: true, message: r.message, ...(r.data === undefined ? {} : { data: r.data }) } : { ...id, ok: false, error: r.message };
  } catch (err) {
    log(`control: ${req.cmd} failed: ${(err as Error).stack ?? String(err)}`);
    return { ...id, ok: false, error: `internal error: ${(err as Error).message}` };
  }
}

async function run(req: Request, actions: Actions): Promise<ActionResult & { data?: unknown }> {
  switch (req.cmd) {
    case 'status':
      return { ok: true, message: 'status', data: actions.snapshot() };
    case 'reload': {
      const r = await actions.reload('ctl');
      return { ok: r.ok, message: r.message, data: { changes: r.changes ?? [] } };
    }
    case 'check': {
      const r = await actions.check(req.backend, 'ctl');
      return { ok: r.ok, message: r.message, data: r.result };
    }
    default:
      return actions[req.cmd](req.backend, 'ctl');
  }
}
