/**
 * Results, statistics (median, min-max) and the table: plain text for the
 * terminal, Markdown for docs/benchmarks.md.
 */
import { isTcplb, OTHER_PROXIES, TCPLB, type PeerName, type TcplbPeer } from './peers.js';

export type RowKey =
  | 'conn_rps'
  | 'conn_p50'
  | 'conn_p99'
  | 'conn_cpu'
  | 'ka_rps'
  | 'ka_p50'
  | 'ka_p99'
  | 'ka_cpu'
  | 'bulk1'
  | 'bulk4'
  | 'bulk4_cpu'
  | 'idle_mem'
  | 'check_cost'
  | 'scale_first'
  | 'scale_ctl';

export interface RowDef {
  key: RowKey;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

export const ROWS: readonly RowDef[] = [
  { key: 'conn_rps', label: 'connection rate (Connection: close)', unit: 'req/s', better: 'higher' },
  { key: 'conn_p50', label: '  latency p50', unit: 'ms', better: 'lower' },
  { key: 'conn_p99', label: '  latency p99', unit: 'ms', better: 'lower' },
  { key: 'conn_cpu', label: '  proxy CPU per request', unit: 'µs', better: 'lower' },
  { key: 'ka_rps', label: 'keep-alive rate', unit: 'req/s', better: 'higher' },
  { key: 'ka_p50', label: '  latency p50', unit: 'ms', better: 'lower' },
  { key: 'ka_p99', label: '  latency p99', unit: 'ms', better: 'lower' },
  { key: 'ka_cpu', label: '  proxy CPU per request', unit: 'µs', better: 'lower' },
  { key: 'bulk1', label: 'bulk, 1 stream', unit: 'Gbit/s', better: 'higher' },
  { key: 'bulk4', label: 'bulk, 4 streams', unit: 'Gbit/s', better: 'higher' },
  { key: 'bulk4_cpu', label: '  proxy CPU per GB', unit: 'ms', better: 'lower' },
  { key: 'idle_mem', label: 'idle memory, 9,000 connections', unit: 'KiB/conn', better: 'lower' },
  { key: 'check_cost', label: 'check cost, 1,000 tcp checks at 1 s', unit: '% of a core', better: 'lower' },
  { key: 'scale_first', label: '10,000 checked upstreams: start to first client', unit: 'ms', better: 'lower' },
  { key: 'scale_ctl', label: '10,000 checked upstreams: ctl status', unit: 'ms', better: 'lower' },
];

export interface Cell {
  values: number[];
  errors: string[];
  /** Not applicable here (e.g. idle memory without a proxy): shown as "—". */
  notApplicable?: boolean;
}

export class Results {
  private readonly cells = new Map<string, Cell>();

  cell(row: RowKey, col: PeerName): Cell {
    const k = `${row}|${col}`;
    let c = this.cells.get(k);
    if (!c) {
      c = { values: [], errors: [] };
      this.cells.set(k, c);
    }
    return c;
  }

  add(row: RowKey, col: PeerName, v: number): void {
    this.cell(row, col).values.push(v);
  }

  fail(rows: readonly RowKey[], col: PeerName, reason: string): void {
    for (const r of rows) this.cell(r, col).errors.push(reason);
  }

  notApplicable(row: RowKey, col: PeerName): void {
    this.cell(row, col).notApplicable = true;
  }

  has(row: RowKey, col: PeerName): boolean {
    return this.cells.has(`${row}|${col}`);
  }

  /** Every failure, for the notes under the table: one entry per column and reason, with the rows it hit. */
  failures(): Failure[] {
    const out = new Map<string, Failure>();
    for (const [k, c] of this.cells) {
      const [row, col] = k.split('|') as [RowKey, PeerName];
      for (const reason of c.errors) {
        const key = `${col}|${reason}`;
        const f = out.get(key) ?? { col, reason, rows: [], count: 0 };
        if (!f.rows.includes(row)) f.rows.push(row);
        f.count++;
        out.set(key, f);
      }
    }
    return [...out.values()];
  }
}

export interface Failure {
  col: PeerName;
  reason: string;
  rows: RowKey[];
  /** Failed measurements (a wrk run counts once per row it fills). */
  count: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Three significant digits, no exponent, no thousands separators. */
export function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a >= 0.1) return n.toFixed(3);
  return n.toPrecision(2);
}

/** A reason short enough for a table cell; the notes under the table have it whole. */
export function short(reason: string, max = 64): string {
  return reason.length <= max ? reason : reason.slice(0, max - 1) + '…';
}

