/**
 * Loopback helpers: free ports, waiting for a listener, a bounded HTTP GET
 * (to check each proxy path before measuring it).
 */
import http from 'node:http';
import net from 'node:net';
import { sleep } from './proc.js';

/** True when `host:port` can be bound right now. */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

const taken = new Set<number>();

/**
 * A port free on every one of `hosts`, from 21000-31999 (below the kernel's
 * ephemeral range, so the client sockets of the load never collide with it),
 * never handed out twice in one run. `preferred` is tried first.
 */
export async function freePort(hosts: readonly string[], preferred?: number): Promise<number> {
  const tryPort = async (p: number): Promise<boolean> => {
    if (taken.has(p)) return false;
    for (const h of hosts) if (!(await canBind(h, p))) return false;
    taken.add(p);
    return true;
  };
  if (preferred !== undefined && (await tryPort(preferred))) return preferred;
  for (let i = 0; i < 200; i++) {
    const p = 21000 + Math.floor(Math.random() * 11000);
    if (await tryPort(p)) return p;
  }
  throw new Error(`no free port on ${hosts.join(', ')}`);
}

/** Connects once; resolves true when the connection is accepted within `timeoutMs`. */
export function probe(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls until `host:port` accepts, or `isDead()` says the server is gone, or the deadline. */
export async function waitListening(host: string, port: number, timeoutMs: number, isDead: () => boolean = () => false): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isDead()) return false;
    if (await probe(host, port)) return true;
    await sleep(100);
  }
  return false;
}

/** GET http://host:port/path with a deadline; resolves status and body length, or throws. */
export function httpGet(host: string, port: number, path: string, timeoutMs = 5000): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => {
        clearTimeout(t);
        resolve({ status: res.statusCode ?? 0, bytes });
      });
      res.on('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    const t = setTimeout(() => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
