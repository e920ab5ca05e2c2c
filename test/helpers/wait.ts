/**
 * Waiting in tests: on an observable condition, with a deadline, never on the
 * clock alone. A sleep used as synchronisation ("the record is surely there
 * after 200 ms") is slow when the machine is idle and flaky when it is busy;
 * `waitFor` returns as soon as the condition holds and, when it does not hold
 * in time, fails naming what it waited for and what it saw last.
 */
import { inspect } from 'node:util';

export interface WaitOptions<T> {
  /** What is awaited, for the failure message ("the access record", "B removed"). */
  what: string;
  /** Give up after this long (default 3000 ms). */
  timeoutMs?: number;
  /** Poll period (default 20 ms). */
  intervalMs?: number;
  /** Done when this holds for the probed value; by default when the value is truthy. */
  until?: (value: T) => boolean;
}

/** Plain delay. Only for time that is part of a scenario (pacing, "stay idle for N s"), never to wait for an event. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Outcome<T> = { ok: true; value: T } | { ok: false; last: { value: T } | { error: unknown } | undefined };

async function poll<T>(probe: () => T | Promise<T>, opts: WaitOptions<T>): Promise<Outcome<T>> {
  const until = opts.until ?? ((v: T) => Boolean(v));
  const end = Date.now() + (opts.timeoutMs ?? 3000);
  let last: { value: T } | { error: unknown } | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (until(value)) return { ok: true, value };
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= end) return { ok: false, last };
    await sleep(opts.intervalMs ?? 20);
  }
}

function describe(last: { value: unknown } | { error: unknown } | undefined): string {
  if (last === undefined) return 'nothing';
  if ('error' in last) return `error ${String((last.error as Error | undefined)?.message ?? last.error)}`;
  return inspect(last.value, { depth: 3, breakLength: Infinity, maxStringLength: 500, maxArrayLength: 20 });
}

/**
 * Poll `probe` until its value satisfies `until` (default: is truthy); resolves
 * with that value. A probe that throws counts as "not yet" (e.g. a file not yet
 * written): its error is what the timeout message reports. Rejects after
 * `timeoutMs` with "timed out after N ms waiting for <what>; last observed: <value>".
 */
export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions<T>): Promise<T> {
  const r = await poll(probe, opts);
  if (r.ok) return r.value;
  throw new Error(`timed out after ${opts.timeoutMs ?? 3000} ms waiting for ${opts.what}; last observed: ${describe(r.last)}`);
}

/**
 * Like waitFor, but resolves false at the deadline instead of failing: for a
 * measurement whose own assertion (after the wait) reports the shortfall with
 * the figures it measured.
 */
export async function waitUntil<T>(probe: () => T | Promise<T>, opts: WaitOptions<T>): Promise<boolean> {
  return (await poll(probe, opts)).ok;
}

/**
 * Wait until `probe`'s value stops changing: the same value (compared with
 * JSON) for `quietMs` on end. For "the process finished what it was doing"
 * (descriptors closed, a log flushed) when no event says so. Resolves with the
 * steady value, or fails after `timeoutMs` naming `what` and the last value.
 */
export async function waitForSteady<T>(probe: () => T | Promise<T>, opts: { what: string; quietMs: number; timeoutMs?: number; intervalMs?: number }): Promise<T> {
  let seen = '';
  let since = Date.now();
  let value!: T;
  await waitFor(
    async () => {
      value = await probe();
      const key = JSON.stringify(value);
      if (key !== seen) {
        seen = key;
        since = Date.now();
      }
      return Date.now() - since >= opts.quietMs ? value : undefined;
    },
    { what: `${opts.what} (steady for ${opts.quietMs} ms)`, timeoutMs: opts.timeoutMs ?? 5000, intervalMs: opts.intervalMs ?? Math.max(10, Math.floor(opts.quietMs / 4)), until: (v) => v !== undefined },
  ).catch((e: Error) => {
    throw new Error(`${e.message.replace(/last observed: .*$/, '')}last observed: ${describe({ value })}`);
  });
  return value;
}
