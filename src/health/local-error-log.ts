/**
 * Rate-limited logging of probes that could not run for tcplb's own lack of
 * resources (LOCAL_ERROR). While descriptors are short every probe of every
 * backend hits it, so as the data path's accept errors (proxy/admission.ts):
 * one line at once, then at most one summary a second with a count until a
 * second passes without any.
 */
export class LocalErrorLog {
  #more = 0;
  #last = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly log: (line: string) => void) {}

  /** A probe of `backend` ended LOCAL_ERROR with `detail` (`EMFILE: tcplb is out of ...`). */
  report(backend: string, detail: string): void {
    this.#last = detail;
    if (this.#timer !== undefined) {
      this.#more++;
      return;
    }
    this.log(`health checks: probe of ${backend} could not run: ${detail}; not the backend's fault, backend states are kept as they are`);
    this.#arm();
  }

  /** Summarise the next second; while probes keep failing locally, keep to one line a second. */
  #arm(): void {
    this.#timer = setTimeout(() => {
      const n = this.#more;
      this.#more = 0;
      if (n === 0) {
        this.#timer = undefined; // quiet for a second: the next one is logged at once
        return;
      }
      this.log(`health checks: ${n} more probe${n > 1 ? 's' : ''} could not run in the last second (${this.#last}); backend states kept`);
      this.#arm();
    }, 1000);
    // Never what keeps the process alive, and needs no close(): it stops after a quiet second.
    this.#timer.unref();
  }
}