export function formatCell(c: Cell | undefined): string {
  if (!c || c.notApplicable) return '—';
  if (c.values.length === 0) return c.errors.length > 0 ? `n/a (${short(c.errors[0]!)})` : '—';
  const med = median(c.values);
  let s = num(med);
  if (c.values.length > 1) s += ` [${num(Math.min(...c.values))}-${num(Math.max(...c.values))}]`;
  if (c.errors.length > 0) s += ` (${c.values.length}/${c.values.length + c.errors.length} runs)`;
  return s;
}

function ratioOf(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0) return '—';
  return `${(a / b).toFixed(2)}x`;
}

export interface Table {
  header: string[];
  rows: string[][];
}

/** The two tables of a run: the measurements, and tcplb / peer ratios of the medians (undefined: nothing to compare). */
export interface Tables {
  main: Table;
  ratios: Table | undefined;
}

/**
 * Rows = workloads. `main`: one column per peer run. `ratios`: for each other
 * proxy's column present (nginx, HAProxy, and their tuned twins nginx-tuned,
 * haproxy-tuned), one column per tcplb column that measured anything
 * (`js/haproxy`, `native/haproxy-tuned`, ...), then, when two or more of those
 * proxy columns ran, `best/best`: the best tcplb engine column of the row over
 * the best of all the other proxies' columns in that row (defaults or tuned,
 * whichever measured better there), the cell naming both.
 */
export function buildTables(results: Results, columns: readonly PeerName[], rows: readonly RowDef[]): Tables {
  const med = (row: RowKey, col: PeerName): number | undefined => {
    if (!results.has(row, col)) return undefined;
    const c = results.cell(row, col);
    return c.values.length > 0 && !c.notApplicable ? median(c.values) : undefined;
  };
  const main: Table = {
    header: ['workload', 'unit', 'better', ...columns],
    rows: rows.map((r) => [r.label, r.unit, r.better, ...columns.map((c) => formatCell(results.has(r.key, c) ? results.cell(r.key, c) : undefined))]),
  };
  const refs = OTHER_PROXIES.filter((p) => columns.includes(p));
  const ran = columns.filter((c): c is TcplbPeer => isTcplb(c) && rows.some((r) => med(r.key, c) !== undefined));
  if (refs.length === 0 || ran.length === 0) return { main, ratios: undefined };
  const pairs = refs.flatMap((ref) => ran.map((t) => [t, ref] as const));
  // best/best: among the engine columns (the extra `+f` column only if it is all there is)
  const plain = ran.filter((t) => !t.endsWith('+f'));
  const engines = plain.length > 0 ? plain : ran;
  const withBest = refs.length >= 2;
  const pick = (r: RowDef, cols: readonly PeerName[]): [PeerName, number] | undefined => {
    let best: [PeerName, number] | undefined;
    for (const c of cols) {
      const m = med(r.key, c);
      if (m === undefined) continue;
      if (!best || (r.better === 'higher' ? m > best[1] : m < best[1])) best = [c, m];
    }
    return best;
  };
  const ratios: Table = {
    header: ['workload', 'better', ...pairs.map(([t, ref]) => `${TCPLB[t].short}/${ref}`), ...(withBest ? ['best/best'] : [])],
    rows: rows.map((r) => {
      const cells = pairs.map(([t, ref]) => ratioOf(med(r.key, t), med(r.key, ref)));
      if (withBest) {
        const t = pick(r, engines);
        const ref = pick(r, refs);
        cells.push(t && ref && ref[1] !== 0 ? `${ratioOf(t[1], ref[1])} ${TCPLB[t[0] as TcplbPeer].short}/${ref[0]}` : '—');
      }
      return [r.label, r.better, ...cells];
    }),
  };
  return { main, ratios };
}

export function textTable(t: Table): string {
  const all = [t.header, ...t.rows];
  const widths = t.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(t.header), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

/** Columns before the first number column (workload, unit, better) are left-aligned, the rest right-aligned. */
export function markdownTable(t: Table): string {
  const text = t.header.filter((h) => h === 'workload' || h === 'unit' || h === 'better').length;
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/^ +/, (m) => '&nbsp;'.repeat(m.length));
  const line = (r: string[]): string => `| ${r.map(esc).join(' | ')} |`;
  return [line(t.header), line(t.header.map((_, i) => (i < text ? '---' : '---:'))), ...t.rows.map(line)].join('\n');
}
