/**
 * Pure line builders: snapshot pieces in, styled segments out, each fitted to
 * an exact width. Components only map these to Ink `<Text>`; tests check them
 * without rendering.
 */
import type { SessionInfo } from '../core/dataplane.js';
import type { AttachLink, MemberLink } from '../runtime/console-source.js';
import type { AcmeView, BackendView, ConfigView, EventView, InstanceState, Snapshot, UpstreamView } from '../runtime/snapshot.js';
import {
  certCell,
  fitSegments,
  formatBytesShort,
  formatClock,
  formatDuration,
  formatLatency,
  formatPerSec,
  formatRate,
  pad,
  probeColor,
  shortListen,
  stateColor,
  textWidth,
  type ColorName,
  type Segment,
} from './format.js';
import { fleetCellWidth, MARKER_WIDTH, type Column } from './layout.js';

/**
 * The instance's readiness as a header mark: `STANDBY` (yellow), `LEAVING`
 * or `NOT READY` (red); nothing while ready (the usual case stays quiet).
 */
export function readinessMark(s: Snapshot): Segment[] {
  const i = s.instance;
  if (i === undefined || i.ready) return [];
  const text = i.standby !== undefined ? 'STANDBY' : i.leaving ? 'LEAVING' : 'NOT READY';
  return [{ text: ' · ', dim: true }, { text, bold: true, color: i.standby !== undefined ? 'yellow' : 'red' }];
}

/** Header line 1: `tcplb 0.1.0 · engine js · pid 4242` (and a readiness mark), the clock at the right. */
export function titleLine(s: Snapshot, width: number, version?: string): Segment[] {
  const left = `tcplb ${version ?? s.version} · engine ${s.engine} · pid ${s.pid}`;
  return withClock([{ text: left, bold: true }, ...readinessMark(s)], s, width);
}

/** `left` then the clock at the right edge; the clock goes first when space is short. */
function withClock(left: Segment[], s: Snapshot, width: number): Segment[] {
  const clock = formatClock(s.time);
  const gap = width - textWidth(left.map((x) => x.text).join('')) - clock.length;
  if (gap < 1) return fitSegments(left, width);
  return fitSegments([...left, { text: ' '.repeat(gap) }, { text: clock, dim: true }], width);
}

