/**
 * Pure geometry of the console: which table columns fit a width, how the
 * screen's rows are shared between tables and the bottom panel, and the
 * scroll window that keeps the selected backend visible.
 */

/** A backend-table column (the 2-cell selection marker is not one). */
export type ColumnKey = 'backend' | 'state' | 'probe' | 'check' | 'active' | 'total' | 'bytes' | 'weight' | 'cert' | 'reason';

/** One laid-out column: its title, width in cells and alignment. */
export interface Column {
  readonly key: ColumnKey;
  readonly title: string;
  readonly width: number;
  readonly align: 'left' | 'right';
}

/** Cells of the selection marker (`› `) at the start of each backend row. */
export const MARKER_WIDTH = 2;
/** The backend column never shrinks below this while optional columns are shown. */
export const MIN_BACKEND_WIDTH = 20;

const REQUIRED: readonly Column[] = [
  { key: 'state', title: 'STATE', width: 8, align: 'left' },
  { key: 'probe', title: 'PROBE', width: 14, align: 'left' },
  { key: 'check', title: 'CHECKS', width: 8, align: 'left' },
  { key: 'active', title: 'ACT', width: 4, align: 'right' },
];
/** Optional columns, most wanted first; each is shown only if the backend column keeps MIN_BACKEND_WIDTH. */
const OPTIONAL: readonly Column[] = [
  { key: 'bytes', title: 'IN/OUT', width: 9, align: 'right' },
  { key: 'cert', title: 'CERT', width: 8, align: 'left' },
  { key: 'total', title: 'TOTAL', width: 6, align: 'right' },
  { key: 'weight', title: 'W', width: 3, align: 'right' },
];
const ORDER: readonly ColumnKey[] = ['backend', 'state', 'probe', 'check', 'active', 'total', 'bytes', 'weight', 'cert', 'reason'];

/**
 * The columns for a terminal `width`. Optional columns are added in priority
 * order while they fit; the backend column takes the rest up to `longest`
 * (the longest address), and a REASON column takes what is left on wide
 * terminals. Widths plus one space between columns plus the marker sum to at
 * most `width`.
 */
export function tableColumns(width: number, opts: { hasCert: boolean; longest: number; fleet?: readonly string[] }): Column[] {
  const chosen: Column[] = [...REQUIRED];
  if (opts.fleet !== undefined && opts.fleet.length > 0) {
    // A fleet: the state on each instance side by side when that leaves the
    // backend column its minimum, else a compact summary (`2/3 up`).
    const side = fleetStateColumn(opts.fleet);
    const fits = MARKER_WIDTH + chosen.reduce((n, c) => n + c.width + 1, 0) - 9 + side.width + 1 + MIN_BACKEND_WIDTH <= width;
    chosen[0] = fits ? side : { key: 'state', title: 'FLEET', width: 9, align: 'left' };
  }
  const used = (cols: readonly Column[]): number => MARKER_WIDTH + cols.reduce((n, c) => n + c.width + 1, 0);
  for (const col of OPTIONAL) {
    if (col.key === 'cert' && !opts.hasCert) continue;
    if (used([...chosen, col]) + MIN_BACKEND_WIDTH <= width) chosen.push(col);
  }
  let backend = Math.max(4, width - used(chosen));
  const want = Math.max(MIN_BACKEND_WIDTH, opts.longest);
  if (backend - want >= 11) {
    chosen.push({ key: 'reason', title: 'REASON', width: backend - want - 1, align: 'left' });
    backend = want;
  }
  chosen.push({ key: 'backend', title: 'BACKEND', width: backend, align: 'left' });
  return ORDER.flatMap((k) => chosen.filter((c) => c.key === k));
}

/** Cells per instance in the fleet state column: its name's length, at least 4 (`DOWN`), at most 8 (`DRAINING`). */
export function fleetCellWidth(names: readonly string[]): number {
  return Math.min(8, Math.max(4, ...names.map((n) => n.length)));
}

/** The side-by-side state column of a fleet: a disagreement mark, then one cell per instance, titled by the instance names. */
function fleetStateColumn(names: readonly string[]): Column {
  const w = fleetCellWidth(names);
  const title = ' ' + names.map((n) => (n.length > w ? n.slice(0, w - 1) + '…' : n.padEnd(w))).join(' ');
  return { key: 'state', title: title.trimEnd(), width: 1 + names.length * (w + 1) - 1, align: 'left' };
}

/** How many rows each area gets. */
export interface Heights {
  /** Lines for the whole frame: one less than the terminal, so Ink never scrolls or clears the screen. */
  readonly frame: number;
  readonly header: number;
  /** Backend tables, including their column-title line. */
  readonly table: number;
  /** Bottom panel (events or connections), including its title line; 0 when the terminal is too small. */
  readonly panel: number;
  /** Status line plus key-help footer. */
  readonly footer: number;
}

/**
 * Share `rows` terminal rows: header 3, status + footer 2, the rest between the
 * tables and the bottom panel (about a third for the panel, at least 4 rows);
 * rows the tables don't need go to the panel. At 24 rows: 3 + 12 + 6 + 2 = 23.
 */
export function computeHeights(rows: number, tableNeeded: number): Heights {
  const frame = Math.max(1, rows - 1);
  const header = Math.min(3, frame);
  const footer = Math.min(2, frame - header);
  const body = Math.max(0, frame - header - footer);
  let panel = body < 8 ? 0 : Math.max(4, Math.round(body / 3));
  let table = body - panel;
  if (panel > 0 && tableNeeded < table) {
    panel += table - tableNeeded;
    table = tableNeeded;
  }
  return { frame, header, table, panel, footer };
}

/**
 * The first visible row of a scrolled list of `total` rows in a window of
 * `height`, moving as little as possible from `prev` so that `target` is
 * visible.
 */
export function scrollOffset(prev: number, target: number, height: number, total: number): number {
  if (height <= 0) return 0;
  let off = prev;
  if (target < off) off = target;
  if (target >= off + height) off = target - height + 1;
  return Math.max(0, Math.min(off, total - height));
}

/**
 * The scroll offset of the backend tables: `scrollOffset`, and when scrolling
 * up onto an upstream's first backend, one more row so its title shows too.
 */
export function selectionWindow(prev: number, target: number, height: number, total: number, titleAbove: boolean): number {
  const off = scrollOffset(prev, target, height, total);
  return titleAbove && off === target && target > 0 && height >= 2 ? target - 1 : off;
}
