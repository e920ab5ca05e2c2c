/**
 * Pure formatting for the console: colours per state, human units, terminal
 * cell widths and truncation. No React here, so all of it is unit-tested
 * without rendering (STYLE habit 13).
 */
import type { ProbeStatus } from '../core/types.js';
import type { DisplayState } from '../runtime/backend.js';

/** An Ink colour name (chalk's foreground names). */
export type ColorName = 'green' | 'red' | 'yellow' | 'gray' | 'blue' | 'cyan' | 'magenta' | 'white';

/** One styled run of text inside a line. */
export interface Segment {
  readonly text: string;
  readonly color?: ColorName;
  readonly bold?: boolean;
  readonly dim?: boolean;
  readonly inverse?: boolean;
}

/** The colour of a backend state word: UP green, DOWN red, DRAINING yellow, DISABLED gray, UNKNOWN blue. */
export function stateColor(state: DisplayState): ColorName {
  switch (state) {
    case 'UP':
      return 'green';
    case 'DOWN':
      return 'red';
    case 'DRAINING':
      return 'yellow';
    case 'DISABLED':
      return 'gray';
    case 'UNKNOWN':
      return 'blue';
  }
}

/**
 * The colour of a last-probe status: passed green, failed red; LOCAL_ERROR yellow,
 * since there tcplb itself (out of descriptors...) is the problem, not the backend.
 */
export function probeColor(p: { readonly ok: boolean; readonly status: ProbeStatus }): ColorName {
  if (p.status === 'LOCAL_ERROR') return 'yellow';
  return p.ok ? 'green' : 'red';
}

/**
 * Replace control characters (C0, DEL, C1) by spaces. Probe details and
 * config errors can carry text a remote server sent; an ESC in it must not
 * reach the operator's terminal, and a newline must not break the layout.
 */
export function sanitize(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** Terminal cells taken by one code point: 0 for combining marks, 2 for East Asian wide and emoji, else 1. */
export function charWidth(cp: number): number {
  if (cp === 0x200b || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Terminal cells taken by `s` (after sanitising). */
export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** The longest prefix of `s` that fits in `width` cells. */
function takeWidth(s: string, width: number): string {
  let w = 0;
  let out = '';
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width) break;
    w += cw;
    out += ch;
  }
  return out;
}

/** Cut `s` to at most `width` cells, ending in `…` when something was cut. */
export function truncate(s: string, width: number): string {
  const clean = sanitize(s);
  if (width <= 0) return '';
  if (textWidth(clean) <= width) return clean;
  return takeWidth(clean, width - 1) + '…';
}

/**
 * Cut `s` in the middle (`mail-eu-west-…example.net:993`): for addresses the
 * end (the port, the domain) tells backends apart as much as the start.
 */
export function truncateMiddle(s: string, width: number): string {
  const clean = sanitize(s);
  if (width <= 0) return '';
  if (textWidth(clean) <= width) return clean;
  if (width < 6) return truncate(clean, width);
  const tailW = Math.floor((width - 1) / 2);
  const head = takeWidth(clean, width - 1 - tailW);
  const chars = [...clean];
  let tail = '';
  let w = 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    const cw = charWidth(chars[i]!.codePointAt(0)!);
    if (w + cw > width - 1 - textWidth(head)) break;
    w += cw;
    tail = chars[i]! + tail;
  }
  return head + '…' + tail;
}

/** Truncate, then pad with spaces to exactly `width` cells. */
export function pad(s: string, width: number, align: 'left' | 'right' = 'left', middle = false): string {
  const t = middle ? truncateMiddle(s, width) : truncate(s, width);
  const fill = ' '.repeat(Math.max(0, width - textWidth(t)));
  return align === 'left' ? t + fill : fill + t;
}

/**
 * Fit a line of segments into `width` cells: later segments are cut (with
 * `…`) or dropped; with `fill`, the line is padded to the full width (so an
 * inverse selection bar spans the row). The result never exceeds `width`.
 */
export function fitSegments(segments: readonly Segment[], width: number, fill = false): Segment[] {
  const clean = segments.map((s) => ({ ...s, text: sanitize(s.text) }));
  const total = clean.reduce((n, s) => n + textWidth(s.text), 0);
  let out: Segment[] = clean;
  let used = total;
  if (total > width) {
    // Keep what fits in width - 1 cells, then one `…` in the style of the cut segment.
    out = [];
    used = 0;
    const budget = Math.max(0, width - 1);
    for (const seg of clean) {
      const w = textWidth(seg.text);
      const t = used + w <= budget ? seg.text : takeWidth(seg.text, budget - used);
      used += textWidth(t);
      if (t !== seg.text) {
        if (width > 0) out.push({ ...seg, text: t + '…' });
        used = width > 0 ? used + 1 : 0;
        break;
      }
      out.push(seg);
    }
  }
  if (fill && used < width) {
    const last = out[out.length - 1];
    out.push({ text: ' '.repeat(width - used), ...(last?.inverse ? { inverse: true } : {}) });
  }
  return out.filter((s) => s.text !== '');
}

/** Plain text of a line of segments (for tests and width checks). */
export function segmentsText(segments: readonly Segment[]): string {
  return segments.map((s) => s.text).join('');
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Human bytes, SI units: `512 B`, `1.2 kB`, `34 MB`. One decimal below 10. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  let v = n;
  let u = 0;
  while (v >= 999.5 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  const s = v < 9.95 ? v.toFixed(1) : String(Math.round(v));
  return `${s} ${UNITS[u]}`;
}

/** Bytes in at most 4 cells for table cells: `999B`, `1.2K`, `34M`, `1.0G`. */
export function formatBytesShort(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  const short = ['B', 'K', 'M', 'G', 'T', 'P'];
  let v = n;
  let u = 0;
  while (v >= 999.5 && u < short.length - 1) {
    v /= 1000;
    u++;
  }
  if (u === 0) return `${Math.round(v)}B`;
  const s = v < 9.95 ? v.toFixed(1) : String(Math.round(v));
  return `${s}${short[u]}`;
}

/** `1.2 MB/s`. */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** A count per second: one decimal below 10 (`3.4`), whole above (`120`). */
export function formatPerSec(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '0';
  return n < 9.95 ? n.toFixed(1) : String(Math.round(n));
}

/** Compact duration in at most 6 cells: `850ms`, `45s`, `2m13s`, `1h02m`, `3d04h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor((s % 86400) / 3600))}h`;
}

/** Probe latency: `3ms`; from one second on `2s`, `1.5s`. */
export function formatLatency(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
}

/** Local wall-clock time `HH:MM:SS` of an epoch-ms timestamp. */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Certificate days left, and the colour when it needs attention (<= 14 days, expired, or name not covered). */
export function certCell(cert: { daysLeft: number; coversName?: boolean } | undefined): { text: string; color?: ColorName } {
  if (cert === undefined) return { text: '' };
  const text = `${cert.daysLeft}d${cert.coversName === false ? ' !name' : ''}`;
  if (cert.daysLeft < 0 || cert.coversName === false) return { text, color: 'red' };
  if (cert.daysLeft <= 14) return { text, color: 'yellow' };
  return { text };
}

/** `0.0.0.0:993` -> `*:993`; other addresses unchanged. */
export function shortListen(listen: string): string {
  return listen.replace(/^(0\.0\.0\.0|\[::\]|::):/, '*:');
}
