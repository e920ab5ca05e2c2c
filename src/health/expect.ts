/**
 * Shared plumbing for the protocol probes: one deadline per probe, a settle-once
 * guard, a bounded byte/line reader, implicit TLS with certificate facts, and a
 * polite close. Each file in ./probes is then a short send/expect script
 * (STYLE habits 9 and 10).
 */
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { LOCAL_ERRORS, localErrorText } from '../core/local-errors.js';
import type { CertInfo, ProbeResult, ProbeStatus } from '../core/types.js';
import type { ProbeOptions, ProbeTarget } from './types.js';
import { ERR_PROBE, isLbError, ProbeFailure } from '../core/errors.js';

/** Most unread bytes a probe holds; a reply that needs more is judged on what it has. */
export const READ_CAP = 4096;
/** A polite close drains at most this much, this long, so it ends with FIN rather than RST. */
const DRAIN_BYTES = 64 * 1024;
const DRAIN_MS = 1000;
const DAY_MS = 86_400_000;


/** What a probe script decided. `polite` (default true): close with FIN after draining; false: drop at once. */
export interface Outcome {
  status: ProbeStatus;
  detail: string;
  polite?: boolean;
}

const NAMED: Record<string, string> = { '\r': '\\r', '\n': '\\n', '\t': '\\t', '"': '\\"', '\\': '\\\\' };

/**
 * Quote received bytes for a detail: at most `max` characters, anything but printable
 * ASCII escaped (`\r`, `\x00`), never cut inside an escape. Strings are taken as latin1,
 * as readLine returns them, so each escape is one byte on the wire.
 */
