/**
 * ACME challenges answered on the listeners the CA connects to
 * (docs/tls.md#acme), before a session starts:
 * - tls-alpn-01 on a TLS listener: the ClientHello is peeked (read, then
 *   put back); one offering ALPN `acme-tls/1` for a name whose challenge is
 *   in storage gets a handshake with the challenge certificate and is closed;
 * - http-01 on a plain listener: the request head is peeked; a
 *   `GET /.well-known/acme-challenge/TOKEN` for a stored token gets the key
 *   authorization.
 * Everything else is put back untouched (`unshift`) and served as usual: the
 * backend sees every byte the client sent. Challenges are read from the
 * storage folder on demand, so a member of an HA pair answers for tokens
 * its peer wrote, and relay processes need no channel to the control plane.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { readAlpnChallenge, readHttpChallenge } from '../config/acme-store.js';

export const ACME_TLS_ALPN = 'acme-tls/1';
const HTTP_PREFIX = Buffer.from('GET /.well-known/acme-challenge/');
/** A request head longer than this is not a challenge request: relayed. */
const MAX_HTTP_HEAD = 8192;
/** A TLS record is at most 16 KiB plus its header. */
const MAX_RECORD = 16384 + 5;

/** What a ClientHello says, as far as ACME needs. */
export interface HelloFacts {
  readonly servername: string;
  readonly alpn: readonly string[];
}

/**
 * Parse the first TLS record as a ClientHello: 'more' until the record is
 * complete, undefined when it is not one (or malformed: the real handshake
 * will say so), else its SNI name and ALPN list.
 */
export function parseClientHello(buf: Buffer): HelloFacts | 'more' | undefined {
  if (buf.length < 5) return buf.length === 0 || buf[0] === 0x16 ? 'more' : undefined;
  if (buf[0] !== 0x16) return undefined;
  const len = buf.readUInt16BE(3);
  if (len + 5 > MAX_RECORD) return undefined;
  if (buf.length < 5 + len) return 'more';
  const rec = buf.subarray(5, 5 + len);
  try {
    if (rec[0] !== 0x01) return undefined;
    let p = 4 + 2 + 32; // handshake header, client_version, random
    p += 1 + rec[p]!; // session id
    p += 2 + rec.readUInt16BE(p); // cipher suites
    p += 1 + rec[p]!; // compression methods
    if (p + 2 > rec.length) return { servername: '', alpn: [] };
    const end = Math.min(rec.length, p + 2 + rec.readUInt16BE(p));
    p += 2;
    let servername = '';
    const alpn: string[] = [];
    while (p + 4 <= end) {
      const type = rec.readUInt16BE(p);
      const size = rec.readUInt16BE(p + 2);
      const data = rec.subarray(p + 4, Math.min(end, p + 4 + size));
      p += 4 + size;
      if (type === 0 && data.length >= 5 && data[2] === 0) servername = data.subarray(5, 5 + data.readUInt16BE(3)).toString('latin1');
      if (type === 16 && data.length >= 2) {
        for (let q = 2; q < data.length;) {
          const n = data[q]!;
          alpn.push(data.subarray(q + 1, q + 1 + n).toString('latin1'));
          q += 1 + n;
        }
      }
    }
    return { servername, alpn };
  } catch {
    return undefined; // read past the end: malformed
  }
}

/** An http-01 request: 'more' until the head is complete, undefined when it is not one, else its token. */
export function parseChallengeRequest(buf: Buffer): { token: string } | 'more' | undefined {
  const n = Math.min(buf.length, HTTP_PREFIX.length);
  if (!buf.subarray(0, n).equals(HTTP_PREFIX.subarray(0, n))) return undefined;
  const head = buf.indexOf('\r\n\r\n');
  if (head === -1) return buf.length >= MAX_HTTP_HEAD ? undefined : 'more';
  const line = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1');
  const m = /^GET \/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})(?:\?\S*)? HTTP\/1\.[01]$/.exec(line);
  return m === null ? undefined : { token: m[1]! };
}

/**
 * Read from a paused socket until `decide` settles, then put every byte back
 * and call `done` with them (or with undefined when the client closed or
 * failed first: the socket is destroyed). A client silent for `timeoutMs`
 * is served as usual (a protocol where the server speaks first).
 */
export function peek<T>(sock: net.Socket, decide: (buf: Buffer) => T | 'more', timeoutMs: number, done: (verdict: T | undefined, buf: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let settled = false;
  const settle = (verdict: T | undefined, closed: boolean): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    sock.off('data', onData);
    sock.off('end', onClosed);
    sock.off('error', onClosed);
    sock.pause();
    if (closed) {
      sock.destroy();
      return;
    }
    if (buf.length > 0) sock.unshift(buf);
    done(verdict, buf);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const v = decide(buf);
    if (v !== 'more') settle(v, false);
  };
  const onClosed = (): void => settle(undefined, true);
  const timer = setTimeout(() => settle(undefined, false), timeoutMs);
  sock.on('data', onData);
  sock.once('end', onClosed);
  sock.once('error', onClosed);
  sock.resume();
}

/** The stored tls-alpn-01 answer for a ClientHello, if it asks for one. */
export function alpnAnswer(storage: string, hello: HelloFacts | undefined): string | undefined {
  if (hello === undefined || !hello.alpn.includes(ACME_TLS_ALPN) || hello.servername === '') return undefined;
  return readAlpnChallenge(storage, hello.servername);
}

/** The stored http-01 answer for a request, if it is one for a known token. */
export function httpAnswer(storage: string, req: { token: string } | undefined): string | undefined {
  return req === undefined ? undefined : readHttpChallenge(storage, req.token);
}

/** Complete the handshake with the challenge certificate (the CA checks it there) and close. */
export function serveAlpnChallenge(sock: net.Socket, pem: string, timeoutMs: number): void {
  let t: tls.TLSSocket;
  try {
    t = new tls.TLSSocket(sock, { isServer: true, secureContext: tls.createSecureContext({ cert: pem, key: pem }), ALPNProtocols: [ACME_TLS_ALPN] });
  } catch {
    sock.destroy();
    return;
  }
  const timer = setTimeout(() => t.destroy(), timeoutMs);
  t.on('error', () => t.destroy());
  t.once('secure', () => t.end());
  t.once('close', () => clearTimeout(timer));
  // The validator closes after the handshake; anything it sends is drained.
  t.resume();
}

/** Answer a challenge request (head already read) with the key authorization and close. */
export function serveHttpChallenge(sock: net.Socket, keyAuthorization: string): void {
  sock.on('error', () => sock.destroy());
  // Keep reading what the client sends, so closing never resets the answer away.
  sock.on('data', () => {});
  sock.resume();
  const body = Buffer.from(keyAuthorization.trim());
  sock.end(Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
    body,
  ]));
  setTimeout(() => sock.destroy(), 10_000).unref();
}
