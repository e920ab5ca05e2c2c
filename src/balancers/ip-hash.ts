/**
 * `ip_hash`: sticky clients by weighted rendezvous (highest random weight)
 * hashing over the whole client address, as gobetween's iphash1.go does it.
 *
 * Every (client, backend) pair gets a pseudo-random score and the client goes
 * to the candidate with the highest one. Removing a backend only moves the
 * clients whose top score was that backend (everyone else's maximum is
 * unchanged), and when it returns the scores are the same numbers again, so
 * the original mapping comes back exactly. `hash % n` (HAProxy's lb_map.c)
 * would instead move almost every client whenever the set changes.
 *
 * Weighting uses `score = -weight / ln(u)` with `u` uniform in (0,1)
 * (Schindelhauer & Schomaker's weighted HRW): the chance that a backend has
 * the top score is exactly `weight / Σweight`.
 *
 * It runs once per connection, so it hashes the address once per pick,
 * caches each backend id's hash, and then does one 32-bit mix plus one `log`
 * per candidate. No BigInt, no allocation on the hot path.
 */
import type { BackendId } from '../core/types.js';
import type { Balancer, Candidate, PickContext } from './types.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const TWO_POW_32 = 4294967296;
/** Id hashes kept per balancer; far above any real upstream, it only stops unbounded growth. */
const ID_CACHE_MAX = 1024;

/** MurmurHash3 x86_32 finaliser: full avalanche of a 32-bit value. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** One MurmurHash3 block step: mix 32-bit `k` into state `h`. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * 32-bit MurmurHash3-style hash of a string's UTF-16 code units, two units
 * per block (addresses and ids are ASCII, so nothing is lost). Exported for tests.
 */
export function hashString32(s: string, seed = 0): number {
  let h = seed | 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    h = mixBlock(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  }
  if (i < n) h = mixBlock(h, s.charCodeAt(i));
  return fmix32(h ^ n);
}

/**
 * The address a client is hashed by: `::ffff:1.2.3.4` (an IPv4 client on a
 * dual-stack listener) becomes `1.2.3.4`, so a client keeps its backend
 * whichever listener family it arrived on. Node already prints IPv6 in
 * canonical compressed lower-case form, so no further normalising is needed.
 */
export function normalizeClientIp(ip: string): string {
  if (ip.length > 7 && ip.charCodeAt(0) === 58 /* : */ && ip.includes('.')) {
    const lower = ip.slice(0, 7).toLowerCase();
    if (lower === '::ffff:') return ip.slice(7);
  }
  return ip;
}

/** Seed of the backend id hashes (the native engine uses the same one). */
export const ID_HASH_SEED = 0x9747b28c;

/**
 * The weighted rendezvous score of one backend for one client: the address is
 * a second MurmurHash3 block on top of the id's hash used as seed, so each
 * backend's scores are an independent-looking permutation of the clients (a
 * plain `ipHash ^ idHash` would correlate them).
 */
function score(idHash: number, ipHash: number, weight: number): number {
  const h = fmix32(mixBlock(idHash, ipHash));
  // (h + 0.5) / 2^32 is strictly inside (0,1): ln(u) is finite and negative.
  const u = (h + 0.5) / TWO_POW_32;
  return -weight / Math.log(u);
}

/**
 * Every backend with its score for `clientIp`, best first (ties by id): the
 * order in which ip_hash tries them as better ones become unusable. It
 * depends only on the client address and the backends' ids (upstream and
 * configured address) and weights, so every instance running one config
 * ranks alike (`ctl explain`).
 */
export function ipHashRanking<C extends { readonly id: BackendId; readonly weight: number }>(backends: readonly C[], clientIp: string): Array<C & { score: number }> {
  const ipHash = hashString32(normalizeClientIp(clientIp));
  return backends
    .map((b) => ({ ...b, score: score(hashString32(b.id, ID_HASH_SEED), ipHash, b.weight) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Balancer for `balance: "ip_hash"`. Stateless apart from a cache of id hashes. */
export class IpHashBalancer implements Balancer {
  readonly #idHashes = new Map<BackendId, number>();

  /** The candidate with the highest weighted rendezvous score for `ctx.clientIp`. */
  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return candidates[0];
    const ipHash = hashString32(normalizeClientIp(ctx.clientIp));
    let best: Candidate | undefined;
    let bestScore = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      const s = score(this.#idHash(c.id), ipHash, c.weight);
      // Exact ties are broken by id, never by list order, so the answer does
      // not depend on how the caller ordered the candidates.
      // `best === undefined` first: a NaN score (bad weight) still yields a pick.
      if (best === undefined || s > bestScore || (s === bestScore && c.id < best.id)) {
        best = c;
        bestScore = s;
      }
    }
    return best;
  }

  #idHash(id: BackendId): number {
    let h = this.#idHashes.get(id);
    if (h === undefined) {
      // Ids only churn on reload; a full reset is simpler than LRU and just as bounded.
      if (this.#idHashes.size >= ID_CACHE_MAX) this.#idHashes.clear();
      h = hashString32(id, ID_HASH_SEED);
      this.#idHashes.set(id, h);
    }
    return h;
  }
}

/** Factory registered as `ip_hash`. */
export function createIpHash(): Balancer {
  return new IpHashBalancer();
}
