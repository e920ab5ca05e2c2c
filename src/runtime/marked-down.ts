/**
 * `onMarkedDown: "shutdown"` (HAProxy's on-marked-down shutdown-sessions):
 * when the checks mark a backend DOWN, close what it still holds so
 * long-lived clients (IMAP IDLE) reconnect to a live one. Only a probe
 * verdict triggers it: a passive timeout, `down: true`, drain or disable
 * leave open sessions alone (docs/health-checks.md, "onMarkedDown").
 */
import type { Engine } from '../core/dataplane.js';
import type { Runtime } from './store.js';

/** Apply the policy to every transition from now on; returns the unsubscribe. */
export function followMarkedDown(runtime: Runtime, engine: Pick<Engine, 'killBackend'>, warn: (msg: string) => void): () => void {
  return runtime.bus.on('transition', (e) => {
    if (e.cause !== 'probe' || e.to !== 'DOWN') return;
    const up = runtime.config.upstreams[runtime.backend(e.backend)?.upstream ?? ''];
    if (up?.onMarkedDown !== 'shutdown') return;
    const n = engine.killBackend(e.backend, 'backend_down');
    if (n > 0) warn(`${e.backend}: closed ${n} open connection${n > 1 ? 's' : ''} (onMarkedDown: shutdown)`);
  });
}
