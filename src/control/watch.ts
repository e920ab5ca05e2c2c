/**
 * One `watch` subscriber on the control socket: snapshots on a timer, events
 * as they happen, all bounded so a slow or stuck reader costs the proxy
 * nothing but the memory of its bounded backlog:
 * - a snapshot tick is skipped while the previous snapshot is still unsent
 *   (a reader that does not read gets no new snapshots built for it);
 * - a line that would be queued behind more than `maxBacklogBytes` unsent
 *   bytes drops the watcher instead;
 * - a backlog that makes no progress for `stallMs` drops the watcher (a stuck
 *   reader on a quiet proxy never reaches the byte bound).
 * Nothing here waits on the reader: writes are queued or the watcher dropped.
 */
import type net from 'node:net';
import type { Actions } from '../runtime/actions-types.js';
import type { EventView, Snapshot } from '../runtime/snapshot.js';
import { encodeLine, WATCH_CONNECTIONS, type StreamLine } from './protocol.js';

export interface WatchLimits {
  /** Unsent bytes a watcher may have queued; a line beyond drops it. */
  readonly maxBacklogBytes: number;
  /** A backlog that makes no progress this long drops the watcher. */
  readonly stallMs: number;
  /** After the drop, how long the last line (`end`) may take to be read before the socket is destroyed. */
  readonly dropGraceMs: number;
}

export const WATCH_LIMITS: WatchLimits = { maxBacklogBytes: 1024 * 1024, stallMs: 30_000, dropGraceMs: 2000 };

export interface WatchOptions {
  readonly interval: number;
  readonly events: boolean;
  readonly snapshots: boolean;
}

/** Each event's line, encoded once however many watchers send it. */
const eventLines = new WeakMap<EventView, Buffer>();
function encodedEvent(e: EventView): Buffer {
  let line = eventLines.get(e);
  if (line === undefined) {
    line = Buffer.from(encodeLine({ type: 'event', data: e }));
    eventLines.set(e, line);
  }
  return line;
}

export class Watcher {
  #sock: net.Socket;
  #actions: Actions;
  #opts: WatchOptions;
  #limits: WatchLimits;
  #log: (msg: string) => void;
  #onStop: () => void;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #snapshotPending = false;
  #snapshotBytes = 0; // size of the snapshot line not yet flushed, allowed on top of the bound
  #queued = 0; // bytes handed to the socket in all
  #progressAt = Date.now();
  #lastFlushed = 0;
  #stopped = false;

  constructor(sock: net.Socket, actions: Actions, opts: WatchOptions, limits: WatchLimits, log: (msg: string) => void, onStop: () => void) {
    this.#sock = sock;
    this.#actions = actions;
    this.#opts = opts;
    this.#limits = limits;
    this.#log = log;
    this.#onStop = onStop;
  }

  /**
   * Start streaming: `first` (or a fresh snapshot) now, then one per interval;
   * events from this moment on. Call in the turn `first` was built: no event
   * then falls between the snapshot's `events` and the stream, none is in both.
   */
  start(first?: Snapshot): void {
    if (this.#opts.events) this.#unsubscribe = this.#actions.onEvent?.((e) => this.#event(e));
    if (this.#opts.snapshots) this.#snapshot(first);
    this.#timer = setInterval(() => this.#tick(), this.#opts.interval);
  }

  /** Queue one line (a reply to a stray request, a stream line); false when the watcher is gone. */
  write(line: string): boolean {
    return this.#write(Buffer.from(line));
  }

  /** Stop streaming (the client left, or the server closes). Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#onStop();
  }

  #event(e: EventView): void {
    this.#write(encodedEvent(e));
  }

  #snapshot(data?: Snapshot): void {
    let line: Buffer;
    try {
      line = Buffer.from(encodeLine({ type: 'snapshot', data: data ?? this.#actions.snapshot(WATCH_CONNECTIONS) }));
    } catch (err) {
      this.#log(`control: watch snapshot failed: ${(err as Error).stack ?? String(err)}`);
      return;
    }
    this.#snapshotPending = true;
    this.#snapshotBytes = line.length;
    const sent = this.#write(line, () => {
      this.#snapshotPending = false;
      this.#snapshotBytes = 0;
    });
    if (!sent) this.#snapshotPending = false;
  }

  #tick(): void {
    const unsent = this.#sock.writableLength;
    const flushed = this.#queued - unsent;
    if (unsent === 0 || flushed !== this.#lastFlushed) {
      this.#lastFlushed = flushed;
      this.#progressAt = Date.now();
    } else if (Date.now() - this.#progressAt >= this.#limits.stallMs) {
      return this.#drop(`nothing read for ${Math.round((Date.now() - this.#progressAt) / 1000)} s with ${unsent} bytes unsent`);
    }
    if (this.#opts.snapshots && !this.#snapshotPending) this.#snapshot();
  }

  #write(line: Buffer, flushed?: () => void): boolean {
    if (this.#stopped || !this.#sock.writable) return false;
    const unsent = this.#sock.writableLength;
    // The snapshot being sent does not count: one larger than the bound (a
    // 10,000-upstream config) still goes to a reader that keeps up, and the
    // bound is on what piles up beside it. At most one snapshot is unsent.
    const allowed = this.#limits.maxBacklogBytes + this.#snapshotBytes;
    if (unsent > 0 && unsent + line.length > allowed) {
      this.#drop(`${unsent} bytes unsent, over the ${this.#limits.maxBacklogBytes}-byte bound`);
      return false;
    }
    this.#queued += line.length;
    this.#sock.write(line, flushed);
    return true;
  }

  /** Drop a reader that does not keep up: last line, then the socket, whatever it reads. */
  #drop(reason: string): void {
    this.stop();
    this.#log(`control: dropped a watcher: ${reason}`);
    const sock = this.#sock;
    const grace = setTimeout(() => sock.destroy(), this.#limits.dropGraceMs);
    sock.once('close', () => clearTimeout(grace));
    sock.end(encodeLine({ type: 'end', reason: `dropped: ${reason}` } satisfies StreamLine));
  }
}
