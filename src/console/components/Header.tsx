/** The three header lines: identity, config watch state, totals and listeners. */
import { Box } from 'ink';
import { memo } from 'react';
import type { Snapshot } from '../../runtime/snapshot.js';
import { configLine, titleLine, totalsLine } from '../rows.js';
import { Line } from './Line.js';

/** Props of {@link Header}. */
export interface HeaderProps {
  readonly snapshot: Snapshot;
  readonly width: number;
  /** Overrides `snapshot.version` when given. */
  readonly version: string | undefined;
  /** Config load time when the console started (later ones read `reloaded`). */
  readonly firstLoadedAt: number;
  /** 1 to 3: lines available. */
  readonly height: number;
}

/** Header: `tcplb VERSION · engine js · pid N`, the config line (red when a reload was refused), totals. */
export const Header = memo(function Header({ snapshot, width, version, firstLoadedAt, height }: HeaderProps) {
  const lines = [titleLine(snapshot, width, version), configLine(snapshot.config, width, firstLoadedAt), totalsLine(snapshot, width)];
  return (
    <Box flexDirection="column">
      {lines.slice(0, height).map((segs, i) => (
        <Line key={i} segments={segs} />
      ))}
    </Box>
  );
});
