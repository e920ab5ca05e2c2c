/**
 * One console steering several tcplb instances (`tcplb-console attach A B
 * C`, `attach --fleet fleet.json5`). Each instance is a remote source of its
 * own (control/remote.ts: a watch stream, retried when lost); this module
 * makes them one ConsoleSource:
 *
 * - the snapshot is merged (`mergeSnapshots`): one table per upstream, one
 *   row per backend, with the backend's state on every instance side by
 *   side (BackendView.instances); counts and rates summed; events and open
 *   connections of all instances, each tagged with its instance;
 * - an action goes to every instance in parallel and is answered per
 *   instance: a partial failure (one instance unreachable) is reported,
 *   never hidden, and never holds up the others.
 *
 * An instance that cannot be reached at attach time is not fatal: it shows
 * as unreachable and is retried until it answers.
 */
import type { ActionResult, AdminResult, ReloadResult } from '../runtime/actions-types.js';
import type { AttachLink, ConsoleSource, MemberLink } from '../runtime/console-source.js';
import type { BackendView, EventView, InstanceState, Snapshot, UpstreamView } from '../runtime/snapshot.js';
import type { BackendId, ProbeResult } from '../core/types.js';
import { attachRemote, type RemoteOptions, type RemoteSource } from './remote.js';
import type { Target } from './target.js';

/** One instance as the fleet knows it. */
interface Member {
  readonly target: Target;
  source?: RemoteSource;
  /** Why it was never reached (cleared once it is). */
  error?: string;
  retry?: NodeJS.Timeout;
}

export interface FleetSource extends ConsoleSource {
  readonly attachment: NonNullable<ConsoleSource['attachment']> & { members(): readonly MemberLink[] };
}

/**
 * Attach to every target. Resolves once each has answered or failed its
 * first attempt; rejects only when none could be reached (then there is
 * nothing to show), naming each one's reason.
 */
export async function attachFleet(targets: readonly Target[], opts: RemoteOptions = {}): Promise<FleetSource> {
  const retryMs = opts.retryMs ?? 1000;
  const members: Member[] = targets.map((target) => ({ target }));
  let closed = false;

  const connect = async (m: Member): Promise<void> => {
    try {
      const s = await attachRemote(m.target, opts);
      if (closed) return s.attachment.close();
      m.source = s;
      m.error = undefined;
    } catch (e) {
      m.error = (e as Error).message;
      if (!closed) m.retry = setTimeout(() => void connect(m), retryMs);
    }
  };
  await Promise.all(members.map(connect));
  if (members.every((m) => m.source === undefined)) {
    for (const m of members) clearTimeout(m.retry);
    throw new Error(`no instance of the fleet answers:\n${members.map((m) => `  ${m.target.name}: ${m.error}`).join('\n')}`);
  }

  const memberLinks = (): MemberLink[] =>
    members.map((m): MemberLink => {
      if (m.source === undefined) return { name: m.target.name, lost: m.error ?? 'connecting' };
      const link = m.source.attachment.link();
      return { name: m.target.name, link, ...(link.lost === undefined ? {} : { lost: link.lost }) };
    });

  /** Run `f` on every instance at once; one result per instance, in fleet order. */
  const fan = <R extends ActionResult>(f: (s: RemoteSource) => R | Promise<R>): Promise<{ name: string; r: R | ActionResult }[]> =>
    Promise.all(
      members.map(async (m) => {
        if (m.source === undefined) return { name: m.target.name, r: { ok: false, message: `unreachable: ${m.error ?? 'connecting'}` } };
        try {
          return { name: m.target.name, r: await f(m.source) };
        } catch (e) {
          return { name: m.target.name, r: { ok: false, message: (e as Error).message } };
        }
      }),
    );

  const admin = async (verb: 'drain' | 'disable' | 'enable', id: BackendId): Promise<AdminResult> => {
    const all = await fan((s) => s[verb](id, 'console'));
    const saves = all.map(({ name, r }) => ((r as AdminResult).persisted ?? Promise.resolve(undefined)).then((e) => (e === undefined ? undefined : `${name}: ${e}`)));
    const persisted = Promise.all(saves).then((errs) => {
      const bad = errs.filter((e): e is string => e !== undefined);
      return bad.length === 0 ? undefined : bad.join('; ');
    });
    return { ...combine(`${verb} ${id}`, all), persisted };
  };

  const source: FleetSource = {
    drain: (id) => admin('drain', id),
    disable: (id) => admin('disable', id),
    enable: (id) => admin('enable', id),
    async standby(on) {
      return combine(on ? 'standby on' : 'standby off', await fan((s) => s.standby(on, 'console')));
    },
    async kill(id) {
      return combine(`kill ${id}`, await fan((s) => s.kill(id, 'console')));
    },
    async check(id) {
      const all = await fan((s) => s.check(id, 'console'));
      const first = all.map(({ r }) => (r as { result?: ProbeResult }).result).find((x) => x !== undefined);
      return { ...combine(`check ${id}`, all), ...(first === undefined ? {} : { result: first }) };
    },
    async reload(): Promise<ReloadResult> {
      const all = await fan((s) => s.reload('console'));
      const changes = all.flatMap(({ name, r }) => ((r as ReloadResult).changes ?? []).map((c) => `${name}: ${c}`));
      return { ...combine('reload', all), changes };
    },
    snapshot(connLimit?: number): Snapshot {
      return mergeSnapshots(
        members.map((m) => {
          const link = m.source?.attachment.link();
          const lost = m.source === undefined ? (m.error ?? 'connecting') : link?.lost;
          return { name: m.target.name, ...(m.source === undefined ? {} : { snapshot: m.source.snapshot(connLimit) }), ...(lost === undefined ? {} : { lost }) };
        }),
        connLimit,
      );
    },
    attachment: {
      link(): AttachLink {
        // The first reachable instance stands for the fleet where one link is asked for.
        const up = memberLinks().find((l) => l.link !== undefined && l.lost === undefined) ?? memberLinks().find((l) => l.link !== undefined);
        return up!.link!;
      },
      members: memberLinks,
      close() {
        if (closed) return;
        closed = true;
        for (const m of members) {
          clearTimeout(m.retry);
          m.source?.attachment.close();
        }
      },
    },
  };
  return source;
}

