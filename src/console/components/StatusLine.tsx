/**
 * The two bottom lines: the status line (prompt, last result, or the selected
 * backend's state and reason) and the key-help footer.
 */
import { memo } from 'react';
import type { BackendView } from '../../runtime/snapshot.js';
import { fitSegments, formatClock, stateColor, textWidth, type Segment } from '../format.js';
import { keyHelp } from '../keymap.js';
import type { Mode, Status } from '../reducer.js';
import { Line } from './Line.js';

/** The text of a confirmation prompt, e.g. `Kill 3 open connections to imap/10.0.0.2:143? y/N`. */
export function confirmText(mode: Extract<Mode, { kind: 'confirm' }>): string {
  const c = mode.confirm;
  const n = (k: number): string => `${k} open connection${k === 1 ? '' : 's'}`;
  if (c.kind === 'kill') return `Kill ${n(c.count)} to ${c.id}? y/N`;
  if (c.kind === 'standby') return c.on ? 'Standby? Reports not ready: the address moves away; connections go on. y/N' : 'Leave standby? Reports ready again when backends are usable. y/N';
  return `Quit? ${n(c.count)} will be closed. y/N`;
}

/** Segments of the status line for the current mode. */
export function statusSegments(mode: Mode, status: Status | undefined, selected: BackendView | undefined, width: number): Segment[] {
  if (mode.kind === 'confirm') return fitSegments([{ text: confirmText(mode), color: 'yellow', bold: true }], width);
  if (mode.kind === 'filter') {
    return fitSegments([{ text: '/', color: 'yellow', bold: true }, { text: mode.draft }, { text: '▏', color: 'yellow' }, { text: '  Enter apply · Esc clear', dim: true }], width);
  }
  if (status !== undefined) {
    const color = status.tone === 'ok' ? 'green' : status.tone === 'error' ? 'red' : 'cyan';
    return fitSegments([{ text: status.text, color }], width);
  }
  if (selected === undefined) return fitSegments([{ text: 'no backend selected', dim: true }], width);
  return fitSegments(
    [
      { text: selected.id + ' ', bold: true },
      { text: selected.state, color: stateColor(selected.state) },
      { text: ` since ${formatClock(selected.since)} · ${selected.reason}`, dim: true },
    ],
    width,
  );
}

/** Footer segments: the most needed key-help items that fit whole, after the applied filter (if any). */
export function footerSegments(width: number, filter: string, attached = false): Segment[] {
  const KEY_HELP = keyHelp(attached);
  const head = filter === '' ? [] : fitSegments([{ text: `filter "${filter}"`, color: 'yellow' }, { text: ' │ ', dim: true }], Math.min(width, 30));
  const room = width - head.reduce((n, s) => n + textWidth(s.text), 0);
  // Take items by rank while they fit, then print them in their usual order.
  const keep = new Set<string>();
  let used = -1;
  for (const k of [...KEY_HELP].sort((a, b) => a.rank - b.rank)) {
    const w = 1 + textWidth(`${k.keys} ${k.short}`);
    if (used + w > room) continue;
    keep.add(k.keys);
    used += w;
  }
  const items = KEY_HELP.filter((k) => keep.has(k.keys)).flatMap((k, i): Segment[] => [
    { text: (i === 0 ? '' : ' ') + k.keys, bold: true },
    { text: ' ' + k.short, dim: true },
  ]);
  return [...head, ...items];
}

/** Props of {@link StatusLine}. */
export interface StatusLineProps {
  readonly mode: Mode;
  readonly status: Status | undefined;
  readonly selected: BackendView | undefined;
  readonly width: number;
}

/** The status line. */
export function StatusLine({ mode, status, selected, width }: StatusLineProps) {
  return <Line segments={statusSegments(mode, status, selected, width)} />;
}

/** The key-help footer; changes only with width or filter. */
export const Footer = memo(function Footer({ width, filter, attached = false }: { readonly width: number; readonly filter: string; readonly attached?: boolean }) {
  return <Line segments={footerSegments(width, filter, attached)} />;
});
