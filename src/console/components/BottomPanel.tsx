/**
 * The bottom panel: the event log (newest last) or the open connections
 * (sortable, filtered, bounded with `… and N more`). `tab` switches.
 */
import { Box } from 'ink';
import type { EventView, Snapshot } from '../../runtime/snapshot.js';
import { truncate } from '../format.js';
import { matchesFilter } from '../reducer.js';
import { connLine, connTitleLine, eventLine, panelTitleLine, sortConnections } from '../rows.js';
import { Blank, Line } from './Line.js';

/** Props of {@link BottomPanel}. */
export interface BottomPanelProps {
  readonly snapshot: Snapshot;
  readonly panel: 'events' | 'connections';
  readonly sort: 'age' | 'bytes';
  readonly filter: string;
  /** Rows scrolled back (events: from the newest; connections: from the first). */
  readonly scroll: number;
  readonly width: number;
  /** Lines available including the title line; 0 hides the panel. */
  readonly height: number;
}

function EventRows({ events, width, rows, back }: { events: readonly EventView[]; width: number; rows: number; back: number }) {
  const shown = events.slice(Math.max(0, events.length - rows - back), events.length - back);
  const backendW = Math.min(32, Math.max(1, ...shown.map((e) => (e.backend ?? '-').length)), Math.floor(width / 3));
  return (
    <>
      {shown.length === 0 ? <Line segments={[{ text: 'no events yet', dim: true }]} /> : null}
      {shown.map((e, i) => (
        <Line key={`${e.time}:${i}`} segments={eventLine(e, width, backendW)} />
      ))}
      <Blank n={rows - shown.length - (shown.length === 0 ? 1 : 0)} />
    </>
  );
}

function ConnectionRows({ snapshot, sort, filter, width, rows, scroll }: Omit<BottomPanelProps, 'panel' | 'height'> & { rows: number }) {
  const { total, list } = snapshot.connections;
  const matching = sortConnections(
    list.filter((c) => matchesFilter(filter, c.client, c.listener, c.backend)),
    sort,
  );
  const unlisted = total - list.length;
  // The title line, then connection rows; the last row says how many are not shown.
  const bodyRows = rows - 1;
  const fits = matching.length + (unlisted > 0 ? 1 : 0) <= bodyRows;
  const rowsForList = fits ? matching.length : Math.max(0, bodyRows - 1);
  const from = Math.min(scroll, Math.max(0, matching.length - rowsForList));
  const shown = matching.slice(from, from + rowsForList);
  const more = matching.length - shown.length + unlisted;
  const moreText = filter === '' ? `… and ${more} more` : `… and ${matching.length - shown.length} more matching, ${unlisted} not listed`;
  return (
    <>
      <Line segments={connTitleLine(width)} />
      {shown.map((c) => (
        <Line key={c.id} segments={connLine(c, snapshot.time, width)} />
      ))}
      {more > 0 && bodyRows > 0 ? <Line segments={[{ text: truncate(moreText, width), dim: true }]} /> : null}
      {matching.length === 0 && more === 0 && bodyRows > 0 ? <Line segments={[{ text: filter === '' ? 'no open connections' : `no connection matches "${filter}"`, dim: true }]} /> : null}
      <Blank n={bodyRows - shown.length - (more > 0 || matching.length === 0 ? 1 : 0)} />
    </>
  );
}

/** The focused bottom panel, exactly `height` lines. */
export function BottomPanel(props: BottomPanelProps) {
  const { snapshot, panel, sort, width, height } = props;
  if (height <= 0) return null;
  const rows = height - 1;
  // Events scroll back from the newest; the reducer doesn't know the panel's height, so clamp here.
  const back = panel === 'events' ? Math.min(props.scroll, Math.max(0, snapshot.events.length - rows)) : 0;
  return (
    <Box flexDirection="column">
      <Line segments={panelTitleLine(panel, snapshot, sort, width, back)} />
      {panel === 'events' ? (
        <EventRows events={snapshot.events} width={width} rows={rows} back={back} />
      ) : (
        <ConnectionRows snapshot={snapshot} sort={sort} filter={props.filter} scroll={props.scroll} width={width} rows={rows} />
      )}
    </Box>
  );
}