/**
 * Per-instance results as one: ok only when every instance succeeded; the
 * message leads with the failures (a narrow status line keeps them):
 * `drain imap/a:143: lb3 FAILED: cannot reach … · ok on lb1, lb2`.
 */
export function combine(what: string, all: readonly { name: string; r: ActionResult }[]): ActionResult {
  const bad = all.filter(({ r }) => !r.ok);
  const good = all.filter(({ r }) => r.ok).map(({ name }) => name);
  if (bad.length === 0) {
    const one = all.length === 1 ? all[0]!.r.message : `${what}: ok on ${good.join(', ')}`;
    return { ok: true, message: one };
  }
  const failures = bad.map(({ name, r }) => `${name} FAILED: ${r.message}`).join(' · ');
  return { ok: false, message: `${what}: ${failures}${good.length > 0 ? ` · ok on ${good.join(', ')}` : ''}` };
}

/** One instance's part of a merged snapshot. */
export interface MemberView {
  readonly name: string;
  /** The last snapshot it streamed (undefined: never reached). */
  readonly snapshot?: Snapshot;
  /** Why it cannot be asked now; its last data is then not counted. */
  readonly lost?: string;
}

/** Verdicts that disagree between instances: a network problem worth seeing. */
const VERDICT: Partial<Record<InstanceState['state'], 'up' | 'down'>> = { UP: 'up', DOWN: 'down' };

/**
 * The fleet's picture: the first reachable instance's upstreams, in its order
 * (instances run one config; a backend only some instances have is added
 * after, and shows `ABSENT` on the others), each backend with every
 * instance's state, its counts summed over the reachable instances, its
 * probe and reason from the first instance that has it — or, when the
 * instances' probes disagree, a reason naming who sees what.
 */
