/**
 * Operational log (stderr by default) and the access log. Disabled levels are
 * no-ops, and access lines are batched per event-loop turn so a connection
 * flood costs one write per turn, not one per connection.
 */
import fs from 'node:fs';
import type { TransitionEvent } from '../core/events.js';
import { formatHostPort } from '../core/types.js';
import type { SessionRecord } from '../proxy/types.js';

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

/** One access-log line, without the trailing newline. */
export function formatAccess(r: SessionRecord, format: 'text' | 'json'): string {
  const time = new Date(r.start + r.durationMs).toISOString();
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
    });
  }
  const detail = r.detail ? ` "${r.detail}"` : '';
  return `${time} ${r.listener} ${formatHostPort(r.client, r.clientPort)} ${r.backend || '-'} ${r.bytesIn} ${r.bytesOut} ${(r.durationMs / 1000).toFixed(3)}s ${r.reason}${detail}`;
}

/**
 * The access log: '-' = stdout, else a file opened for append. `reopen()`
 * (on SIGUSR1) reopens the file so logrotate can move the old one away.
 */
export class AccessLog {
  #dest: string;
  #format: 'text' | 'json';
  #fd: number | undefined;
  #pending: string[] = [];
  #scheduled = false;
  #onError: (msg: string) => void;

  constructor(dest: string, format: 'text' | 'json', onError: (msg: string) => void) {
    this.#dest = dest;
    this.#format = format;
    this.#onError = onError;
    this.#open();
  }

  get destination(): string {
    return this.#dest;
  }

  write(r: SessionRecord): void {
    this.#pending.push(formatAccess(r, this.#format));
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('\n') + '\n';
    this.#pending = [];
    try {
      if (this.#dest === '-') process.stdout.write(text);
      else if (this.#fd !== undefined) fs.writeSync(this.#fd, text);
    } catch (err) {
      this.#onError(`access log ${this.#dest}: ${(err as Error).message}`);
    }
  }

  reopen(): void {
    this.flush();
    this.#close();
    this.#open();
  }

  close(): void {
    this.flush();
    this.#close();
  }

  #open(): void {
    if (this.#dest === '-') return;
    try {
      this.#fd = fs.openSync(this.#dest, 'a', 0o640);
    } catch (err) {
      this.#onError(`cannot open access log ${this.#dest}: ${(err as Error).message}`);
    }
  }

  #close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}
