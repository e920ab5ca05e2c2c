/**
 * Observers yield the CPU. An attached console and the `ctl bridge` that
 * feeds it over ssh run on (or next to) the balancer's host and only watch:
 * when the cores are short, the scheduler should give them to the balancer.
 * bench/attach-overhead.sh measures what attached consoles cost the data
 * plane: on a saturated 2-core host, all of it is their own rendering
 * competing for the cores, none of it inside tcplb.
 */
import os from 'node:os';

/**
 * The niceness an attached console (and the ssh bridge that feeds it) takes.
 * A settled console uses ~2% of a core (one frame a second), so while the
 * host has time to spare nothing changes; when the cores are short, the
 * scheduler weighs it at 110 against 1024 for each busy task at niceness 0,
 * which still covers its ~2% but lets the balancer run first. A console
 * started with a higher niceness keeps it.
 */
export const ATTACHED_NICE = 10;

/**
 * Lower this process's priority to ATTACHED_NICE (never raise it: an
 * operator who started the console with `nice -n 15` keeps 15). Returns the
 * niceness in effect. Setting it can only fail on odd platforms; the console
 * runs either way.
 */
export function yieldCpu(nice = ATTACHED_NICE): number | undefined {
  try {
    const now = os.getPriority(0);
    if (now < nice) os.setPriority(0, nice);
    return os.getPriority(0);
  } catch {
    return undefined;
  }
}
