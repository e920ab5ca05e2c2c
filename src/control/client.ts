/**
 * `tcplb-console ctl CMD [U/S]`: send one command to a running tcplb over its
 * control socket and print the answer. Exit codes follow the CLI: 0 success,
 * 1 failed command (or unreachable instance), 2 usage error.
 * `ctl watch [--json]` follows the event stream until interrupted.
 */
import { parseTarget, type Target } from './target.js';
import type { EventView } from '../runtime/snapshot.js';
import { certsTrouble, formatCerts, type CertsReport } from '../runtime/cert-status.js';
import { COMMANDS, encodeLine, incompatible, isBackendCommand, LineSplitter, MAX_LINE_BYTES, parseReply, PROTOCOL_VERSION, type Reply, type Request } from './protocol.js';
import { openWatchStream } from './watch-stream.js';

/** Where `runCtl` prints: process.stdout / process.stderr, or a capture in tests. */
export interface TextOut {
  write(text: string): unknown;
}

/** How long `ctl` waits for an answer (a `check` may take a whole probe timeout). */
export const CTL_TIMEOUT_MS = 10_000;
/** `ctl acme renew` waits for the whole order (the CA validates, then signs). */
export const ACME_RENEW_TIMEOUT_MS = 180_000;

export const CTL_USAGE = `usage: tcplb-console ctl [--socket TARGET]... [--fleet FILE] CMD [U/S]
  CMD: status | drain U/S | disable U/S | enable U/S | check U/S | kill U/S | reload
       | health | standby on|off | explain CLIENT [LISTENER] | certs [--json] | acme renew [DOMAIN]
       | watch [--json] | bridge
  U/S names a backend as upstream/host:port; TARGET is a socket path or ssh://[user@]host[/path]`;

/** What one command against one instance gave: the exit code and what to print. */
export interface Outcome {
  readonly code: number;
  /** For stdout: the message (status: the JSON), then any detail lines. */
  readonly out: readonly string[];
  /** For stderr, when it failed. */
  readonly error?: string;
  /** status: the snapshot. */
  readonly data?: unknown;
}

/**
 * Run one `ctl` command against the instance at `to` (a Target, or a socket
 * path or ssh:// address); resolves with the exit code. `status` prints the
 * snapshot as pretty JSON on `out` (for `jq`); backend commands print the
 * message; `reload` prints the message and one line per change. `check`
 * exits 1 when the probe ran but failed, so scripts can write `ctl check U/S
 * && ctl enable U/S`; drain/disable/enable exit 1 when the change was applied
 * but could not be saved to the state file (it would be lost at the next
 * restart). `bridge` relays stdin/stdout to the socket (the far end of an
 * ssh target). Errors go to `err`. Several instances: control/fanout.ts.
 */
