/**
 * Listen host names (`listen: "localhost:993"`, `metrics.listen`) resolved
 * once, when the config file is loaded (at start, at each reload and by
 * --check), so every engine binds the same IP address and the clash check
 * compares what will really be bound. The native engine binds numeric
 * addresses only; letting each engine resolve on its own made the engine
 * choice decide whether a valid config started.
 */
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Ctx } from './readers.js';
import type { Address } from './schema.js';
import type { Endpoint } from './validate.js';
import { quote } from './suggest.js';

/** A lookup that takes longer is reported as failed: --check and a reload must not hang on DNS. */
export const RESOLVE_TIMEOUT_MS = 5000;

export type Lookup = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

const systemLookup: Lookup = (host) => dns.lookup(host, { all: true, verbatim: true });

/**
 * The address a listen host name binds: its first IPv4 address if it has
 * one, else its first IPv6 address. IPv4 first because `localhost` has both
 * on most hosts and clients of a TCP proxy (and its health checks, and
 * other proxies in front) reach 127.0.0.1 everywhere; ::1 is missing where
 * IPv6 is disabled.
 */
export function pickAddress(list: ReadonlyArray<{ address: string; family: number }>): string | undefined {
  return (list.find((a) => a.family === 4) ?? list.find((a) => a.family === 6))?.address;
}

async function resolveOne(host: string, lookup: Lookup, timeoutMs: number): Promise<string | Error> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Error>((r) => (timer = setTimeout(() => r(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)));
  try {
    const got = await Promise.race([lookup(host).then((l) => pickAddress(l) ?? new Error('no address')), late]);
    return got;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return new Error(e.code ?? e.message);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolve the host names among `endpoints` (IP literals and "all
 * interfaces" need nothing; each name is looked up once). A name that does
 * not resolve is an issue at its position.
 */
export async function resolveListenHosts(endpoints: readonly Endpoint[], ctx: Ctx, lookup: Lookup = systemLookup, timeoutMs = RESOLVE_TIMEOUT_MS): Promise<Map<Address, string>> {
  const names = new Set<string>();
  for (const e of endpoints) if (e.addr.host !== '' && isIP(e.addr.host) === 0) names.add(e.addr.host);
  const answers = new Map<string, string | Error>();
  await Promise.all([...names].map(async (n) => answers.set(n, await resolveOne(n, lookup, timeoutMs))));
  const out = new Map<Address, string>();
  for (const e of endpoints) {
    const a = answers.get(e.addr.host);
    if (a === undefined) continue;
    if (typeof a === 'string') out.set(e.addr, a);
    else ctx.error(e.addr.pos, e.path, `cannot resolve host ${quote(e.addr.host)} of ${quote(e.addr.written)} (${a.message})`);
  }
  return out;
}
