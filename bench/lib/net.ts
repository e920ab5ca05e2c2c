/**
 * Loopback helpers: free ports, waiting for a listener, a bounded HTTP GET
 * (to check each proxy path before measuring it).
 */
import http from 'node:http';
import net from 'node:net';
import { reservePort } from '../../test/helpers/ports.js';
import { sleep } from './proc.js';

export { canBind } from '../../test/helpers/ports.js';

/**
 * A port free on every one of `hosts`, from 21000-31999 (below the kernel's
 * ephemeral range, so the client sockets of the load never collide with it),
 * reserved for this run (and against any concurrent run or test process) by
 * the tests' reservation (test/helpers/ports.ts). `preferred` is tried first.
 */
export function freePort(hosts: readonly string[], preferred?: number): Promise<number> {
  return reservePort(hosts, { range: { min: 21000, max: 31999 }, preferred });
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
