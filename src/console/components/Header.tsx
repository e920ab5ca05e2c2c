/** The three header lines: identity, config watch state, totals and listeners. */
import { Box } from 'ink';
import { memo } from 'react';
import type { AttachLink, MemberLink } from '../../runtime/console-source.js';
import type { Snapshot } from '../../runtime/snapshot.js';
import { attachLine, configLine, fleetLine, titleLine, totalsLine } from '../rows.js';
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
  /** Attached to a tcplb elsewhere: line 1 says to which (or that the link is lost). */
  readonly attach?: AttachLink | undefined;
  /** Steering a fleet: line 1 lists the instances and which cannot be reached. */
  readonly members?: readonly MemberLink[] | undefined;
}

/** Header: `tcplb VERSION · engine js · pid N` (attached: `attached to pid N · started … · config …`), the config line (red when a reload was refused), totals. */
export const Header = memo(function Header({ snapshot, width, version, firstLoadedAt, height, attach, members }: HeaderProps) {
  const first = members !== undefined ? fleetLine(members, width) : attach === undefined ? titleLine(snapshot, width, version) : attachLine(attach, snapshot, width);
  const lines = [first, configLine(snapshot.config, width, firstLoadedAt, snapshot.acme), totalsLine(snapshot, width)];
  return (
    <Box flexDirection="column">
      {lines.slice(0, height).map((segs, i) => (
        <Line key={i} segments={segs} />
      ))}
    </Box>
  );
});
