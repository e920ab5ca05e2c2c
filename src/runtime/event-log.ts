/**
 * A bounded ring of recent events (probes worth seeing, state transitions,
 * operator actions, reloads) for the console's log panel and `ctl status`.
 */
import type { EventView } from './snapshot.js';
import type { Runtime } from './store.js';

export class EventLog {
  #ring: EventView[] = [];
  #cap: number;

  constructor(cap = 200) {
    this.#cap = cap;
  }

  push(e: EventView): void {
    this.#ring.push(e);
    if (this.#ring.length > this.#cap * 2) this.#ring = this.#ring.slice(-this.#cap);
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
