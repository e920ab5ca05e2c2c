/**
 * A minimal typed event bus. The runtime store publishes on it; the logger,
 * console and metrics subscribe. Listeners are called synchronously, in
 * order; a throwing listener is reported and does not stop the others.
 */
import type { BackendId, ChangeCause } from './types.js';

export type Listener<T> = (payload: T) => void;

export class Bus<Events extends { [K in keyof Events]: unknown }> {
  #map = new Map<keyof Events, Set<Listener<never>>>();
  onError: (err: unknown) => void = () => {};

  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    let set = this.#map.get(name);
    if (set === undefined) this.#map.set(name, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  /** True when anyone listens: lets hot paths skip building payloads. */
  has<K extends keyof Events>(name: K): boolean {
    return (this.#map.get(name)?.size ?? 0) > 0;
  }

  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    const set = this.#map.get(name);
    if (set === undefined) return;
    for (const fn of set) {
      try {
        (fn as Listener<Events[K]>)(payload);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}

/** A backend's shown state changed (UP -> DOWN, UP -> DRAINING, ...). */
export interface TransitionEvent {
  readonly time: number;
  readonly backend: BackendId;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly cause: ChangeCause;
}
