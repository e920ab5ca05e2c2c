/** Assertions on config load results shared by the config tests. */
import assert from 'node:assert/strict';
import { formatIssue, type LoadResult } from '../../src/core/config.js';

/** The config was rejected with exactly one issue, at `line:column`, whose message matches `text`. */
export function onlyIssue(r: LoadResult, line: number, column: number, text: RegExp): void {
  assert.equal(r.ok, false, 'expected the config to be rejected');
  if (r.ok) return;
  assert.equal(r.issues.length, 1, r.issues.map(formatIssue).join('\n'));
  const i = r.issues[0]!;
  assert.equal(`${i.line}:${i.column}`, `${line}:${column}`, formatIssue(i));
  assert.match(i.message, text);
}