/** `12:00` (today) or `2024-05-01 12:00` for a start time. */
function startedText(epochMs: number, now: number): string {
  const d = new Date(epochMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return new Date(now).toDateString() === d.toDateString() ? hm : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
}

/**
 * Header line 1 of an attached console: `attached to pid 4242 · started
 * 12:00 · config /etc/tcplb/config.json5`, the clock at the right; while the
 * link is down, in red, that it is lost and retried (the tables below keep
 * the last data seen).
 */
export function attachLine(link: AttachLink, s: Snapshot, width: number): Segment[] {
  if (link.lost !== undefined) {
    return fitSegments([{ text: `connection to tcplb lost: ${link.lost} — retrying ${link.socket}`, color: 'red', bold: true }], width);
  }
  const left = `attached to pid ${link.pid} · started ${startedText(link.started, s.time)} · config ${link.config}`;
  return withClock([{ text: left, bold: true }, ...readinessMark(s)], s, width);
}

/**
 * Header line 1 of a console steering a fleet: `fleet of 3: lb1 pid 4242 ·
 * lb2 pid 977 · lb3 unreachable: …`, each instance green when its link is
 * up and red when it cannot be asked (the reason follows, cut to fit).
 */
export function fleetLine(members: readonly MemberLink[], width: number): Segment[] {
  const lost = members.filter((m) => m.lost !== undefined).length;
  const segs: Segment[] = [{ text: `fleet of ${members.length}${lost > 0 ? ` (${lost} unreachable)` : ''}:`, bold: true, ...(lost > 0 ? { color: 'red' as const } : {}) }];
  members.forEach((m, i) => {
    segs.push({ text: i === 0 ? ' ' : ' · ', dim: true });
    if (m.lost === undefined) segs.push({ text: `${m.name} pid ${m.link?.pid ?? '?'}`, color: 'green' });
    else segs.push({ text: `${m.name} unreachable: ${m.lost}`, color: 'red', bold: true });
  });
  return fitSegments(segs, width);
}

/**
 * Header line 2: the config file and its watch state, or, in red, why the
 * last reload was refused. `firstLoadedAt` is the load time seen when the
 * console started: a later one means a reload happened.
 */
export function configLine(c: ConfigView, width: number, firstLoadedAt: number, acme?: AcmeView): Segment[] {
  if (c.watch === 'refused') {
    const err = c.error ?? `${c.file}: invalid`;
    const full = `reload refused: ${err} — still serving the previous config`;
    // On narrow terminals say "kept" up front, so the cut falls on the end of the error, not on the reassurance.
    const text = textWidth(full) <= width ? full : `reload refused, previous config kept: ${err}`;
    return fitSegments([{ text, color: 'red', bold: true }], width);
  }
  const verb = c.loadedAt > firstLoadedAt ? 'reloaded' : 'loaded';
  const what = c.watch === 'watching' ? `watching ${c.file}` : `${c.file} (not watched)`;
  return fitSegments([{ text: what }, { text: ` · ${verb} ${formatClock(c.loadedAt)}`, dim: true }, ...acmeMark(acme)], width);
}

/**
 * The ACME client's mark on header line 2: `acme ordering` while an order
 * runs, red `acme FAILING ×3: <error>` while orders fail (the certificate in
 * service keeps serving), else dim `acme next 2027-01-30`.
 */
export function acmeMark(a: AcmeView | undefined): Segment[] {
  if (a === undefined) return [];
  if (a.ordering) return [{ text: ' · acme ordering', color: 'cyan' }];
  if (a.failures > 0) return [{ text: ` · acme FAILING ×${a.failures}${a.hasCertificate ? '' : ' (no certificate yet)'}: ${a.lastError ?? ''}`, color: 'red', bold: true }];
  if (a.nextAttempt === null) return [];
  return [{ text: ` · acme next ${new Date(a.nextAttempt).toISOString().slice(0, 10)}`, dim: true }];
}

/**
 * A TLS listener's mark in header line 3: its nearest certificate expiry,
 * `tls 27d`; yellow under 14 days (EXPIRY_WARNING_DAYS: renewal should have
 * happened), red `tls EXPIRED` once past (clients refuse it). `ctl certs`
 * has the detail.
 */
export function certMark(certExpiry: number | undefined, now: number): Segment[] {
  if (certExpiry === undefined) return [];
  if (certExpiry <= now) return [{ text: ' tls EXPIRED', color: 'red', bold: true }];
  const days = Math.floor((certExpiry - now) / 86_400_000);
  return [{ text: ` tls ${days}d`, ...(days < 14 ? { color: 'yellow' as const, bold: true } : { dim: true }) }];
}

/** Header line 3: totals first (they matter most), then each listener and its port (and a TLS listener's certificate days). */
export function totalsLine(s: Snapshot, width: number): Segment[] {
  const t = s.totals;
  const segs: Segment[] = [
    { text: `${t.active} active`, bold: true },
    { text: ` · ${formatPerSec(t.connPerSec)} conn/s · ${formatRate(t.bytesPerSec)}`, dim: false },
    { text: ' · listen', dim: true },
  ];
  for (const l of s.listeners) segs.push({ text: ` ${l.name} ${shortListen(l.listen)}`, color: 'cyan' }, ...certMark(l.certExpiry, s.time));
  return fitSegments(segs, width);
}

/** The column-title line of the tables; `scroll` (`4-12/50`) joins the BACKEND title when rows are hidden. */
export function columnTitleLine(cols: readonly Column[], width: number, scroll: string): Segment[] {
  const cells = cols.map((c) => pad(c.key === 'backend' && scroll !== '' ? `${c.title} ${scroll}` : c.title, c.width, c.align));
  return fitSegments([{ text: ' '.repeat(MARKER_WIDTH) + cells.join(' '), dim: true, bold: true }], width);
}

/** An upstream's title row: `imaps  ip_hash · imap every 5s rise 2 fall 5 · 2/3 up`. */
export function upstreamLine(u: UpstreamView, width: number): Segment[] {
  const up = u.backends.filter((b) => b.state === 'UP').length;
  const rest = [u.balance, u.check === '' ? 'no active check' : u.check, `${up}/${u.backends.length} up`].join(' · ');
  return fitSegments([{ text: u.name, bold: true, color: 'cyan' }, { text: `  ${rest}`, dim: true }], width);
}

function cell(b: BackendView, col: Column, checking: boolean): { text: string; color?: ColorName } {
  switch (col.key) {
    case 'backend':
      return { text: b.address + (b.backup ? ' (backup)' : '') };
    case 'state':
      return { text: b.state, color: stateColor(b.state) };
    case 'probe':
      if (checking) return { text: 'checking…', color: 'cyan' };
      if (b.lastProbe === undefined) return { text: '-' };
      {
        // The status says more than the latency: when both don't fit, keep the status whole.
        const full = `${b.lastProbe.status} ${formatLatency(b.lastProbe.latencyMs)}`;
        return { text: full.length <= col.width ? full : b.lastProbe.status, color: probeColor(b.lastProbe) };
      }
    case 'check':
      return { text: b.progress === '' ? '-' : b.progress, ...(b.progress.startsWith('fail') ? { color: 'yellow' as const } : {}) };
    case 'active':
      return { text: String(b.active) };
    case 'total':
      return { text: String(b.total) };
    case 'bytes':
      return { text: `${formatBytesShort(b.bytesIn)}/${formatBytesShort(b.bytesOut)}` };
    case 'weight':
      return { text: String(b.weight) };
    case 'cert':
      return certCell(b.cert);
    case 'reason':
      return { text: b.reason };
  }
}

/** An instance's state in a fleet cell of `w` cells: the full word when it fits, else a short code; `?` unreachable, `-` not in its config. */
export function fleetCode(state: InstanceState['state'], w: number): { text: string; color: ColorName } {
  if (state === 'UNREACHABLE') return { text: '?', color: 'magenta' };
  if (state === 'ABSENT') return { text: '-', color: 'gray' };
  const short: Record<string, string> = { DRAINING: 'DRN', DISABLED: 'DIS', UNKNOWN: 'UNK' };
  return { text: state.length <= w ? state : (short[state] ?? state.slice(0, w)), color: stateColor(state) };
}

/** Probe verdicts that differ between reachable instances (UP on one, DOWN on another): worth the operator's eye. */
export function fleetDisagrees(b: BackendView): boolean {
  const v = new Set((b.instances ?? []).map((i) => i.state).filter((s) => s === 'UP' || s === 'DOWN'));
  return v.size > 1;
}

/** The compact fleet cell: the common state when every instance agrees, else `2/3 up`. */
export function fleetSummary(b: BackendView): { text: string; color: ColorName } {
  const all = b.instances ?? [];
  const states = new Set(all.map((i) => i.state));
  const [only] = states;
  if (states.size === 1 && only !== undefined && only !== 'UNREACHABLE' && only !== 'ABSENT') return { text: only, color: stateColor(only) };
  const up = all.filter((i) => i.state === 'UP').length;
  return { text: `${up}/${all.length} up`, color: fleetDisagrees(b) || states.has('UNREACHABLE') ? 'yellow' : up === all.length ? 'green' : 'yellow' };
}

/** The fleet state cell's segments: `!` when probes disagree, then each instance's state (or the summary when the column is narrow). */
function fleetSegments(b: BackendView, col: Column, lead: string, inv: { inverse?: boolean }): Segment[] {
  const all = b.instances ?? [];
  const w = fleetCellWidth(all.map((i) => i.name));
  const odd = fleetDisagrees(b);
  if (col.width < 1 + all.length * (w + 1) - 1) {
    const c = fleetSummary(b);
    return [{ text: lead + pad((odd ? '!' : '') + c.text, col.width), color: c.color, ...(odd ? { bold: true } : {}), ...inv }];
  }
  const segs: Segment[] = [{ text: lead + (odd ? '!' : ' '), color: 'yellow', bold: true, ...inv }];
  all.forEach((inst, i) => {
    const c = fleetCode(inst.state, w);
    segs.push({ text: (i > 0 ? ' ' : '') + pad(c.text, w), color: c.color, ...inv });
  });
  return segs;
}

/** One backend row; the selected one is drawn inverse (and marked `›` for terminals without colour). */
export function backendLine(b: BackendView, cols: readonly Column[], width: number, selected: boolean, checking: boolean): Segment[] {
  const inv = selected ? { inverse: true } : {};
  const segs: Segment[] = [{ text: selected ? '› ' : '  ', bold: true, ...inv }];
  cols.forEach((col, i) => {
    if (col.key === 'state' && b.instances !== undefined) {
      segs.push(...fleetSegments(b, col, i > 0 ? ' ' : '', inv));
      return;
    }
    const c = cell(b, col, checking);
    const text = (i > 0 ? ' ' : '') + pad(c.text, col.width, col.align, col.key === 'backend');
    segs.push({ text, ...(c.color ? { color: c.color } : {}), ...(col.key === 'reason' ? { dim: true } : {}), ...inv });
  });
  return fitSegments(segs, width, selected);
}

/** Bottom panel title: the focused panel inverse, the other dim, plus panel facts (`back`: events scrolled back). */
export function panelTitleLine(panel: 'events' | 'connections', s: Snapshot, sort: 'age' | 'bytes', width: number, back = 0): Segment[] {
  const ev = panel === 'events';
  const segs: Segment[] = [
    { text: ' Events ', ...(ev ? { inverse: true, bold: true } : { dim: true }) },
    { text: ' ' },
    { text: ` Connections ${s.connections.total} `, ...(!ev ? { inverse: true, bold: true } : { dim: true }) },
    { text: !ev ? `  sort by ${sort} (s) · tab: events` : back > 0 ? `  ${back} newer below (PgDn) · tab: connections` : '  newest last · tab: connections', dim: true },
  ];
  return fitSegments(segs, width);
}

function eventColor(e: EventView): ColorName | undefined {
  if (e.kind === 'error' || e.ok === false) return 'red';
  if (e.kind === 'action') return 'cyan';
  if (e.kind === 'reload') return 'magenta';
  if (e.kind === 'transition' && e.ok === true) return 'green';
  return undefined;
}

/** One event: `12:01:03 imaps/10.0.0.2:993     probe L7_OK 3ms * OK`. */
export function eventLine(e: EventView, width: number, backendWidth: number): Segment[] {
  const c = eventColor(e);
  return fitSegments(
    [
      { text: formatClock(e.time) + ' ', dim: true },
      { text: pad(e.backend ?? '-', backendWidth, 'left', true) + ' ' },
      { text: e.text, ...(c ? { color: c } : {}) },
    ],
    width,
  );
}

/** Widths of the connection columns for a terminal width: client, listener, backend (the rest, at most 48). */
export function connColumns(width: number): { client: number; listener: number; backend: number; tls: number } {
  const client = width >= 100 ? 24 : 21;
  const listener = width >= 100 ? 12 : 8;
  // Where TLS is terminated (`client+backend`), on terminals wide enough for it.
  const tls = width >= 100 ? 14 : 0;
  // client ' → ' listener ' → ' backend, then ' ' age(6) ' ' in(4) ' ' out(4): 6 + 17 fixed cells, and ' ' tls.
  const backend = Math.min(48, Math.max(8, width - client - listener - 23 - (tls > 0 ? tls + 1 : 0)));
  return { client, listener, backend, tls };
}

/** The column titles of the connections panel. */
export function connTitleLine(width: number): Segment[] {
  const w = connColumns(width);
  const tls = w.tls > 0 ? ` ${pad('TLS', w.tls)}` : '';
  const text = `${pad('CLIENT', w.client)}   ${pad('LISTENER', w.listener)}   ${pad('BACKEND', w.backend)} ${pad('AGE', 6, 'right')} ${pad('IN', 4, 'right')} ${pad('OUT', 4, 'right')}${tls}`;
  return fitSegments([{ text, dim: true, bold: true }], width);
}

/** One open connection: client → listener → backend, age, bytes in and out (and where TLS is terminated, when wide). */
export function connLine(c: SessionInfo, now: number, width: number): Segment[] {
  const w = connColumns(width);
  return fitSegments(
    [
      { text: pad(c.client, w.client, 'left', true) },
      { text: ' → ', dim: true },
      { text: pad(c.listener, w.listener), color: 'cyan' },
      { text: ' → ', dim: true },
      { text: pad(c.backend === '' ? '(connecting)' : c.backend, w.backend, 'left', true) },
      { text: ` ${pad(formatDuration(now - c.start), 6, 'right')} ${pad(formatBytesShort(c.bytesIn), 4, 'right')} ${pad(formatBytesShort(c.bytesOut), 4, 'right')}` },
      ...(w.tls > 0 ? [{ text: ` ${pad(c.tls ?? '-', w.tls)}`, ...(c.tls === undefined || c.tls === '-' ? { dim: true } : { color: 'green' as const }) }] : []),
    ],
    width,
  );
}

/** Order connections by age (oldest first, as the snapshot gives them) or by bytes (both ways, largest first). */
export function sortConnections(list: readonly SessionInfo[], by: 'age' | 'bytes'): SessionInfo[] {
  const out = [...list];
  if (by === 'age') out.sort((a, b) => a.start - b.start || a.id - b.id);
  else out.sort((a, b) => b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut) || a.start - b.start);
  return out;
}
