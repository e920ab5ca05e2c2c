/**
 * Backend host names are checked to resolve when a config is started or
 * reloaded, so a typo is refused with the server that holds it rather than
 * found by the first client. The engines look names up again when they
 * connect (a backend may move): this is a check, not a cache.
 */
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Config } from '../core/config.js';

/** A host name lookup that rejects (with an errno `code`) when the name does not resolve. */
export type HostLookup = (host: string) => Promise<unknown>;

/**
 * One line per backend host of `config` that does not resolve. IP literals
 * need no lookup, each name is looked up once, and on a reload only names
 * new since `old` are (a DNS hiccup must not block every edit).
 */
export async function unresolvedBackendHosts(config: Config, old?: Config, lookup: HostLookup = (h) => dns.lookup(h)): Promise<string[]> {
  const problems: string[] = [];
  const known = new Set(Object.values(old?.upstreams ?? {}).flatMap((u) => u.servers.map((s) => s.host)));
  const hosts = new Map<string, string>();
  for (const up of Object.values(config.upstreams)) {
    for (const s of up.servers) if (isIP(s.host) === 0 && !known.has(s.host) && !hosts.has(s.host)) hosts.set(s.host, `${up.name}/${s.address}`);
  }
  await Promise.all(
    [...hosts].map(async ([host, id]) => {
      try {
        await lookup(host);
      } catch (err) {
        problems.push(`server ${id}: cannot resolve host "${host}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }),
  );
  return problems;
}
