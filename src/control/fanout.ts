/**
 * `ctl` against several instances at once (`ctl --socket A --socket B drain
 * U/S`, `ctl --fleet fleet.json5 reload`): the command goes to every
 * instance in parallel, each with its own timeout, so an unreachable one
 * never holds up the others. The answer is a table, one row per instance;
 * the exit code is 1 when any instance failed (the table says which), so a
 * partial failure is never hidden behind the ones that worked.
 *
 * `status` prints one JSON object keyed by instance name (a failed one as
 * `{ "error": "…" }`). `watch` and `bridge` are one-instance commands.
 */
import { CTL_TIMEOUT_MS, CTL_USAGE, ctlOnce, parseCtlArgs, type Outcome, type TextOut } from './client.js';
import type { Target } from './target.js';

export async function runFanout(args: string[], targets: readonly Target[], out: TextOut = process.stdout, err: TextOut = process.stderr, timeoutMs: number = CTL_TIMEOUT_MS): Promise<number> {
  if (args[0] === 'watch' || args[0] === 'bridge') {
    err.write(`tcplb ctl: "${args[0]}" talks to one instance (got ${targets.length}); run one per instance\n`);
    return 2;
  }
  const req = parseCtlArgs(args);
  if (typeof req === 'string') {
    err.write(`tcplb ctl: ${req}\n${CTL_USAGE}\n`);
    return 2;
  }
  const results = await Promise.all(targets.map((t) => ctlOnce(req, t, timeoutMs)));
  const failed = results.filter((r) => r.code !== 0).length;
  if (req.cmd === 'status') {
    const all: Record<string, unknown> = {};
    targets.forEach((t, i) => (all[t.name] = results[i]!.code === 0 ? results[i]!.data : { error: results[i]!.error ?? 'failed' }));
    out.write(`${JSON.stringify(all, null, 2)}\n`);
  } else {
    out.write(fanoutTable(targets, results));
  }
  if (failed > 0) err.write(`${failed} of ${targets.length} instances failed\n`);
  return failed > 0 ? 1 : 0;
}

/** `INSTANCE  RESULT  MESSAGE`, one row per instance; detail lines (reload's changes) indented below. */
export function fanoutTable(targets: readonly Target[], results: readonly Outcome[]): string {
  const w = Math.max(8, ...targets.map((t) => t.name.length));
  const rows = [`${'INSTANCE'.padEnd(w)}  RESULT  MESSAGE`];
  targets.forEach((t, i) => {
    const r = results[i]!;
    const [first = '', ...rest] = r.out;
    const msg = r.code === 0 ? first : [first, r.error].filter((x) => x !== undefined && x !== '').join(': ');
    rows.push(`${t.name.padEnd(w)}  ${(r.code === 0 ? 'ok' : 'FAILED').padEnd(6)}  ${msg}`);
    for (const line of rest) rows.push(`${' '.repeat(w + 10)}${line.trimStart()}`);
  });
  return rows.join('\n') + '\n';
}
