/**
 * What bad clients do to a listener before a session starts (a failed TLS
 * handshake, a refused STARTTLS exchange, a PROXY header refused), logged
 * per listener and kind at most once a second: the first of a kind at once,
 * then one line with the count of the ones that followed within the second.
 * A thousand aborted handshakes are two lines, not a thousand; every engine
 * (the JavaScript one, the native one's TLS) logs through one.
 */
export class ClientFailureLog {
  readonly #pending = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** `what` names the failure in the log (`TLS handshake failed`, `STARTTLS`, `PROXY header refused`). */
  constructor(readonly log: (line: string) => void, readonly what = 'TLS handshake failed') {}

  report(listener: string, kind: string, client: string): void {
    const key = `${listener}\0${kind}`;
    if (this.#timers.has(key)) {
      this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
      return;
    }
    this.log(`listener ${listener}: ${this.what}: ${kind} (client ${client})`);
    this.#arm(key, listener, kind);
  }

  /** One summary a second while failures of this kind keep coming; quiet once a second passes without one. */
  #arm(key: string, listener: string, kind: string): void {
    const t = setTimeout(() => {
      const n = this.#pending.get(key) ?? 0;
      this.#pending.delete(key);
      this.#timers.delete(key);
      if (n === 0) return;
      this.log(`listener ${listener}: ${this.what}: ${kind}: ${n} more in the last second`);
      this.#arm(key, listener, kind);
    }, 1000);
    t.unref();
    this.#timers.set(key, t);
  }
}