export function mergeSnapshots(members: readonly MemberView[], connLimit?: number): Snapshot {
  const live = members.filter((m): m is MemberView & { snapshot: Snapshot } => m.snapshot !== undefined && m.lost === undefined);
  const any = live[0]?.snapshot ?? members.find((m) => m.snapshot !== undefined)?.snapshot;
  if (any === undefined) throw new Error('no instance has sent a snapshot');
  const byId = members.map((m) => new Map((m.snapshot?.upstreams ?? []).flatMap((u) => u.backends.map((b) => [b.id, b] as const))));

  // Upstream order and backend order: as the instances list them, first one first.
  const order = new Map<string, { u: UpstreamView; ids: BackendId[] }>();
  for (const m of [...live, ...members.filter((x) => !live.includes(x as never))]) {
    for (const u of m.snapshot?.upstreams ?? []) {
      const entry = order.get(u.name) ?? { u, ids: [] };
      for (const b of u.backends) if (!entry.ids.includes(b.id)) entry.ids.push(b.id);
      order.set(u.name, entry);
    }
  }
  const upstreams: UpstreamView[] = [...order.values()].map(({ u, ids }) => ({
    ...u,
    backends: ids.map((id) => mergeBackend(id, members, byId)),
  }));

  const sum = (f: (s: Snapshot) => number): number => live.reduce((n, m) => n + f(m.snapshot), 0);
  const tagged = (m: MemberView, e: EventView): EventView => ({ ...e, text: `[${m.name}] ${e.text}` });
  const events = members
    .flatMap((m) => (m.snapshot?.events ?? []).map((e) => tagged(m, e)))
    .sort((a, b) => a.time - b.time)
    .slice(-Math.max(any.events.length, 200));
  const conns = live.flatMap((m) => m.snapshot.connections.list.map((c) => ({ ...c, listener: `${m.name}/${c.listener}` }))).sort((a, b) => a.start - b.start);
  return {
    ...any,
    time: Math.max(...members.map((m) => m.snapshot?.time ?? 0)),
    totals: {
      active: sum((s) => s.totals.active),
      accepted: sum((s) => s.totals.accepted),
      connPerSec: sum((s) => s.totals.connPerSec),
      bytesPerSec: sum((s) => s.totals.bytesPerSec),
    },
    upstreams,
    events,
    connections: { total: sum((s) => s.connections.total), list: connLimit === undefined ? conns : conns.slice(0, connLimit) },
  };
}

function mergeBackend(id: BackendId, members: readonly MemberView[], byId: readonly Map<BackendId, BackendView>[]): BackendView {
  const views = members.map((m, i) => (m.lost === undefined ? byId[i]!.get(id) : undefined));
  const instances: InstanceState[] = members.map((m, i) => ({
    name: m.name,
    state: m.lost !== undefined || m.snapshot === undefined ? 'UNREACHABLE' : (views[i]?.state ?? 'ABSENT'),
  }));
  const base = views.find((v) => v !== undefined) ?? byId.map((m) => m.get(id)).find((v) => v !== undefined)!;
  const have = views.filter((v): v is BackendView => v !== undefined);
  const sum = (f: (b: BackendView) => number): number => have.reduce((n, b) => n + f(b), 0);
  const verdicts = new Set(instances.map((s) => VERDICT[s.state]).filter((v) => v !== undefined));
  let reason = base.reason;
  if (verdicts.size > 1) {
    const down = instances.filter((s) => s.state === 'DOWN').map((s) => s.name);
    const why = views.find((v) => v?.state === 'DOWN')?.reason;
    reason = `probes disagree: DOWN on ${down.join(', ')}${why === undefined || why === '' ? '' : ` (${why})`}`;
  }
  return {
    ...base,
    state: fleetState(instances),
    reason,
    active: sum((b) => b.active),
    total: sum((b) => b.total),
    connectFailures: sum((b) => b.connectFailures),
    bytesIn: sum((b) => b.bytesIn),
    bytesOut: sum((b) => b.bytesOut),
    instances,
  };
}

/**
 * The one state a fleet row sorts and filters by: an operator state set on
 * any reachable instance wins (so `e` is offered where a drain is left), then
 * DOWN anywhere, then UP when every reachable instance agrees.
 */
function fleetState(instances: readonly InstanceState[]): BackendView['state'] {
  const s = new Set(instances.map((i) => i.state));
  for (const st of ['DISABLED', 'DRAINING', 'DOWN', 'UNKNOWN'] as const) if (s.has(st)) return st;
  return s.has('UP') ? 'UP' : 'UNKNOWN';
}
