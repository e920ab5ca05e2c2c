/**
 * A bounded ring of recent events (probes worth seeing, state transitions,
 * operator actions, reloads) for the console's log panel and `ctl status`.
 */
import type { EventView } from './snapshot.js';
import type { Runtime } from './store.js';

export class EventLog {
  #ring: EventView[] = [];
  #cap: number;
  #listeners = new Set<(e: EventView) => void>();

  constructor(cap = 200) {
    this.#cap = cap;
  }

  push(e: EventView): void {
    this.#ring.push(e);
    if (this.#ring.length > this.#cap * 2) this.#ring = this.#ring.slice(-this.#cap);
    for (const fn of this.#listeners) {
      // A listener (a control socket watcher) must not break the one pushing:
      // the runtime's bus, an operator action.
      try {
        fn(e);
      } catch {
        /* the listener's own problem */
      }
    }
  }

  /** Call `fn` with every event pushed from now on; returns the unsubscribe. */
  subscribe(fn: (e: EventView) => void): () => void {
    const own = (e: EventView): void => fn(e); // a fresh identity: subscribing one function twice gives two subscriptions
    this.#listeners.add(own);
    return () => this.#listeners.delete(own);
  }

  /** Subscribers right now (for leak tests). */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Newest last, at most `cap`. */
  list(): EventView[] {
    return this.#ring.slice(-this.#cap);
  }

  /**
   * Follow the runtime's bus. Routine passing probes are left out (the tables
   * show each backend's last probe); failures, rise/fall progress, forced
   * probes and every transition go in.
   */
  follow(runtime: Runtime): void {
    runtime.bus.on('probe', (e) => {
      if (e.result.ok && e.transition === 'unchanged' && !e.forced) return;
      const tag = e.forced ? 'check' : 'probe';
      this.push({
        time: e.time,
        kind: 'probe',
        backend: e.backend,
        ok: e.result.ok,
        text: `${tag} ${e.result.status} ${e.result.latencyMs}ms ${e.result.detail}`,
      });
    });
    runtime.bus.on('transition', (e) => {
      this.push({ time: e.time, kind: 'transition', backend: e.backend, ok: e.to === 'UP', text: `${e.from} -> ${e.to} (${e.cause}: ${e.reason})` });
    });
  }
}
