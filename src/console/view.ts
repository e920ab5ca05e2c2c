/**
 * What the filter leaves visible, as pure functions of a snapshot: the
 * renderer and the key handlers compute the same rows from the same inputs,
 * so the backend a key acts on is the one the operator sees selected.
 */
import type { BackendView, Snapshot, UpstreamView } from '../runtime/snapshot.js';
import { matchesFilter } from './reducer.js';

/** One row of the flattened upstream tables. */
export type TableRow = { readonly kind: 'upstream'; readonly upstream: UpstreamView } | { readonly kind: 'backend'; readonly backend: BackendView };

/** Keep only the backends whose id or address contains the filter (case-insensitive). */
export function filterUpstreams(upstreams: readonly UpstreamView[], filter: string): UpstreamView[] {
  if (filter === '') return [...upstreams];
  return upstreams.map((u) => ({ ...u, backends: u.backends.filter((b) => matchesFilter(filter, b.id, b.address)) }));
}

/** Flatten upstreams into title and backend rows; upstreams without (matching) backends are skipped. */
export function tableRows(upstreams: readonly UpstreamView[]): TableRow[] {
  return upstreams.flatMap((u): TableRow[] =>
    u.backends.length === 0 ? [] : [{ kind: 'upstream', upstream: u }, ...u.backends.map((b): TableRow => ({ kind: 'backend', backend: b }))],
  );
}

/** The visible backends of a snapshot under a filter, in table order (what arrows move through). */
export function visibleBackends(s: Snapshot, filter: string): BackendView[] {
  return filterUpstreams(s.upstreams, filter).flatMap((u) => u.backends);
}
