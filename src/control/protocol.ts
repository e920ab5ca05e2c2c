/**
 * The control socket's wire format, shared by the server and `ctl`:
 * newline-delimited JSON, one request line in, one reply line out.
 *
 * Request: `{"cmd":"status"}`, `{"cmd":"reload"}`, or
 * `{"cmd":"drain"|"disable"|"enable"|"check"|"kill","backend":"upstream/host:port"}`,
 * each with an optional `"id"` (string or number) that the reply echoes.
 * Reply: `{"ok":true,"message":"...","data":...}` or `{"ok":false,"error":"..."}`.
 */

/** Commands that name a backend (`upstream/host:port`). */
export const BACKEND_COMMANDS = ['drain', 'disable', 'enable', 'check', 'kill'] as const;
export type BackendCommand = (typeof BACKEND_COMMANDS)[number];

/** Every command, in the order `ctl` lists them. */
export const COMMANDS = ['status', ...BACKEND_COMMANDS, 'reload'] as const;
export type Command = (typeof COMMANDS)[number];

/** A request id: echoed in the reply so a client can match pipelined answers. */
export type RequestId = string | number;

/** One parsed request. */
export type Request =
  | { readonly cmd: 'status' | 'reload'; readonly id?: RequestId }
  | { readonly cmd: BackendCommand; readonly backend: string; readonly id?: RequestId };

/**
 * One reply line. `data`: the Snapshot (status), the ProbeResult (check),
 * `{changes}` (reload); for drain/disable/enable with a state file,
 * `{persisted: true}` or `{persisted: false, error}` (applied, not saved).
 */
export type Reply =
  | { readonly id?: RequestId; readonly ok: true; readonly message: string; readonly data?: unknown }
  | { readonly id?: RequestId; readonly ok: false; readonly error: string };

/** Longest request line the server accepts, in bytes, newline excluded: 1 MiB. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Unix socket paths are limited by `sun_path` (108 bytes with the NUL on Linux). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Is `cmd` one of the commands that need a backend? */
export function isBackendCommand(cmd: string): cmd is BackendCommand {
  return (BACKEND_COMMANDS as readonly string[]).includes(cmd);
}

/**
 * Parse and check one request line. Never throws: a bad line yields the error
 * to reply with (and the id, when one could be read, so the reply echoes it).
 */
export function parseRequest(line: string): { ok: true; req: Request } | { ok: false; error: string; id?: RequestId } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    return { ok: false, error: `malformed JSON: ${(err as Error).message}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, error: 'a request must be a JSON object like {"cmd":"status"}' };
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'string' || (typeof o.id === 'number' && Number.isFinite(o.id)) ? o.id : undefined;
  const withId = id === undefined ? {} : { id };
  const fail = (error: string): { ok: false; error: string; id?: RequestId } => ({ ok: false, error, ...withId });
  if (o.id !== undefined && id === undefined) return fail('"id" must be a string or a number');
  if (typeof o.cmd !== 'string') return fail(`missing "cmd" (one of ${COMMANDS.join(', ')})`);
  const cmd = o.cmd;
  if (cmd === 'status' || cmd === 'reload') return { ok: true, req: { cmd, ...withId } };
  if (!isBackendCommand(cmd)) return fail(`unknown cmd "${cmd.slice(0, 40)}" (one of ${COMMANDS.join(', ')})`);
  if (typeof o.backend !== 'string' || o.backend.trim() === '') return fail(`"${cmd}" needs "backend": "upstream/host:port"`);
  return { ok: true, req: { cmd, backend: o.backend.trim(), ...withId } };
}

/** Serialise one message as a line (JSON plus `\n`). */
export function encodeLine(msg: Reply | Request): string {
  return `${JSON.stringify(msg)}\n`;
}

/**
 * Splits a byte stream into lines, bounded: a line (or an unfinished one)
 * longer than `max` bytes is an overflow, after which the buffer is useless.
 * Handles lines split across chunks and multi-byte characters split across
 * chunks (lines are decoded whole). A trailing `\r` is dropped.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #pending = 0;
  #overflow = false;

  constructor(readonly max: number = MAX_LINE_BYTES) {}

  /** Bytes of the unfinished line held so far. */
  get pendingBytes(): number {
    return this.#pending;
  }

  /** Feed a chunk; returns the completed lines, or `'overflow'` once a line is too long. */
  push(chunk: Buffer): string[] | 'overflow' {
    if (this.#overflow) return 'overflow';
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      if (this.#pending + nl - start > this.max) return this.#fail();
      this.#parts.push(chunk.subarray(start, nl));
      lines.push(this.#take());
      start = nl + 1;
    }
    if (start < chunk.length) {
      if (this.#pending + chunk.length - start > this.max) return this.#fail();
      this.#parts.push(chunk.subarray(start));
      this.#pending += chunk.length - start;
    }
    return lines;
  }

  /** The unfinished line at end of stream ('' if none), and reset. */
  flush(): string {
    return this.#overflow ? '' : this.#take();
  }

  #take(): string {
    const s = Buffer.concat(this.#parts).toString('utf8');
    this.#parts = [];
    this.#pending = 0;
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  }

  #fail(): 'overflow' {
    this.#overflow = true;
    this.#parts = [];
    this.#pending = 0;
    return 'overflow';
  }
}
