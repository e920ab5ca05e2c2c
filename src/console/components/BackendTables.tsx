/**
 * The upstream tables as one scrolled list: a column-title line, then per
 * upstream a title row and its backend rows. The selected backend is always
 * in the window.
 */
import { Box } from 'ink';
import { useRef } from 'react';
import type { BackendId } from '../../core/types.js';
import { truncate } from '../format.js';
import { selectionWindow, tableColumns } from '../layout.js';
import { backendLine, columnTitleLine, upstreamLine } from '../rows.js';
import type { TableRow } from '../view.js';
import { Blank, Line } from './Line.js';

/** Props of {@link BackendTables}. */
export interface BackendTablesProps {
  readonly rows: readonly TableRow[];
  readonly width: number;
  /** Lines available, including the column-title line. */
  readonly height: number;
  readonly selected: BackendId | undefined;
  readonly checking: readonly BackendId[];
  /** Shown instead of an empty table (`no backend matches "x"`). */
  readonly emptyText: string;
}

/** The tables; keeps its scroll offset between frames so the window moves as little as possible. */
export function BackendTables({ rows, width, height, selected, checking, emptyText }: BackendTablesProps) {
  const offsetRef = useRef(0);
  if (height <= 0) return null;
  const all = rows.flatMap((r) => (r.kind === 'backend' ? [r.backend] : []));
  const cols = tableColumns(width, {
    hasCert: all.some((b) => b.cert !== undefined),
    longest: Math.max(0, ...all.map((b) => b.address.length + (b.backup ? 9 : 0))),
    ...(all[0]?.instances === undefined ? {} : { fleet: all[0].instances.map((i) => i.name) }),
  });
  const windowH = height - 1;
  const target = Math.max(0, rows.findIndex((r) => r.kind === 'backend' && r.backend.id === selected));
  const offset = selectionWindow(offsetRef.current, target, windowH, rows.length, rows[target - 1]?.kind === 'upstream');
  offsetRef.current = offset;
  const visible = rows.slice(offset, offset + windowH);
  const below = rows.length - offset - visible.length;
  // Rows hidden above / below the window, next to the BACKEND title: `BACKEND ↑3 ↓12`.
  const scroll = [offset > 0 ? `↑${offset}` : '', below > 0 ? `↓${below}` : ''].filter((x) => x !== '').join(' ');
  return (
    <Box flexDirection="column">
      <Line segments={columnTitleLine(cols, width, scroll)} />
      {rows.length === 0 ? <Line segments={[{ text: truncate(emptyText, width), dim: true }]} /> : null}
      {visible.map((r) =>
        r.kind === 'upstream' ? (
          <Line key={`u:${r.upstream.name}`} segments={upstreamLine(r.upstream, width)} />
        ) : (
          <Line key={r.backend.id} segments={backendLine(r.backend, cols, width, r.backend.id === selected, checking.includes(r.backend.id))} />
        ),
      )}
      <Blank n={windowH - visible.length - (rows.length === 0 ? 1 : 0)} />
    </Box>
  );
}
