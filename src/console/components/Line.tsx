/**
 * One terminal line from pre-fitted segments. `wrap="truncate-end"` is a
 * second guard: a line can be cut, never wrapped into the next row.
 */
import { Text } from 'ink';
import { memo } from 'react';
import type { Segment } from '../format.js';

/** Props of {@link Line}. */
export interface LineProps {
  /** Already fitted to the width (see `fitSegments`); empty renders a blank line. */
  readonly segments: readonly Segment[];
}

function same(a: LineProps, b: LineProps): boolean {
  if (a.segments.length !== b.segments.length) return false;
  return a.segments.every((s, i) => {
    const t = b.segments[i]!;
    return s.text === t.text && s.color === t.color && s.bold === t.bold && s.dim === t.dim && s.inverse === t.inverse;
  });
}

/** A single line; memoised by content, since most lines don't change between polls. */
export const Line = memo(function Line({ segments }: LineProps) {
  if (segments.length === 0) return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {segments.map((s, i) => (
        <Text key={i} color={s.color} bold={s.bold} dimColor={s.dim} inverse={s.inverse}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
}, same);

/** `n` blank lines, to keep every area at its exact height (the frame never jumps). */
export function Blank({ n }: { readonly n: number }) {
  return (
    <>
      {Array.from({ length: Math.max(0, n) }, (_, i) => (
        <Text key={i}> </Text>
      ))}
    </>
  );
}
