/**
 * The console's data source when it is attached to a tcplb running elsewhere
 * (`tcplb-console attach`): a client of the control socket. One connection
 * `watch`es (the latest streamed snapshot, with the events streamed since
 * merged in); each operator action is a request on a connection of its own
 * (a watching connection takes no other command), answered as the
 * in-process action would be. The server names the caller in the event log
 * from the kernel's record of this process (`ctl (user alice, pid 4242)`).
 *
 * A lost link (tcplb stopped or restarted, the socket gone, nothing streamed
 * for a while) never throws: `attachment.link().lost` says why, the last
 * data stays on screen, and the link is retried until it comes back or the
 * console detaches.
 */
import type { ActionResult, AdminResult, ReloadResult } from '../runtime/actions-types.js';
import type { AttachLink, Attachment, ConsoleSource } from '../runtime/console-source.js';
import type { EventView, Snapshot } from '../runtime/snapshot.js';
import type { BackendId, ProbeResult } from '../core/types.js';
import { asTarget, CTL_TIMEOUT_MS, request } from './client.js';
import type { Target } from './target.js';
import type { Reply, Request } from './protocol.js';
import { openWatchStream } from './watch-stream.js';

export interface RemoteOptions {
  /** Snapshot period asked of the server, ms. @default 500 */
  readonly intervalMs?: number;
  /** Delay between attempts to get a lost link back, ms. @default 1000 */
  readonly retryMs?: number;
  /** A link with no line for this long is lost (a stopped or wedged tcplb). @default max(5000, 5 × intervalMs) */
  readonly silenceMs?: number;
  /** How long to wait for the watch reply and for each action's reply. @default CTL_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Events kept for the log panel. @default 200 */
  readonly eventCap?: number;
}

/** The remote source: a ConsoleSource whose `attachment` is always set. */
export interface RemoteSource extends ConsoleSource {
  standby(on: boolean, by?: unknown): Promise<AdminResult>;
  readonly attachment: Attachment;
}

/** What one watch connection delivered first, and how to end it. */
interface Watch {
  readonly link: Omit<AttachLink, 'lost'>;
  readonly first: Snapshot;
  close(): void;
}

interface WatchHandlers {
  onSnapshot(s: Snapshot): void;
  onEvent(e: EventView): void;
  /** Once, when the stream ends after the first snapshot. */
  onLost(reason: string): void;
}

/**
 * Connect to the control socket of `to` (a path, an ssh:// address or a Target) and watch it. Resolves once
 * the first snapshot arrived; rejects (an Error naming the socket) when the
 * instance cannot be reached, does not answer, or speaks another protocol
 * version.
 */