export function quote(data: string | Buffer, max = 40): string {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  let out = '';
  for (const c of text) {
    const piece = /[\x20-\x7e]/.test(c) && !NAMED[c] ? c : (NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    if (out.length + piece.length > max) return `"${out}..."`;
    out += piece;
  }
  return `"${out}"`;
}

/** Call `onExpire` once after `ms` unless the returned cancel function runs first. */
export function deadline(ms: number, onExpire: () => void): () => void {
  let live = true;
  // setImmediate: an I/O event (error, data) that became ready together with the timer is
  // handled first, so a real answer wins over a simultaneous timeout (as undici's connect does).
  const timer = setTimeout(() => setImmediate(() => live && onExpire()), Math.max(1, ms));
  return () => {
    live = false;
    clearTimeout(timer);
  };
}

/** One probe connection: connect (+preamble, +TLS), bounded reads, writes, close. */
export class Session {
  /** The layer being waited on; it picks the *_TIMEOUT status. Probes may move it (ssl_hello: L6). */
  phase: 'L4' | 'L6' | 'L7' = 'L4';
  /** Certificate facts, once a TLS handshake completed. */
  cert: CertInfo | undefined;
  /** Negotiated TLS version, e.g. 'TLSv1.3'; '' without TLS. */
  tlsVersion = '';
  /** The outermost socket (TLS over raw, once there is TLS). */
  #outer: net.Socket | undefined;
  #stream: net.Socket | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #eof = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #waitingFor = 'TCP connect';

  constructor(readonly target: ProbeTarget, readonly options: ProbeOptions) {}

  /** Connect, write the preamble (in clear, before any TLS), then handshake if `useTls`. */
  async connect(useTls = this.options.tls): Promise<void> {
    const raw = this.#track(net.connect({ host: this.target.host, port: this.target.port }));
    await until(raw, 'connect');
    const pre = this.options.preamble;
    if (pre !== undefined) raw.write(typeof pre === 'function' ? pre(raw) : pre);
    let stream = raw;
    if (useTls) {
      this.phase = 'L6';
      this.#waitingFor = 'TLS handshake';
      const name = this.options.servername;
      // Verify ourselves after the handshake: that records the certificate even when it is bad,
      // keeps `authorized` about the chain only, and gives a readable reason on failure.
      const secure = tls.connect({
        socket: raw,
        servername: name && !net.isIP(name) ? name : undefined,
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
        ...(this.options.clientCert === undefined ? {} : { cert: this.options.clientCert.cert, key: this.options.clientCert.key }),
      });
      await until(this.#track(secure), 'secureConnect');
      this.tlsVersion = secure.getProtocol() ?? '';
      this.cert = certInfo(secure, name);
      const problems = this.options.verify ? certProblems(secure, this.cert, name) : '';
      if (problems) throw new ProbeFailure(this.options.verifyStatus ?? 'L6_BAD', problems);
      stream = secure;
    }
    this.phase = 'L7';
    this.#waitingFor = 'a reply';
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      // Stop pulling from the kernel at the cap: memory stays bounded and a flood backs up on the sender.
      if (this.#buf.length >= READ_CAP) stream.pause();
      this.#notify();
    });
    const ended = (): void => {
      this.#eof = true;
      this.#notify();
    };
    stream.on('end', ended).on('close', ended);
  }

  /** Send bytes on the (possibly TLS) connection. */
  write(data: string | Buffer): void {
    this.#stream?.write(data);
  }

  /** Wait until at least `n` (<= READ_CAP) bytes are buffered; returns all buffered bytes, consuming none. */
  async need(n: number, what: string): Promise<Buffer> {
    this.#waitingFor = what;
    while (this.#buf.length < Math.min(n, READ_CAP)) await this.#more(what);
    return this.#buf;
  }

  /** Read one line (LF or CRLF stripped). A line longer than READ_CAP fails as a bad response. */
  async readLine(what: string): Promise<string> {
    this.#waitingFor = what;
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl !== -1 && nl < READ_CAP) {
        const line = this.#buf.subarray(0, nl > 0 && this.#buf[nl - 1] === 13 ? nl - 1 : nl);
        this.#buf = this.#buf.subarray(nl + 1);
        return line.toString('latin1'); // one char per byte: exact for matching and quoting
      }
      if (this.#buf.length >= READ_CAP) {
        throw new ProbeFailure('L7_BAD_RESPONSE', `${what} longer than ${READ_CAP} bytes: ${quote(this.#buf)}`);
      }
      await this.#more(what);
    }
  }

  /** Give the peer one event-loop turn to reset the connection; throws if it did. */
  async settle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#error) throw this.#error;
  }

  /** The outcome when the probe's deadline passed in the current phase. */
  timedOut(ms: number): Outcome {
    const got = this.#buf.length > 0 ? ` (got ${quote(this.#buf)})` : '';
    return { status: `${this.phase}_TIMEOUT`, detail: `timeout after ${ms} ms waiting for ${this.#waitingFor}${got}` };
  }

  /** End the connection: politely (FIN, then drain the peer's rest, bounded) or at once. */
  close(polite: boolean): void {
    const s = this.#stream;
    // Only the outermost socket: a TLSSocket owns the raw socket's handle and closes it, while
    // destroying the raw socket under a live TLSSocket can crash Node (seen: SIGSEGV on 20.20).
    const destroyAll = (): void => void this.#outer?.destroy();
    if (!polite || !s || s.destroyed) return destroyAll();
    let drained = 0;
    s.removeAllListeners('data');
    s.on('data', (chunk: Buffer) => (drained += chunk.length) > DRAIN_BYTES && destroyAll());
    const timer = setTimeout(destroyAll, DRAIN_MS).unref();
    s.once('close', () => {
      clearTimeout(timer);
      destroyAll();
    });
    s.resume();
    s.end();
  }

  #track<S extends net.Socket>(sock: S): S {
    this.#outer = sock;
    sock.on('error', (err: Error) => {
      this.#error ??= err;
      this.#notify();
    });
    return sock;
  }

  /** Wake the one pending reader (a script reads sequentially, so there is at most one). */
  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #more(what: string): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#eof) {
      const got = this.#buf.length > 0 ? `: ${quote(this.#buf)}` : '';
      throw new ProbeFailure(this.phase === 'L6' ? 'L6_BAD' : 'L7_BAD_RESPONSE', `connection closed waiting for ${what}${got}`);
    }
    this.#stream?.resume();
    await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#error) throw this.#error;
  }
}

/** Certificate facts of a finished handshake; `coversName` only when a servername is configured. */
function certInfo(sock: tls.TLSSocket, name: string): CertInfo | undefined {
  const peer = sock.getPeerCertificate();
  if (!peer || !peer.valid_to) return undefined;
  const validTo = Date.parse(peer.valid_to);
  const firstSan = peer.subjectaltname?.split(', ')[0]?.replace(/^[A-Za-z ]+:/, '');
  const info: CertInfo = {
    subject: String(peer.subject?.CN ?? '') || firstSan || '?',
    validTo,
    daysLeft: Math.floor((validTo - Date.now()) / DAY_MS),
    trusted: sock.authorized,
  };
  if (name) info.coversName = tls.checkServerIdentity(name, peer) === undefined;
  return info;
}

/** OpenSSL verify codes (as Node reports them) in words. */
const VERIFY_TEXT: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown issuer',
  CERT_HAS_EXPIRED: 'certificate has expired',
};

