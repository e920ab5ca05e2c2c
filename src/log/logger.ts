/**
 * Operational log (stderr by default) and the access log. Disabled levels are
 * no-ops, and access lines are written in batches (every 100 ms, or at
 * 64 KiB) so a connection flood costs a few writes a second, not one per
 * connection or per event-loop turn.
 */
import fs from 'node:fs';
import type { TransitionEvent } from '../core/events.js';
import { formatHostPort } from '../core/types.js';
import type { SessionRecord } from '../core/dataplane.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const noop = (): void => {};

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Change the threshold (a reload of `log.level`); disabled levels become no-ops again. */
  setLevel(level: Level): void;
}

/** A line logger on a writable (stderr by default). */
export function createLogger(level: Level, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const logger = { setLevel } as Logger;
  function setLevel(to: Level): void {
    for (const lv of ['debug', 'info', 'warn', 'error'] as const) {
      logger[lv] = RANK[lv] < RANK[to] ? noop : (msg: string) => write(`${new Date().toISOString()} ${lv.padEnd(5)} ${msg}\n`);
    }
  }
  setLevel(level);
  return logger;
}

/** `UP -> DOWN imap/10.0.0.2:143 (probe: timeout after 2000 ms)` */
export function formatTransition(e: TransitionEvent): string {
  return `${e.backend} ${e.from} -> ${e.to} (${e.cause}: ${e.reason})`;
}

let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, with the part up to the second made once per
 * second: an access-log line is written per connection.
 */
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  const sec = Math.floor(whole / 1000);
  if (sec !== isoSecond) {
    isoSecond = sec;
    isoPrefix = new Date(sec * 1000).toISOString().slice(0, -4); // "YYYY-MM-DDTHH:MM:SS."
  }
  const milli = whole - sec * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** One access-log line, without the trailing newline. */
export function formatAccess(r: SessionRecord, format: 'text' | 'json'): string {
  const time = isoTime(r.start + r.durationMs);
  if (format === 'json') {
    return JSON.stringify({
      time,
      listener: r.listener,
      client: r.client,
      clientPort: r.clientPort,
      backend: r.backend || null,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      durationMs: r.durationMs,
      reason: r.reason,
      ...(r.detail ? { detail: r.detail } : {}),
      ...(r.tls !== undefined && r.tls !== '-' ? { tls: r.tls } : {}),
    });
  }
  const detail = r.detail ? ` "${r.detail}"` : '';
  // Only sessions where the balancer spoke TLS carry the field: plain lines keep their old shape.
  const tls = r.tls !== undefined && r.tls !== '-' ? ` tls=${r.tls}` : '';
  return `${time} ${r.listener} ${formatHostPort(r.client, r.clientPort)} ${r.backend || '-'} ${r.bytesIn} ${r.bytesOut} ${(r.durationMs / 1000).toFixed(3)}s ${r.reason}${tls}${detail}`;
}

/** An access-log batch is written after this long, or once it holds FLUSH_BYTES. */
const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;
/** How often a failed open of the access log is tried again. */
export const ACCESS_RETRY_MS = 2000;

export interface AccessLogOptions {
  /** Told when the file opens after a failure ("logging resumes"). */
  onInfo?: (msg: string) => void;
  retryMs?: number;
}

/**
 * The access log: '-' = stdout, else a file opened for append. `reopen()`
 * (on SIGUSR1) reopens the file so logrotate can move the old one away.
 * When the file cannot be opened (its folder is gone, permissions), the
 * failure is reported once, the old descriptor is kept (lines go on to the
 * moved file rather than nowhere) and the open is tried again every
 * `retryMs` and at the next reopen(); `onInfo` says when it succeeds.
 */
export class AccessLog {
  #dest: string;
  #format: 'text' | 'json';
  #fd: number | undefined;
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #onError: (msg: string) => void;
  #onInfo: (msg: string) => void;
  #retryMs: number;
  #retry: NodeJS.Timeout | undefined;
  /** When the current run of failed opens began (undefined: none failing). */
  #failingSince: number | undefined;
  #closed = false;

  constructor(dest: string, format: 'text' | 'json', onError: (msg: string) => void, opts: AccessLogOptions = {}) {
    this.#dest = dest;
    this.#format = format;
    this.#onError = onError;
    this.#onInfo = opts.onInfo ?? noop;
    this.#retryMs = opts.retryMs ?? ACCESS_RETRY_MS;
    this.#open();
  }

  get destination(): string {
    return this.#dest;
  }

  /** True while the file is open (always for stdout). */
  get isOpen(): boolean {
    return this.#dest === '-' || (this.#fd !== undefined && this.#failingSince === undefined);
  }

  write(r: SessionRecord): void {
    const line = formatAccess(r, this.#format);
    this.#pending.push(line);
    this.#pendingBytes += line.length + 1;
    if (this.#pendingBytes >= FLUSH_BYTES) this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref(); // close() flushes what is left
    }
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('\n') + '\n';
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      if (this.#dest === '-') process.stdout.write(text);
      else if (this.#fd !== undefined) fs.writeSync(this.#fd, text);
    } catch (err) {
      this.#onError(`access log ${this.#dest}: ${(err as Error).message}`);
    }
  }

  /**
   * Open the file anew (logrotate moved it). True when the new file is open;
   * false when the open failed: that is reported, the old file stays in
   * use, and the open is retried.
   */
  reopen(): boolean {
    this.flush();
    return this.#open();
  }

  close(): void {
    this.flush();
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Open the destination; on success swap it in for the old descriptor, else keep that and retry. */
  #open(): boolean {
    if (this.#dest === '-' || this.#closed) return true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    let fd: number;
    try {
      fd = fs.openSync(this.#dest, 'a', 0o640);
    } catch (err) {
      if (this.#failingSince === undefined) {
        this.#failingSince = Date.now();
        const now = this.#fd === undefined ? 'access lines are dropped until it opens' : 'still writing to the file open before';
        this.#onError(`cannot open access log ${this.#dest}: ${(err as Error).message}; ${now}; retrying every ${this.#retryMs / 1000} s`);
      }
      this.#retry = setTimeout(() => this.#open(), this.#retryMs);
      this.#retry.unref(); // a retry must not keep a stopped process alive
      return false;
    }
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = fd;
    if (this.#failingSince !== undefined) {
      this.#onInfo(`access log ${this.#dest} open again after ${((Date.now() - this.#failingSince) / 1000).toFixed(1)} s of failed attempts: logging to it resumes`);
      this.#failingSince = undefined;
    }
    return true;
  }
}
