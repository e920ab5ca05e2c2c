/**
 * The control socket's wire format, shared by the server and `ctl`:
 * newline-delimited JSON, one request line in, one reply line out
 * (docs/control-protocol.md is the reference).
 *
 * Request: `{"cmd":"status"}`, `{"cmd":"reload"}`, `{"cmd":"certs"}`, or
 * `{"cmd":"drain"|"disable"|"enable"|"check"|"kill","backend":"upstream/host:port"}`,
 * each with an optional `"id"` (string or number) that the reply echoes.
 * Reply: `{"ok":true,"message":"...","data":...}` or `{"ok":false,"error":"..."}`.
 *
 * `{"cmd":"watch","interval":ms,"events":true,"snapshots":true}` turns the
 * connection into a stream: one reply line, then stream lines (`StreamLine`)
 * until either side closes.
 */
import type { ConfigView, EventView, Snapshot } from '../runtime/snapshot.js';

/**
 * The protocol version, in the `status` and `watch` replies. Bumped when a
 * change would mislead an older client (a field removed or its meaning
 * changed); new fields and commands keep it.
 */
export const PROTOCOL_VERSION = 1;

/** Commands that name a backend (`upstream/host:port`). */
export const BACKEND_COMMANDS = ['drain', 'disable', 'enable', 'check', 'kill'] as const;
export type BackendCommand = (typeof BACKEND_COMMANDS)[number];

/** Every command, in the order `ctl` lists them. */
export const COMMANDS = ['status', ...BACKEND_COMMANDS, 'reload', 'watch', 'health', 'standby', 'explain', 'certs', 'acme'] as const;
export type Command = (typeof COMMANDS)[number];

/** A request id: echoed in the reply so a client can match pipelined answers. */
export type RequestId = string | number;

/** One parsed request. */
export type Request =
  | { readonly cmd: 'status' | 'reload'; readonly id?: RequestId }
  | { readonly cmd: BackendCommand; readonly backend: string; readonly id?: RequestId }
  /** Readiness: `data` is `{ready, why}` (the reply is ok either way). */
  | { readonly cmd: 'health'; readonly id?: RequestId }
  /** Each TLS listener's certificates and last certificate reload: `data` is the CertsReport. */
  | { readonly cmd: 'certs'; readonly id?: RequestId }
  /** `acme renew [DOMAIN]`: order the ACME certificate now; the reply comes when the order ends (docs/tls.md#acme). */
  | { readonly cmd: 'acme'; readonly action: 'renew'; readonly domain?: string; readonly id?: RequestId }
  | { readonly cmd: 'standby'; readonly on: boolean; readonly id?: RequestId }
  /** Where `client` goes on `listener` (default: the first): `data` is the Explanation. */
  | { readonly cmd: 'explain'; readonly client: string; readonly listener?: string; readonly id?: RequestId }
  | WatchRequest;

/** Subscribe: snapshots every `interval` ms (clamped to WATCH_INTERVAL_MS), events as they happen. */
export interface WatchRequest {
  readonly cmd: 'watch';
  readonly id?: RequestId;
  /** Asked interval, ms (default WATCH_INTERVAL_MS.default); the reply says the one applied. */
  readonly interval?: number;
  /** Stream events (default true). */
  readonly events?: boolean;
  /** Stream snapshots (default true). */
  readonly snapshots?: boolean;
}

/**
 * Open connections listed in a watch snapshot: as many as the in-process
 * console lists, so an attached console shows the same (`status` lists 50).
 */
export const WATCH_CONNECTIONS = 200;

/** Snapshot intervals a watcher may ask for: below 100 ms a snapshot of a large config would cost the proxy. */
export const WATCH_INTERVAL_MS = { min: 100, max: 60_000, default: 1000 } as const;

/** The interval applied for an asked one: clamped into WATCH_INTERVAL_MS. */
export function clampInterval(asked: number | undefined): number {
  if (asked === undefined) return WATCH_INTERVAL_MS.default;
  return Math.min(WATCH_INTERVAL_MS.max, Math.max(WATCH_INTERVAL_MS.min, Math.round(asked)));
}

/** The `watch` reply's fields beyond ok/message/protocol. */
export interface WatchInfo {
  readonly pid: number;
  /** Epoch ms the tcplb process started. */
  readonly started: number;
  readonly version: string;
  readonly config: ConfigView;
  /** The snapshot interval applied, ms. */
  readonly interval: number;
  readonly events: boolean;
  readonly snapshots: boolean;
}

/**
 * One line of a watch stream after its reply. `end` is the last line when
 * the server drops the watcher (it may not arrive: a stuck reader never reads it).
 */
export type StreamLine =
  | { readonly type: 'snapshot'; readonly data: Snapshot }
  | { readonly type: 'event'; readonly data: EventView }
  | { readonly type: 'end'; readonly reason: string };

