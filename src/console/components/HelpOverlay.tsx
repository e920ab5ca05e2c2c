/** The `?` help overlay: every key with its longer description, in place of the tables and panel. */
import { Box } from 'ink';
import { memo } from 'react';
import { fitSegments, pad, type Segment } from '../format.js';
import { keyHelp } from '../keymap.js';
import { Blank, Line } from './Line.js';

/** The overlay's lines for a width (pure, for tests). */
export function helpLines(width: number, attached = false): Segment[][] {
  const KEY_HELP = keyHelp(attached);
  const keyW = Math.max(...KEY_HELP.map((k) => k.keys.length));
  return [
    fitSegments([{ text: 'Keys', bold: true }, { text: '   Esc or ? closes this help', dim: true }], width),
    ...KEY_HELP.map((k) => fitSegments([{ text: `  ${pad(k.keys, keyW)}  `, bold: true, color: 'cyan' }, { text: k.long }], width)),
    fitSegments([{ text: 'States: ', dim: true }, { text: 'UP ', color: 'green' }, { text: 'DOWN ', color: 'red' }, { text: 'DRAINING ', color: 'yellow' }, { text: 'DISABLED ', color: 'gray' }, { text: 'UNKNOWN', color: 'blue' }], width),
  ];
}

/** Props of {@link HelpOverlay}. */
export interface HelpOverlayProps {
  readonly width: number;
  /** Exactly this many lines are drawn (cut if the terminal is short). */
  readonly height: number;
  /** Attached console: `q` detaches. */
  readonly attached?: boolean;
}

/** The help overlay. */
export const HelpOverlay = memo(function HelpOverlay({ width, height, attached = false }: HelpOverlayProps) {
  const lines = helpLines(width, attached).slice(0, Math.max(0, height));
  return (
    <Box flexDirection="column">
      {lines.map((segs, i) => (
        <Line key={i} segments={segs} />
      ))}
      <Blank n={height - lines.length} />
    </Box>
  );
});
