/**
 * The operator console: polls snapshots, lays the screen out for the
 * terminal's size, and turns keys into operator actions. Presentation lives in
 * components/, decisions in reducer.ts and keymap.ts, numbers in format.ts.
 */
import { Box } from 'ink';
import { useMemo, useRef } from 'react';
import type { ConsoleSource } from '../runtime/console-source.js';
import { BackendTables } from './components/BackendTables.js';
import { BottomPanel } from './components/BottomPanel.js';
import { Header } from './components/Header.js';
import { HelpOverlay } from './components/HelpOverlay.js';
import { Footer, StatusLine } from './components/StatusLine.js';
import { useConsoleKeys } from './hooks/useConsoleKeys.js';
import { useSnapshot } from './hooks/useSnapshot.js';
import { useTerminalSize } from './hooks/useTerminalSize.js';
import { useUiStore } from './hooks/useUiStore.js';
import { computeHeights } from './layout.js';
import { effectiveSelection } from './reducer.js';
import { filterUpstreams, tableRows } from './view.js';

/** Props of {@link App}. */
export interface AppProps {
  /** The runtime's operator actions and snapshots. */
  readonly actions: ConsoleSource;
  /** Called once the operator confirmed quitting (attached: on `q` at once); the caller shuts the proxy down (attached: detaches) and unmounts. */
  readonly onQuit: () => void;
  /** Shown in the header instead of `snapshot.version`. */
  readonly version?: string;
  /**
   * Snapshot poll (and redraw) period in ms: 2 frames a second keep the data
   * plane's share of the CPU when it relays on threads of its own; the caller
   * passes 1000 when the relay shares this thread (engine js, one process),
   * where a frame's rendering is taken from relaying (bench/console-overhead.sh:
   * 0.86x the headless connection rate at 2 frames/s, 0.97x at 1). @default 500
   */
  readonly intervalMs?: number;
  /** Most open connections fetched per snapshot. @default 200 */
  readonly connLimit?: number;
}

/** The whole console, sized to the terminal (one line less than its rows, so Ink never scrolls). */
export function App({ actions, onQuit, version, intervalMs = 500, connLimit = 200 }: AppProps) {
  const { columns: width, rows: termRows } = useTerminalSize();
  const { snapshot, latest, refresh, error } = useSnapshot(actions, intervalMs, connLimit);
  const { ui, get, dispatch } = useUiStore();
  const firstLoadedAt = useRef(snapshot.config.loadedAt).current;

  const upstreams = useMemo(() => filterUpstreams(snapshot.upstreams, ui.filter), [snapshot, ui.filter]);
  const rows = useMemo(() => tableRows(upstreams), [upstreams]);
  const backends = useMemo(() => rows.flatMap((r) => (r.kind === 'backend' ? [r.backend] : [])), [rows]);
  const ids = useMemo(() => backends.map((b) => b.id), [backends]);
  const selectedId = effectiveSelection(ui.selected, ids);
  const selected = backends.find((b) => b.id === selectedId);

  // Attached: the link's state, read at each frame (frames follow the poll timer).
  const attach = actions.attachment?.link();
  const members = actions.attachment?.members?.();

  useConsoleKeys({ actions, latest, refresh, mode: ui.mode.kind, get, dispatch, onQuit });

  const h = computeHeights(termRows, rows.length === 0 ? 2 : rows.length + 1);
  const status = ui.status ?? (error !== undefined ? { text: `snapshot failed: ${error}`, tone: 'error' as const } : undefined);
  const emptyText = ui.filter === '' ? 'no backends configured' : `no backend matches "${ui.filter}" (/ then Esc clears)`;
  return (
    <Box flexDirection="column" width={width}>
      <Header snapshot={snapshot} width={width} version={version} firstLoadedAt={firstLoadedAt} height={h.header} attach={attach} members={members} />
      {ui.mode.kind === 'help' ? (
        <HelpOverlay width={width} height={h.table + h.panel} attached={attach !== undefined} />
      ) : (
        <>
          <BackendTables rows={rows} width={width} height={h.table} selected={selectedId} checking={ui.checking} emptyText={emptyText} />
          <BottomPanel snapshot={snapshot} panel={ui.panel} sort={ui.sort} filter={ui.filter} scroll={ui.panelScroll} width={width} height={h.panel} />
        </>
      )}
      {h.footer > 0 ? <StatusLine mode={ui.mode} status={status} selected={selected} width={width} /> : null}
      {h.footer > 1 ? <Footer width={width} filter={ui.filter} attached={attach !== undefined} /> : null}
    </Box>
  );
}
