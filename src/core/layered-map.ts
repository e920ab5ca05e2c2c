/**
 * An immutable map built from its predecessor plus a few changes, in time
 * proportional to the changes rather than to the whole map: the routing
 * table of 10,000 upstreams gets a new version for every state change of one
 * backend, and copying 10,000 entries each time made the first round of
 * probes quadratic.
 *
 * A version is a shared, never-mutated `base` plus a small `over` layer of
 * entries that differ from it (undefined = removed). When the layer grows
 * past about the square root of the base, it is folded into a fresh base, so
 * a lookup costs at most two Map lookups and a new version costs O(layer)
 * amortised.
 */
export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  readonly #base: ReadonlyMap<K, V>;
  readonly #over: ReadonlyMap<K, V | undefined>;
  readonly size: number;

  /** A map of `entries`. */
  static of<K, V>(entries: Iterable<readonly [K, V]> = []): LayeredMap<K, V> {
    const base = new Map(entries);
    return new LayeredMap(base, new Map(), base.size);
  }

  private constructor(base: ReadonlyMap<K, V>, over: ReadonlyMap<K, V | undefined>, size: number) {
    this.#base = base;
    this.#over = over;
    this.size = size;
  }

  /** A new version with `changes` applied (a value of undefined removes the key). */
  with(changes: ReadonlyMap<K, V | undefined>): LayeredMap<K, V> {
    const over = new Map(this.#over);
    for (const [k, v] of changes) over.set(k, v);
    if (over.size > 16 + Math.sqrt(this.#base.size)) {
      const base = new Map(this.#base);
      for (const [k, v] of over) {
        if (v === undefined) base.delete(k);
        else base.set(k, v);
      }
      return new LayeredMap(base, new Map(), base.size);
    }
    let size = this.#base.size;
    for (const [k, v] of over) size += (v !== undefined ? 1 : 0) - (this.#base.has(k) ? 1 : 0);
    return new LayeredMap(this.#base, over, size);
  }

  get(key: K): V | undefined {
    return this.#over.has(key) ? this.#over.get(key) : this.#base.get(key);
  }

  has(key: K): boolean {
    return this.#over.has(key) ? this.#over.get(key) !== undefined : this.#base.has(key);
  }

  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.#base) if (!this.#over.has(k)) yield [k, v];
    for (const [k, v] of this.#over) if (v !== undefined) yield [k, v];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}
