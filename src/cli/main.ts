#!/usr/bin/env node
/**
 * tcplb-console's entry point: a thin switch so that the one command run
 * every second by keepalived and ExaBGP, `tcplb-console health --socket
 * PATH`, loads only the control client (the process lives for tens of ms,
 * most of them Node's own start-up); everything else loads the full CLI
 * (run.ts).
 */
const argv = process.argv.slice(2);
const fast = argv[0] === 'health' ? socketOnly(argv.slice(1)) : undefined;
if (fast !== undefined) {
  const { healthCheck } = await import('./health.js');
  const code = await healthCheck(fast);
  process.exitCode = code;
} else {
  await import('./run.js');
}

/** `--socket PATH` (or `--socket=PATH`) and nothing else: the fast path; anything more goes through the full parser. */
function socketOnly(rest: readonly string[]): string | undefined {
  if (rest.length === 2 && rest[0] === '--socket' && rest[1] !== '') return rest[1];
  if (rest.length === 1 && rest[0]!.startsWith('--socket=') && rest[0]!.length > 9) return rest[0]!.slice(9);
  return undefined;
}
