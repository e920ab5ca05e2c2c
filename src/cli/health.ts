/**
 * `tcplb-console health`: readiness for keepalived's vrrp_script and
 * ExaBGP's healthcheck. One line on stdout (`ready: imap 2/2 usable`,
 * `not ready: standby since …`), exit 0 when ready, 1 when not — and 1 when
 * the instance cannot be asked at all (not running, socket gone, no answer
 * within HEALTH_TIMEOUT_MS): an instance nobody can ask is not one to send
 * clients to.
 */
import { asTarget, ctlOnce, type Outcome } from '../control/client.js';

/** A wedged tcplb must not hold the address: after this long without an answer, not ready. */
export const HEALTH_TIMEOUT_MS = 2000;

export async function healthCheck(socket: string, out: { write(s: string): unknown } = process.stdout): Promise<number> {
  let o: Outcome;
  try {
    o = await ctlOnce({ cmd: 'health' }, asTarget(socket), HEALTH_TIMEOUT_MS);
  } catch (e) {
    o = { code: 1, out: [], error: (e as Error).message };
  }
  out.write(`${o.out[0] ?? `not ready: ${o.error ?? 'no answer'}`}\n`);
  return o.code === 0 ? 0 : 1;
}