export async function runCtl(
  args: string[],
  to: Target | string,
  out: TextOut = process.stdout,
  err: TextOut = process.stderr,
  timeoutMs: number = CTL_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<number> {
  let target: Target;
  try {
    target = asTarget(to);
  } catch (e) {
    err.write(`tcplb ctl: ${(e as Error).message}\n`);
    return 2;
  }
  if (args[0] === 'watch') {
    const extra = args.slice(1).filter((a) => a !== '--json');
    if (extra.length > 0) {
      err.write(`tcplb ctl: "watch" takes only --json (got "${extra[0]}")\n${CTL_USAGE}\n`);
      return 2;
    }
    return runWatch(target, args.includes('--json'), out, err, timeoutMs, signal);
  }
  if (args[0] === 'bridge') {
    if (args.length > 1) {
      err.write(`tcplb ctl: "bridge" takes no arguments (got "${args[1]}")\n${CTL_USAGE}\n`);
      return 2;
    }
    const { runBridge } = await import('./bridge.js');
    const { yieldCpu } = await import('./observer.js');
    yieldCpu();
    return runBridge(target, process.stdin, process.stdout, err);
  }
  // `certs --json`: the report as JSON (for jq) instead of text; the flag is ours, not the server's.
  const json = args[0] === 'certs' && args.includes('--json');
  const req = parseCtlArgs(json ? args.filter((a) => a !== '--json') : args);
  if (typeof req === 'string') {
    err.write(`tcplb ctl: ${req}\n${CTL_USAGE}\n`);
    return 2;
  }
  const o = await ctlOnce(req, target, req.cmd === 'acme' ? Math.max(timeoutMs, ACME_RENEW_TIMEOUT_MS) : timeoutMs);
  const lines = json && o.data !== undefined ? [JSON.stringify(o.data, null, 2)] : o.out;
  for (const line of lines) out.write(`${line}\n`);
  if (o.error !== undefined) err.write(`${o.error}\n`);
  return o.code;
}

/** One request to one instance, as an Outcome (never throws). */
export async function ctlOnce(req: Exclude<Request, { cmd: 'watch' }>, target: Target, timeoutMs: number = CTL_TIMEOUT_MS): Promise<Outcome> {
  let reply: Reply;
  try {
    reply = await request(target, req, timeoutMs);
  } catch (e) {
    return { code: 1, out: [], error: (e as Error).message };
  }
  if (!reply.ok) return { code: 1, out: [], error: reply.error };
  const mismatch = incompatible(reply, target.label, false);
  if (mismatch !== undefined) return { code: 1, out: [], error: mismatch };
  switch (req.cmd) {
    case 'status':
      return { code: 0, out: [JSON.stringify(reply.data ?? null, null, 2)], data: reply.data };
    case 'reload': {
      const changes = (reply.data as { changes?: unknown } | undefined)?.changes;
      return { code: 0, out: [reply.message, ...(Array.isArray(changes) ? changes.map((c) => `  ${String(c)}`) : [])] };
    }
    case 'check':
      return { code: (reply.data as { ok?: unknown } | undefined)?.ok === false ? 1 : 0, out: [reply.message] };
    case 'certs': {
      // Exit 1 when something needs a person: an expired certificate, or a renewal refused (the old one still serves).
      const r = reply.data as CertsReport | undefined;
      if (r === undefined || !Array.isArray(r.listeners)) return { code: 1, out: [], error: `tcplb at ${target.label} sent no certificate report` };
      return { code: certsTrouble(r) ? 1 : 0, out: formatCerts(r), data: r };
    }
    case 'health': {
      // The reply is ok whether ready or not: the exit code says which (keepalived and ExaBGP read it).
      const ready = (reply.data as { ready?: unknown } | undefined)?.ready === true;
      return { code: ready ? 0 : 1, out: [reply.message] };
    }
    case 'drain':
    case 'disable':
    case 'enable':
    case 'standby': {
      // Applied but not saved (the message says so): lost at the next restart, so a failure for scripts.
      return { code: (reply.data as { persisted?: unknown } | undefined)?.persisted === false ? 1 : 0, out: [reply.message] };
    }
    default:
      return { code: 0, out: [reply.message] };
  }
}


/** One event as a line, as the console's event log shows it: `12:01:03 imap/10.0.0.2:143 drain by ctl`. */
export function formatEvent(e: EventView): string {
  const d = new Date(e.time);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${e.backend ?? '-'} ${e.text}\n`;
}

/**
 * `ctl watch`: subscribe to events (no snapshots) and print each as a line,
 * or as the raw stream line with `json`, until `signal` aborts (exit 0; on
 * the CLI, SIGINT or SIGTERM) or the server ends the stream (exit 1, saying
 * why). Refuses (exit 1) a server whose protocol version is not ours.
 */
async function runWatch(target: Target, json: boolean, out: TextOut, err: TextOut, timeoutMs: number, signal: AbortSignal | undefined): Promise<number> {
  let ownSignals: (() => void) | undefined;
  if (signal === undefined) {
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop).once('SIGTERM', stop);
    ownSignals = () => process.off('SIGINT', stop).off('SIGTERM', stop);
    signal = ac.signal;
  }
  try {
    return await new Promise<number>((resolve) => {
      let done = false;
      let stream: { close(): void } | undefined;
      const finish = (code: number, message?: string): void => {
        if (done) return;
        done = true;
        signal!.removeEventListener('abort', onAbort);
        stream?.close();
        if (message !== undefined) err.write(`${message}\n`);
        resolve(code);
      };
      const onAbort = (): void => finish(0);
      if (signal!.aborted) return finish(0);
      signal!.addEventListener('abort', onAbort);
      stream = openWatchStream(
        target,
        { request: { cmd: 'watch', id: 1, events: true, snapshots: false }, timeoutMs },
        {
          onAccepted: () => {},
          onLine(msg, raw) {
            if (msg.type === 'event') out.write(json ? `${raw}\n` : formatEvent(msg.data as EventView));
            else if (msg.type === 'end' && json) out.write(`${raw}\n`);
            // Other line types (snapshots, ones a newer server adds) are not ours to print.
          },
          onEnd: (reason) => finish(1, reason),
        },
      );
    });
  } finally {
    ownSignals?.();
  }
}

/** Command-line words to a request, or the usage error. */
export function parseCtlArgs(args: readonly string[]): Exclude<Request, { cmd: 'watch' }> | string {
  const [cmd, backend, ...extra] = args;
  if (cmd === undefined) return `missing command (one of ${COMMANDS.join(', ')})`;
  if (cmd === 'status' || cmd === 'reload' || cmd === 'health' || cmd === 'certs') {
    return backend === undefined ? { cmd } : `"${cmd}" takes no arguments (got "${backend}")`;
  }
  if (cmd === 'acme') {
    if (backend !== 'renew' || extra.length > 1) return '"acme" takes: acme renew [DOMAIN]';
    return { cmd, action: 'renew', ...(extra[0] === undefined ? {} : { domain: extra[0] }) };
  }
  if (cmd === 'standby') {
    if ((backend !== 'on' && backend !== 'off') || extra.length > 0) return '"standby" takes on or off';
    return { cmd, on: backend === 'on' };
  }
  if (cmd === 'explain') {
    if (backend === undefined || backend.trim() === '') return '"explain" needs a client address: explain CLIENT [LISTENER]';
    if (extra.length > 1) return `"explain" takes a client and a listener (got ${args.length - 1} arguments)`;
    return { cmd, client: backend, ...(extra[0] === undefined ? {} : { listener: extra[0] }) };
  }
  if (!isBackendCommand(cmd)) return `unknown command "${cmd}" (one of ${COMMANDS.join(', ')})`;
  if (backend === undefined || backend.trim() === '') return `"${cmd}" needs a backend as upstream/host:port`;
  if (extra.length > 0) return `"${cmd}" takes one backend (got ${args.length - 1} arguments)`;
  return { cmd, backend };
}

/**
 * Send one request and wait for its reply line. Rejects with an operator-facing
 * message: unreachable socket, timeout, or a connection closed without answer.
 */
export function request(to: Target | string, req: Request, timeoutMs: number = CTL_TIMEOUT_MS): Promise<Reply> {
  const target = asTarget(to);
  const where = target.label;
  return new Promise<Reply>((resolve, reject) => {
    const lines = new LineSplitter(MAX_LINE_BYTES * 64);
    const sock = target.connect();
    let connected = false;
    let done = false;
    const finish = (r: Reply | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from tcplb at ${where} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.on('connect', () => (connected = true));
    sock.write(encodeLine({ ...req, id: 1 }));
    sock.on('data', (chunk: Buffer) => {
      const got = lines.push(chunk);
      if (got === 'overflow') return finish(new Error(`tcplb at ${where} sent an oversized reply`));
      const line = got.find((l) => l.trim() !== '');
      if (line !== undefined) finish(parseReply(line, where));
    });
    sock.on('end', () => {
      const rest = lines.flush();
      finish(rest.trim() !== '' ? parseReply(rest, where) : new Error(`tcplb at ${where} closed the connection without an answer`));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(new Error(target.failure(e, connected))));
  });
}

/** A Target, or a socket path (or ssh:// address) to one; a malformed address throws a plain Error saying why. */
export function asTarget(to: Target | string): Target {
  if (typeof to !== 'string') return to;
  const t = parseTarget(to);
  if (typeof t === 'string') throw new Error(t);
  return t;
}

