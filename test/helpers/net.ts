/** Small socket helpers for integration tests. Everything binds loopback only. */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { waitFor } from './wait.js';

// One implementation each, re-exported for the tests that import everything from here.
export { reservePort } from './ports.js';
export { sleep, waitFor } from './wait.js';

/** Start a TCP server on host:0 (or a given port); resolves with it and its port. */
export async function listen(
  onConn: (s: net.Socket) => void,
  host = '127.0.0.1',
  port = 0,
  opts: net.ServerOpts = {},
): Promise<{ server: net.Server; port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer(opts, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r, j) => server.once('error', j).listen(port, host, () => r()));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A backend that greets with `name\n` then echoes. */
export function namedEcho(name: string): (s: net.Socket) => void {
  return (s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  };
}

/** Connect (optionally from a given local address); resolves once connected. */
export function connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, localAddress, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Read until the peer closes; resolves with everything received (and whether it ended by error). */
export function readAll(s: net.Socket): Promise<{ data: Buffer; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e));
    // Our test sockets allow half-open; a reader that saw the peer's FIN is done too.
    s.on('end', () => s.end());
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error }));
  });
}

/** Read the first line (up to \n) from a socket. */
export function readLine(s: net.Socket, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => done(new Error(`no line within ${timeoutMs} ms (got ${JSON.stringify(buf)})`)), timeoutMs);
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const i = buf.indexOf('\n');
      if (i >= 0) done(undefined, buf.slice(0, i));
    };
    const onClose = (): void => done(new Error(`closed before a line (got ${JSON.stringify(buf)})`));
    function done(err?: Error, line?: string): void {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(line!);
    }
    s.on('data', onData);
    s.on('close', onClose);
  });
}

/** Connect, read the greeting line, close. */
export async function greetingVia(port: number, host = '127.0.0.1', localAddress?: string): Promise<string> {
  const s = await connect(port, host, localAddress);
  try {
    return await readLine(s);
  } finally {
    s.destroy();
  }
}

export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/**
 * A listening socket that never accepts, with its accept queue filled, so new
 * connects to it hang (SYNs dropped): the "blackholed backend". Uses python3
 * because Node always accepts. With `fill` false the queue is left for the
 * caller's first connects (they complete; the ones after them hang).
 */
export async function blackhole(host = '127.0.0.1', fill = true): Promise<{ port: number; close: () => void }> {
  const py = `
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
time.sleep(120)
`;
  const child: ChildProcess = spawn('python3', ['-c', py, host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('error', reject);
  });
  // Fill the accept queue (backlog 0 admits one or two) so later SYNs are dropped.
  // The queue is full once one filler completed its handshake; the others' SYNs are the ones dropped.
  const fillers: net.Socket[] = [];
  let connected = 0;
  for (let i = 0; i < (fill ? 4 : 0); i++) {
    const f = net.connect({ port, host });
    f.on('error', () => {});
    f.once('connect', () => connected++);
    fillers.push(f);
  }
  if (fill) await waitFor(() => connected, { what: 'a blackhole filler connection to fill the accept queue', timeoutMs: 2000, until: (n) => n >= 1 });
  return {
    port,
    close: () => {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    },
  };
}
