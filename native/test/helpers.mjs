// Shared helpers for the native engine tests (not a test file itself; node
// --test runs it too and finds no tests). Loopback 127.0.0.70-79 only.
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
/** TCPLB_NATIVE_ADDON selects another build (asan.sh uses it). */
export const addonPath = process.env.TCPLB_NATIVE_ADDON
  || fileURLToPath(new URL('../build/Release/tcplb_native.node', import.meta.url));
export const addon = require(addonPath);
export const E = os.constants.errno;
/** TCPLB_TEST_THREADS=2 runs every Harness with two relay threads (fd counts then differ). */
export const TEST_THREADS = Number(process.env.TCPLB_TEST_THREADS || 1);

export const HOW = { NORMAL: 0, IDLE: 1, KILLED: 2, RESET: 3, REJECTED: 4, CLIENT_GONE: 5, REJECTED_AFTER_FAIL: 6, TLS_FAILED: 7 };

/** Splits one flat onEvents array into objects (API.md table). */
export function parseEvents(a) {
  const out = [];
  let i = 0;
  while (i < a.length) {
    switch (a[i]) {
      case 1:
        out.push({ type: 'ACCEPT', connId: a[i + 1], listenerId: a[i + 2], clientIp: a[i + 3],
          clientPort: a[i + 4], localIp: a[i + 5], localPort: a[i + 6] });
        i += 7;
        break;
      case 2:
        out.push({ type: 'CONNECTED', connId: a[i + 1] });
        i += 2;
        break;
      case 3:
        out.push({ type: 'CONNECT_FAILED', connId: a[i + 1], errno: a[i + 2] });
        i += 3;
        break;
      case 4:
        out.push({ type: 'CLOSED', connId: a[i + 1], bytesIn: a[i + 2], bytesOut: a[i + 3],
          how: a[i + 4], errno: a[i + 5], side: a[i + 6] });
        i += 7;
        break;
      case 5:
        out.push({ type: 'ACCEPT_ERROR', listenerId: a[i + 1], errno: a[i + 2] });
        i += 3;
        break;
      case 6:
        out.push({ type: 'ACCEPT_ROUTED', connId: a[i + 1], listenerId: a[i + 2], clientIp: a[i + 3],
          clientPort: a[i + 4], localIp: a[i + 5], localPort: a[i + 6], backendKey: a[i + 7] });
        i += 8;
        break;
      case 7:
        out.push({ type: 'TLS_READY', connId: a[i + 1], resumed: a[i + 2] === 1, version: a[i + 3], cipher: a[i + 4],
          servername: a[i + 5], alpn: a[i + 6], backendKey: a[i + 7] });
        i += 8;
        break;
      case 8:
        out.push({ type: 'TLS_FAILED', connId: a[i + 1], what: a[i + 2], errno: a[i + 3], code: a[i + 4] });
        i += 5;
        break;
      default:
        throw new Error(`bad event code ${a[i]} at ${i}`);
    }
  }
  return out;
}

/**
 * An engine plus an event log. `onAccept(ev, h)` plays the role of the TS
 * policy code; the default leaves the connection waiting.
 */
export class Harness {
  constructor({ onAccept, onEvent, threads } = {}) {
    this.events = [];
    this.closed = new Map();
    this.onAccept = onAccept;
    this.onEvent = onEvent;
    this.waiters = new Set();
    this.threads = threads ?? TEST_THREADS;
    this.engine = new addon.Engine((arr) => this.#onEvents(arr), { threads: this.threads });
  }

  #onEvents(arr) {
    for (const ev of parseEvents(arr)) {
      this.events.push(ev);
      if (ev.type === 'CLOSED') {
        if (this.closed.has(ev.connId)) throw new Error(`second CLOSED for ${ev.connId}`);
        this.closed.set(ev.connId, ev);
      }
      if (ev.type === 'ACCEPT' && this.onAccept) this.onAccept(ev, this);
      if (this.onEvent) this.onEvent(ev, this);
    }
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with the first event (past or future) matching `pred`. */
  waitFor(pred, ms = 5000, what = 'event') {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const check = () => {
        const ev = this.events.find(pred);
        if (!ev) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ev);
      };
      this.waiters.add(check);
    });
  }

  closedFor(connId, ms = 5000) {
    return this.waitFor((e) => e.type === 'CLOSED' && e.connId === connId, ms, `CLOSED ${connId}`);
  }

  /** listen + activate; returns the port. */
  listen(id = 1, host = '127.0.0.70') {
    const r = this.engine.listen(id, host, 0, 128);
    if (!r.ok) throw new Error(`listen failed: ${r.code}`);
    this.engine.activate(id);
    return r.port;
  }

  stop() {
    this.engine.stop();
  }
}

/** A server on 127.0.0.7x; `onConn(socket)`. Returns {server, port, close()}. */
export async function startServer(host, onConn, opts = {}) {
  const sockets = new Set();
  const server = net.createServer(opts, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return {
    server,
    port: server.address().port,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export function startEchoServer(host = '127.0.0.71') {
  return startServer(host, (s) => s.pipe(s));
}

/** Connects a client; resolves once connected. */
export function connectClient(port, host = '127.0.0.70', opts = {}) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ port, host, ...opts });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** Collects everything a socket receives until 'end'/'close'. */
export function collect(sock) {
  return new Promise((resolve) => {
    const chunks = [];
    let error = null;
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { error = e; });
    sock.on('close', () => resolve({ data: Buffer.concat(chunks), error }));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: timeout ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}
