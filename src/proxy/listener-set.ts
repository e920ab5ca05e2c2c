/**
 * The two-phase listener change every engine makes on a reload, and the
 * wait for open sessions to end, written once. An engine supplies how to
 * make, start, stop and activate one of its listeners; this decides which
 * listeners are kept (same address: the socket stays, even when renamed),
 * which are new, and which go.
 */
import type { ListenerConfig } from '../core/config.js';
import type { Admission } from './admission.js';
import type { ListenerResult, PreparedListeners } from '../core/dataplane.js';

export interface EngineListener {
  readonly admission: Admission;
  readonly cfg: ListenerConfig;
}

export interface ListenerOps<L extends EngineListener> {
  create(cfg: ListenerConfig): L;
  /** Bind (not yet serving); a failure result names the listener. */
  start(l: L): Promise<ListenerResult> | ListenerResult;
  /** Stop accepting; its open sessions carry on. */
  stop(l: L): void;
  /** Start serving a bound listener. */
  activate(l: L): void;
  /** A kept listener's settings were replaced (after `admission.update`). */
  update?(l: L): void;
}

const addressKey = (c: ListenerConfig): string => `${c.listen.host}|${c.listen.port}`;

/**
 * Phase one: bind every new or moved listener beside the running ones; if
 * any bind fails, close what was just bound and change nothing. Phase two
 * (`commit`) stops the removed ones, updates the kept ones in place, hands
 * the new name -> listener map to `install` and activates the new ones.
 */
export async function prepareListenerSet<L extends EngineListener>(
  running: ReadonlyMap<string, L>,
  next: readonly ListenerConfig[],
  ops: ListenerOps<L>,
  install: (set: Map<string, L>) => void,
): Promise<PreparedListeners> {
  const byAddr = new Map([...running.values()].map((l) => [addressKey(l.cfg), l]));
  const keep = new Map<string, L>(); // new name -> running listener with the same address
  const fresh = new Map<ListenerConfig, L>();
  for (const cfg of next) {
    const same = byAddr.get(addressKey(cfg));
    if (same !== undefined) keep.set(cfg.name, same);
    else fresh.set(cfg, ops.create(cfg));
  }
  const started = await Promise.all([...fresh.values()].map((l) => ops.start(l)));
  const failed = started.filter((r) => !r.ok);
  if (failed.length > 0) {
    for (const l of fresh.values()) ops.stop(l);
    return { ok: false, results: failed, commit() {}, abort() {} };
  }
  let settled = false;
  return {
    ok: true,
    results: next.map((l) => ({ name: l.name, ok: true })),
    commit: () => {
      if (settled) return;
      settled = true;
      const kept = new Set(keep.values());
      for (const l of running.values()) if (!kept.has(l)) ops.stop(l);
      const set = new Map<string, L>();
      for (const cfg of next) {
        const l = keep.get(cfg.name) ?? fresh.get(cfg)!;
        l.admission.update(cfg);
        ops.update?.(l);
        set.set(cfg.name, l);
      }
      install(set);
      for (const l of fresh.values()) ops.activate(l);
    },
    abort: () => {
      if (settled) return;
      settled = true;
      for (const l of fresh.values()) ops.stop(l);
    },
  };
}

/**
 * `Engine.setListeners` for an engine with two-phase `prepareListeners`:
 * bind, run `beforeCommit` (the control plane installs the new routes),
 * commit. All or nothing.
 */
export async function applyListeners(
  engine: { prepareListeners(l: readonly ListenerConfig[]): Promise<PreparedListeners> },
  listeners: readonly ListenerConfig[],
  beforeCommit?: () => void,
): Promise<ListenerResult[]> {
  const p = await engine.prepareListeners(listeners);
  if (!p.ok) return p.results;
  beforeCommit?.();
  p.commit();
  return p.results;
}

/** Resolves waits once the open-session count reaches zero, or at their time limit. */
export class DrainWait {
  #done: (() => void) | undefined;

  /** Wait until `open()` is 0 (checked now and on every `settled`), at most `ms`. */
  wait(open: () => number, ms: number): Promise<void> {
    if (open() === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      this.#done = done;
      function done(): void {
        clearTimeout(t);
        resolve();
      }
    }).finally(() => (this.#done = undefined));
  }

  /** True while someone waits (so callers can skip counting otherwise). */
  get waiting(): boolean {
    return this.#done !== undefined;
  }

  /** Call when a session ended and `open` sessions remain. */
  settled(open: number): void {
    if (this.#done !== undefined && open === 0) this.#done();
  }
}