/** With `verify`: why the certificate is not acceptable, '' when it is. */
function certProblems(sock: tls.TLSSocket, cert: CertInfo | undefined, name: string): string {
  if (!cert) return 'no certificate presented';
  const problems: string[] = [];
  const expired = cert.validTo < Date.now();
  if (expired) problems.push(`certificate expired ${days(-cert.daysLeft)} ago`);
  // Node reports a code string here at run time although the typings say Error.
  const raw: unknown = sock.authorizationError;
  const code = typeof raw === 'string' ? raw : String((raw as NodeJS.ErrnoException | null)?.code ?? '');
  if (!cert.trusted && !(expired && code === 'CERT_HAS_EXPIRED')) {
    problems.push(`certificate not trusted: ${VERIFY_TEXT[code] ?? code.toLowerCase().replaceAll('_', ' ')}`);
  }
  if (cert.coversName === false) problems.push(`certificate does not cover ${name}`);
  return problems.join('; ');
}

/** Resolve on `event`; reject on error or an early close. */
function until(sock: net.Socket, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      sock.off(event, onEvent).off('error', done).off('close', onClose);
      return err ? reject(err) : resolve();
    };
    const onEvent = (): void => done();
    const onClose = (): void => done(new ProbeFailure('L6_BAD', 'connection closed during TLS handshake'));
    sock.once(event, onEvent).once('error', done).once('close', onClose);
  });
}

/**
 * Map a thrown error to an outcome: tcplb's own resource shortage is LOCAL_ERROR (no verdict
 * either way), refused/reset are L4, TLS trouble L6, the rest a socket error.
 */
function classify(err: unknown, session: Session): Outcome {
  if (isLbError(err, ERR_PROBE) && err instanceof ProbeFailure) return { status: err.status, detail: err.detail };
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = e?.code ?? '';
  if (LOCAL_ERRORS.has(code)) return { status: 'LOCAL_ERROR', detail: localErrorText(code) };
  if (code === 'ECONNREFUSED') return { status: 'L4_REFUSED', detail: 'connection refused' };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return { status: 'L4_REFUSED', detail: 'host unreachable' };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { status: 'SOCK_ERROR', detail: `cannot resolve ${session.target.host}` };
  if (session.phase === 'L6') {
    const why = code === 'ECONNRESET' ? 'connection closed by server' : e?.reason ?? e?.message;
    return { status: 'L6_BAD', detail: `TLS handshake failed: ${why}` };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') return { status: 'L4_REFUSED', detail: 'connection reset by peer' };
  return { status: 'SOCK_ERROR', detail: String(e?.message ?? err).slice(0, 80) };
}

/**
 * Run a probe script under the Probe contract: one deadline for the whole probe, abort on
 * `signal`, settle exactly once, never reject, close the connection afterwards.
 */
export function runProbe(
  target: ProbeTarget,
  options: ProbeOptions,
  signal: AbortSignal,
  script: (session: Session) => Promise<Outcome>,
): Promise<ProbeResult> {
  const started = performance.now();
  const session = new Session(target, options);
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const settle = (o: Outcome, polite: boolean): void => {
      if (settled) return;
      settled = true;
      cancel();
      signal.removeEventListener('abort', onAbort);
      session.close(polite);
      resolve(toResult(o, session.cert, performance.now() - started));
    };
    const onAbort = (): void => settle({ status: 'ABORTED', detail: 'aborted' }, false);
    const cancel = deadline(options.timeoutMs, () => settle(session.timedOut(options.timeoutMs), false));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(() => script(session))
      .then((o) => settle(o, o.polite ?? true), (err: unknown) => settle(classify(err, session), false));
  });
}

function toResult(o: Outcome, cert: CertInfo | undefined, ms: number): ProbeResult {
  const ok = o.status === 'L4_OK' || o.status === 'L6_OK' || o.status === 'L7_OK';
  let detail = o.detail;
  // Not a failure, but worth a glance on the console: it will be one soon.
  if (ok && cert && cert.daysLeft <= 3) {
    detail += cert.daysLeft < 0 ? `; certificate expired ${days(-cert.daysLeft)} ago` : `; certificate expires in ${days(cert.daysLeft)}`;
  }
  const result: ProbeResult = { ok, status: o.status, latencyMs: Math.round(ms), detail };
  if (cert) result.cert = cert;
  return result;
}

const days = (n: number): string => `${n} day${n === 1 ? '' : 's'}`;
