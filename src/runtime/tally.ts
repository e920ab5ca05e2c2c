/**
 * The cumulative session figures, kept once. The engine's sink (the runtime)
 * feeds it; the snapshot (console, `ctl status`) and the metrics endpoint
 * read it. Connections open *now* are not here: the engine owns those
 * (`Engine.activeByBackend()`, the same counts balancing and `maxConns` use),
 * so there is no second count to drift from it.
 *
 * Figures are kept by backend id for the process's life, not with the
 * backend's config entry: a backend that a reload removes and re-adds keeps
 * its total, and sessions that outlive its removal still count for it.
 * Listener figures are kept by name, likewise.
 */
import type { BackendId, EndReason } from '../core/types.js';
import type { SessionRecord } from '../core/dataplane.js';

/** Reasons that mean the client was turned away (counted as refused per listener). */
export const REFUSED_REASONS: ReadonlySet<EndReason> = new Set<EndReason>(['denied', 'limit', 'no_backend', 'connect_failed']);

export interface BackendTally {
  /** Connections made to the backend (counted when the connect succeeded). */
  total: number;
  /** client -> backend, backend -> client, over finished connections. */
  bytesIn: number;
  bytesOut: number;
}

export interface ListenerTally {
  /** Finished client connections, refused ones included. */
  finished: number;
  bytesIn: number;
  bytesOut: number;
  refused: Map<EndReason, number>;
}

const NONE: Readonly<BackendTally> = Object.freeze({ total: 0, bytesIn: 0, bytesOut: 0 });

export class Tally {
  #backends = new Map<BackendId, BackendTally>();
  #listeners = new Map<string, ListenerTally>();
  /** Finished sessions, and their bytes both ways, over every listener. */
  #finished = 0;
  #finishedBytes = 0;

  /** A connect to `id` succeeded. */
  opened(id: BackendId): void {
    let b = this.#backends.get(id);
    if (b === undefined) this.#backends.set(id, (b = { total: 0, bytesIn: 0, bytesOut: 0 }));
    b.total++;
  }

  /** A client connection ended (refused, failed or relayed). */
  closed(rec: SessionRecord): void {
    this.#finished++;
    this.#finishedBytes += rec.bytesIn + rec.bytesOut;
    let l = this.#listeners.get(rec.listener);
    if (l === undefined) this.#listeners.set(rec.listener, (l = { finished: 0, bytesIn: 0, bytesOut: 0, refused: new Map() }));
    l.finished++;
    l.bytesIn += rec.bytesIn;
    l.bytesOut += rec.bytesOut;
    if (REFUSED_REASONS.has(rec.reason)) l.refused.set(rec.reason, (l.refused.get(rec.reason) ?? 0) + 1);
    const b = rec.backend === '' || rec.reason === 'connect_failed' ? undefined : this.#backends.get(rec.backend);
    if (b !== undefined) {
      b.bytesIn += rec.bytesIn;
      b.bytesOut += rec.bytesOut;
    }
  }

  /** One backend's figures (zeros for one that never had a connection). */
  backend(id: BackendId): Readonly<BackendTally> {
    return this.#backends.get(id) ?? NONE;
  }

  /** Figures per listener name, every listener that ever finished a connection. */
  listeners(): ReadonlyMap<string, Readonly<ListenerTally>> {
    return this.#listeners;
  }

  /** Finished sessions over every listener. */
  get finished(): number {
    return this.#finished;
  }

  /** Bytes both ways of the finished sessions. */
  get finishedBytes(): number {
    return this.#finishedBytes;
  }
}
