/**
 * Coded errors, one convention everywhere: a failure that a caller branches
 * on is an `LbError` subclass with a stable `code` (`LB_ERR_<AREA>_<WHAT>`),
 * and callers test `isLbError(err, CODE)`, never message text or class.
 * A failure that every caller only reports (the control socket is taken, a
 * state file cannot be saved) is a plain `Error` whose message names what and
 * where; one that reaches the top unexpectedly is a bug and is reported as
 * such. Problems that are data rather than failures (config issues, probe
 * results, reload results, operator action results) are returned as values,
 * never thrown. docs/architecture.md has the catalogue.
 */
import type { ProbeStatus } from './types.js';

/* cli */
export const ERR_USAGE = 'LB_ERR_USAGE';
/* start-up */
export const ERR_STARTUP = 'LB_ERR_STARTUP';
/* config (only reachable by bypassing the types: validated configs cannot hit it) */
export const ERR_CONFIG_INVALID = 'LB_ERR_CONFIG_INVALID';
/* import-nginx */
export const ERR_IMPORT = 'LB_ERR_IMPORT';
/* health probes (internal: turned into a ProbeResult by runProbe) */
export const ERR_PROBE = 'LB_ERR_PROBE';

export type LbErrorCode = typeof ERR_USAGE | typeof ERR_STARTUP | typeof ERR_CONFIG_INVALID | typeof ERR_IMPORT | typeof ERR_PROBE;

export class LbError extends Error {
  readonly code: LbErrorCode;
  constructor(code: LbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LbError';
  }
}

/** True when `err` is an LbError (with `code`, when given). */
export function isLbError<C extends LbErrorCode>(err: unknown, code?: C): err is LbError & { code: C } {
  return err instanceof LbError && (code === undefined || err.code === code);
}

/** Bad command-line words: the CLI prints the message and the usage, exit 2. */
export class UsageError extends LbError {
  constructor(message: string) {
    super(ERR_USAGE, message);
    this.name = 'UsageError';
  }
}

/** tcplb could not start: one line per problem (a listener in use, an unresolvable backend). */
export class StartupError extends LbError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(ERR_STARTUP, problems.join('\n'));
    this.problems = problems;
    this.name = 'StartupError';
  }
}

/** A broken nginx config (or include) for import-nginx: `message` reads `file:line: reason`. */
export class ImportError extends LbError {
  /** @param file path as shown to the user; @param line 1-based line (0: the file as a whole); @param reason what is wrong. */
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(ERR_IMPORT, line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = 'ImportError';
  }
}

/** A decided failure inside a probe script; runProbe turns it into a ProbeResult. */
export class ProbeFailure extends LbError {
  constructor(readonly status: ProbeStatus, readonly detail: string) {
    super(ERR_PROBE, detail);
    this.name = 'ProbeFailure';
  }
}