export async function attachRemote(to: Target | string, opts: RemoteOptions = {}): Promise<RemoteSource> {
  const target = asTarget(to);
  const intervalMs = opts.intervalMs ?? 500;
  const retryMs = opts.retryMs ?? 1000;
  const silenceMs = opts.silenceMs ?? Math.max(5000, 5 * intervalMs);
  const timeoutMs = opts.timeoutMs ?? CTL_TIMEOUT_MS;
  const cap = opts.eventCap ?? 200;

  let snap: Snapshot;
  let events: EventView[];
  let link: AttachLink;
  let current: Watch | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const handlers: WatchHandlers = {
    onSnapshot(s) {
      // A snapshot holds every event streamed before it (one connection, in order): it replaces the list.
      snap = s;
      events = [...s.events].slice(-cap);
    },
    onEvent(e) {
      events.push(e);
      if (events.length > cap * 2) events = events.slice(-cap);
    },
    onLost(reason) {
      current = undefined;
      if (closed) return;
      link = { ...link, lost: reason };
      schedule();
    },
  };
  const adopt = (w: Watch): void => {
    current = w;
    link = { ...w.link };
    handlers.onSnapshot(w.first);
  };
  const schedule = (): void => {
    if (closed) return;
    retry = setTimeout(() => {
      retry = undefined;
      openWatch(target, intervalMs, silenceMs, timeoutMs, handlers).then(
        (w) => {
          if (closed) w.close();
          else adopt(w);
        },
        (err: Error) => {
          if (closed) return;
          link = { ...link, lost: err.message };
          schedule();
        },
      );
    }, retryMs);
  };

  adopt(await openWatch(target, intervalMs, silenceMs, timeoutMs, handlers));

  /** One action as one request; every failure becomes a result the status line shows. */
  const ask = async (req: Request): Promise<{ reply: Reply } | { failed: ActionResult }> => {
    try {
      return { reply: await request(target, req, timeoutMs) };
    } catch (err) {
      return { failed: { ok: false, message: (err as Error).message } };
    }
  };
  const admin = async (cmd: 'drain' | 'disable' | 'enable', id: BackendId): Promise<AdminResult> => {
    const r = await ask({ cmd, backend: id });
    if ('failed' in r) return r.failed;
    if (!r.reply.ok) return { ok: false, message: r.reply.error };
    // The server answered after the state file save: its outcome is known already.
    const data = r.reply.data as { persisted?: unknown; error?: unknown } | undefined;
    const persisted = data?.persisted === false ? Promise.resolve(String(data.error ?? 'not saved')) : undefined;
    return { ok: true, message: r.reply.message, ...(persisted === undefined ? {} : { persisted }) };
  };

  const source: RemoteSource = {
    drain: (id) => admin('drain', id),
    disable: (id) => admin('disable', id),
    enable: (id) => admin('enable', id),
    async standby(on) {
      const r = await ask({ cmd: 'standby', on });
      if ('failed' in r) return r.failed;
      return r.reply.ok ? { ok: true, message: r.reply.message } : { ok: false, message: r.reply.error };
    },
    async kill(id) {
      const r = await ask({ cmd: 'kill', backend: id });
      if ('failed' in r) return r.failed;
      return r.reply.ok ? { ok: true, message: r.reply.message } : { ok: false, message: r.reply.error };
    },
    async check(id) {
      const r = await ask({ cmd: 'check', backend: id });
      if ('failed' in r) return r.failed;
      if (!r.reply.ok) return { ok: false, message: r.reply.error };
      const result = r.reply.data as ProbeResult | undefined;
      return { ok: true, message: r.reply.message, ...(result === undefined ? {} : { result }) };
    },
    async reload(): Promise<ReloadResult> {
      const r = await ask({ cmd: 'reload' });
      if ('failed' in r) return { ...r.failed, changes: [] };
      if (!r.reply.ok) return { ok: false, message: r.reply.error, changes: [] };
      const changes = (r.reply.data as { changes?: unknown } | undefined)?.changes;
      return { ok: true, message: r.reply.message, changes: Array.isArray(changes) ? changes.map(String) : [] };
    },
    snapshot(connLimit?: number): Snapshot {
      const list = connLimit === undefined ? snap.connections.list : snap.connections.list.slice(0, connLimit);
      return { ...snap, events: events.slice(-cap), connections: { total: snap.connections.total, list } };
    },
    attachment: {
      link: () => link,
      close() {
        if (closed) return;
        closed = true;
        clearTimeout(retry);
        current?.close();
        current = undefined;
      },
    },
  };
  return source;
}

/**
 * One watch connection. Before the first snapshot, any failure rejects;
 * after it, the end of the stream (closed, error, `end` line, silence) calls
 * `onLost` once.
 */
function openWatch(target: Target, intervalMs: number, silenceMs: number, timeoutMs: number, h: WatchHandlers): Promise<Watch> {
  return new Promise<Watch>((resolve, reject) => {
    let info: Omit<AttachLink, 'lost'> | undefined;
    let started = false; // the first snapshot arrived: the promise is resolved
    const stream = openWatchStream(
      target,
      { request: { cmd: 'watch', id: 1, interval: intervalMs, events: true, snapshots: true }, timeoutMs, silenceMs },
      {
        onAccepted(r) {
          info = {
            pid: typeof r.pid === 'number' ? r.pid : 0,
            started: typeof r.started === 'number' ? r.started : 0,
            config: typeof r.config?.file === 'string' ? r.config.file : '?',
            socket: target.label,
          };
        },
        onLine(msg) {
          if (msg.type === 'snapshot') {
            const data = (msg as { data: Snapshot }).data;
            if (started) return h.onSnapshot(data);
            started = true;
            return resolve({ link: info!, first: data, close: () => stream.close() });
          }
          if (msg.type === 'event' && started) h.onEvent((msg as { data: EventView }).data);
          // `end` is reported by onEnd; lines of types a newer server adds are not ours to read.
        },
        onEnd(reason) {
          if (started) h.onLost(reason);
          else reject(new Error(reason));
        },
      },
    );
  });
}