/**
 * One reply line. `data`: the Snapshot (status), the ProbeResult (check),
 * `{changes}` (reload); for drain/disable/enable with a state file,
 * `{persisted: true}` or `{persisted: false, error}` (applied, not saved).
 */
export type Reply =
  | ({ readonly id?: RequestId; readonly ok: true; readonly message: string; readonly data?: unknown; readonly protocol?: number } & Partial<WatchInfo>)
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
  if (cmd === 'status' || cmd === 'reload' || cmd === 'health' || cmd === 'certs') return { ok: true, req: { cmd, ...withId } };
  if (cmd === 'standby') {
    if (typeof o.on !== 'boolean') return fail('"standby" needs "on": true or false');
    return { ok: true, req: { cmd, on: o.on, ...withId } };
  }
  if (cmd === 'explain') {
    if (typeof o.client !== 'string' || o.client.trim() === '') return fail('"explain" needs "client": an IP address');
    if (o.listener !== undefined && typeof o.listener !== 'string') return fail('"explain": "listener" must be a listener name');
    return { ok: true, req: { cmd, client: o.client.trim().slice(0, 100), ...(o.listener === undefined ? {} : { listener: o.listener.slice(0, 100) }), ...withId } };
  }
  if (cmd === 'acme') {
    if (o.action !== 'renew') return fail('"acme" needs "action": "renew"');
    if (o.domain !== undefined && (typeof o.domain !== 'string' || o.domain === '' || o.domain.length > 253)) return fail('"acme": "domain" must be a domain name of the acme block');
    return { ok: true, req: { cmd, action: 'renew', ...(o.domain === undefined ? {} : { domain: o.domain }), ...withId } };
  }
  if (cmd === 'watch') return parseWatch(o, withId, fail);
  if (!isBackendCommand(cmd)) return fail(`unknown cmd "${cmd.slice(0, 40)}" (one of ${COMMANDS.join(', ')})`);
  if (typeof o.backend !== 'string' || o.backend.trim() === '') return fail(`"${cmd}" needs "backend": "upstream/host:port"`);
  return { ok: true, req: { cmd, backend: o.backend.trim(), ...withId } };
}

function parseWatch(
  o: Record<string, unknown>,
  withId: { id?: RequestId },
  fail: (error: string) => { ok: false; error: string; id?: RequestId },
): { ok: true; req: WatchRequest } | { ok: false; error: string; id?: RequestId } {
  const { interval, events, snapshots } = o;
  if (interval !== undefined && (typeof interval !== 'number' || !Number.isFinite(interval))) {
    return fail(`"watch": "interval" must be a number of ms (${WATCH_INTERVAL_MS.min}-${WATCH_INTERVAL_MS.max})`);
  }
  if (events !== undefined && typeof events !== 'boolean') return fail('"watch": "events" must be true or false');
  if (snapshots !== undefined && typeof snapshots !== 'boolean') return fail('"watch": "snapshots" must be true or false');
  if (events === false && snapshots === false) return fail('"watch" with "events" and "snapshots" both false would send nothing');
  return {
    ok: true,
    req: { cmd: 'watch', ...withId, ...(interval === undefined ? {} : { interval }), ...(events === undefined ? {} : { events }), ...(snapshots === undefined ? {} : { snapshots }) },
  };
}

/** Serialise one message as a line (JSON plus `\n`). */
export function encodeLine(msg: Reply | Request | StreamLine): string {
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

/**
 * Why the server's protocol cannot be trusted, or undefined when it can. A
 * reply without a version comes from a tcplb older than versioning: fine for
 * the one-shot commands (unchanged since), not for `watch` (it did not exist).
 */
export function incompatible(reply: Reply, socketPath: string, required: boolean): string | undefined {
  const v = reply.ok ? reply.protocol : undefined;
  if (v === PROTOCOL_VERSION || (v === undefined && !required)) return undefined;
  const theirs = v === undefined ? 'no protocol version (an older tcplb)' : `control protocol ${String(v)}`;
  return `tcplb at ${socketPath} speaks ${theirs}; this tcplb-console speaks protocol ${PROTOCOL_VERSION}: use the tcplb-console of the running tcplb's release`;
}

/** One reply line, checked for its shape (ok, message/error), or the error to report. */
export function parseReply(line: string, socketPath: string): Reply | Error {
  try {
    const v = JSON.parse(line) as Reply;
    if (typeof v === 'object' && v !== null && typeof v.ok === 'boolean') {
      if (v.ok) return { ...v, message: typeof v.message === 'string' ? v.message : '' };
      return { ...v, error: typeof v.error === 'string' ? v.error : 'failed (no error message)' };
    }
  } catch {
    /* fall through */
  }
  return new Error(`tcplb at ${socketPath} sent an unreadable reply: ${line.slice(0, 200)}`);
}
