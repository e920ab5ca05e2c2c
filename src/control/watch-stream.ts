/**
 * One watch connection, read one way for every reader: `ctl watch` (events
 * as lines) and the attached console's source (snapshots and events). It
 * sends the `watch` request, checks the reply (ok, and the protocol version:
 * a watch needs it), then hands each stream line to the reader, and ends
 * exactly once, with the reason in words: the reply did not come in time,
 * the server refused or is of another release, a line was unreadable or
 * oversized, the server sent `end`, closed, failed, or (with `silenceMs`)
 * said nothing for that long.
 */
import { incompatible, parseReply } from './protocol.js';
import { encodeLine, LineSplitter, MAX_LINE_BYTES, type Reply, type Request, type StreamLine } from './protocol.js';
import type { Target } from './target.js';

/** What the reader is told. */
export interface WatchStreamHandlers {
  /** The server accepted the watch (its reply: pid, started, config). */
  onAccepted(reply: Extract<Reply, { ok: true }>): void;
  /** One stream line after the reply, parsed, and as sent (`ctl watch --json` prints it as is). `end` lines come here too, before onEnd. */
  onLine(msg: Partial<StreamLine> & { type?: unknown }, raw: string): void;
  /** The stream is over; called once, never after close(). `accepted`: whether onAccepted was called. */
  onEnd(reason: string, accepted: boolean): void;
}

/** Options of {@link openWatchStream}. */
export interface WatchStreamOptions {
  /** What to stream. */
  readonly request: Extract<Request, { cmd: 'watch' }>;
  /** The reply must come within this. */
  readonly timeoutMs: number;
  /** Once accepted, end the stream after this long without a byte (snapshots keep it alive). */
  readonly silenceMs?: number;
}

/** Lines of a watch carry whole snapshots: they may be much longer than a request's. */
const MAX_STREAM_LINE = MAX_LINE_BYTES * 64;

/** Open a watch on `target`; `close()` ends it without calling onEnd. */
export function openWatchStream(target: Target, o: WatchStreamOptions, h: WatchStreamHandlers): { close(): void } {
  const lines = new LineSplitter(MAX_STREAM_LINE);
  const at = target.label;
  const sock = target.connect();
  let connected = false;
  let accepted = false;
  let over = false;
  let silence: NodeJS.Timeout | undefined;
  const stop = (): void => {
    over = true;
    clearTimeout(timer);
    clearTimeout(silence);
    sock.destroy();
  };
  const end = (reason: string): void => {
    if (over) return;
    stop();
    h.onEnd(reason, accepted);
  };
  const timer = setTimeout(() => end(`no answer from tcplb at ${at} within ${o.timeoutMs / 1000} s`), o.timeoutMs);
  const heard = (): void => {
    if (o.silenceMs === undefined) return;
    clearTimeout(silence);
    silence = setTimeout(() => end(`nothing from tcplb at ${at} for ${Math.round(o.silenceMs! / 1000)} s`), o.silenceMs);
  };
  const onReply = (line: string): void => {
    const r = parseReply(line, at);
    if (r instanceof Error) return end(r.message);
    if (!r.ok) {
      const old = /unknown cmd "watch"/.test(r.error);
      return end(old ? `tcplb at ${at} does not support watch (an older tcplb): ${r.error}` : `tcplb at ${at}: ${r.error}`);
    }
    const mismatch = incompatible(r, at, true);
    if (mismatch !== undefined) return end(mismatch);
    accepted = true;
    clearTimeout(timer);
    heard();
    h.onAccepted(r);
  };
  const onLine = (line: string): void => {
    if (line.trim() === '') return;
    if (!accepted) return onReply(line);
    let msg: Partial<StreamLine> & { type?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return end(`tcplb at ${at} sent an unreadable stream line: ${line.slice(0, 200)}`);
    }
    h.onLine(msg, line);
    if (msg.type === 'end') end(`tcplb at ${at} ended the watch: ${String((msg as { reason?: unknown }).reason)}`);
  };
  sock.on('connect', () => (connected = true));
  sock.write(encodeLine(o.request));
  sock.on('data', (chunk: Buffer) => {
    if (accepted) heard();
    const got = lines.push(chunk);
    if (got === 'overflow') return end(`tcplb at ${at} sent an oversized line`);
    for (const l of got) if (!over) onLine(l);
  });
  sock.on('end', () => {
    const rest = lines.flush();
    if (rest !== '' && !over) onLine(rest);
    end(accepted ? `tcplb at ${at} closed the watch (stopped or restarting?)` : `tcplb at ${at} closed the connection without an answer`);
  });
  sock.on('close', () => end(`tcplb at ${at} closed the watch`));
  sock.on('error', (e: NodeJS.ErrnoException) => end(target.failure(e, connected)));
  return {
    close() {
      if (!over) stop();
    },
  };
}
