/**
 * `tcplb-console ctl CMD [U/S]`: send one command to a running tcplb over its
 * control socket and print the answer. Exit codes follow the CLI: 0 success,
 * 1 failed command (or unreachable instance), 2 usage error.
 */
import net from 'node:net';
import { COMMANDS, encodeLine, isBackendCommand, LineSplitter, MAX_LINE_BYTES, type Reply, type Request } from './protocol.js';

/** Where `runCtl` prints: process.stdout / process.stderr, or a capture in tests. */
export interface TextOut {
  write(text: string): unknown;
}

/** How long `ctl` waits for an answer (a `check` may take a whole probe timeout). */
export const CTL_TIMEOUT_MS = 10_000;

const USAGE = `usage: tcplb-console ctl status | drain U/S | disable U/S | enable U/S | check U/S | kill U/S | reload
  U/S names a backend as upstream/host:port`;

/**
 * Run one `ctl` command against the socket at `socketPath`; resolves with the
 * exit code. `status` prints the snapshot as pretty JSON on `out` (for `jq`);
 * backend commands print the message; `reload` prints the message and one line
 * per change. `check` exits 1 when the probe ran but failed, so scripts can
 * write `ctl check U/S && ctl enable U/S`; drain/disable/enable exit 1 when
 * the change was applied but could not be saved to the state file (it would
 * be lost at the next restart). Errors go to `err`.
 */
export async function runCtl(
  args: string[],
  socketPath: string,
  out: TextOut = process.stdout,
  err: TextOut = process.stderr,
  timeoutMs: number = CTL_TIMEOUT_MS,
): Promise<number> {
  const req = parseArgs(args);
  if (typeof req === 'string') {
    err.write(`tcplb ctl: ${req}\n${USAGE}\n`);
    return 2;
  }
  let reply: Reply;
  try {
    reply = await request(socketPath, req, timeoutMs);
  } catch (e) {
    err.write(`${(e as Error).message}\n`);
    return 1;
  }
  if (!reply.ok) {
    err.write(`${reply.error}\n`);
    return 1;
  }
  switch (req.cmd) {
    case 'status':
      out.write(`${JSON.stringify(reply.data ?? null, null, 2)}\n`);
      return 0;
    case 'reload': {
      out.write(`${reply.message}\n`);
      const changes = (reply.data as { changes?: unknown } | undefined)?.changes;
      if (Array.isArray(changes)) for (const c of changes) out.write(`  ${String(c)}\n`);
      return 0;
    }
    case 'check':
      out.write(`${reply.message}\n`);
      return (reply.data as { ok?: unknown } | undefined)?.ok === false ? 1 : 0;
    case 'drain':
    case 'disable':
    case 'enable':
      out.write(`${reply.message}\n`);
      return (reply.data as { persisted?: unknown } | undefined)?.persisted === false ? 1 : 0;
    default:
      out.write(`${reply.message}\n`);
      return 0;
  }
}

/** Command-line words to a request, or the usage error. */
function parseArgs(args: readonly string[]): Request | string {
  const [cmd, backend, ...extra] = args;
  if (cmd === undefined) return `missing command (one of ${COMMANDS.join(', ')})`;
  if (cmd === 'status' || cmd === 'reload') {
    return backend === undefined ? { cmd } : `"${cmd}" takes no arguments (got "${backend}")`;
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
export function request(socketPath: string, req: Request, timeoutMs: number = CTL_TIMEOUT_MS): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const lines = new LineSplitter(MAX_LINE_BYTES * 64);
    const sock = net.connect(socketPath);
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
    const timer = setTimeout(
      () => finish(new Error(`no answer from tcplb at ${socketPath} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    sock.on('connect', () => {
      connected = true;
      sock.write(encodeLine({ ...req, id: 1 }));
    });
    sock.on('data', (chunk: Buffer) => {
      const got = lines.push(chunk);
      if (got === 'overflow') return finish(new Error(`tcplb at ${socketPath} sent an oversized reply`));
      const line = got.find((l) => l.trim() !== '');
      if (line !== undefined) finish(parseReply(line, socketPath));
    });
    sock.on('end', () => {
      const rest = lines.flush();
      finish(rest.trim() !== '' ? parseReply(rest, socketPath) : new Error(`tcplb at ${socketPath} closed the connection without an answer`));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (connected) return finish(new Error(`connection to tcplb at ${socketPath} failed: ${e.code ?? e.message}`));
      finish(new Error(`cannot reach tcplb at ${socketPath}: ${e.code ?? e.message} (is it running? is control.socket set in the config?)`));
    });
  });
}

function parseReply(line: string, socketPath: string): Reply | Error {
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
