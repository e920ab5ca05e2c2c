/**
 * The native routing fast path picks backends on the relay thread from tables
 * the TS side pushes (native/API.md, setRoute). These tests hold its picks
 * against the TypeScript balancers (src/proxy/select.ts + src/balancers/*):
 * ip_hash bit for bit over many addresses, and round_robin / least_conn /
 * ip_hash over real routed connections while the table changes between picks.
 * Skipped when the addon is not built.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { hashString32, IpHashBalancer } from '../../src/balancers/ip-hash.js';
import { createBalancer } from '../../src/balancers/registry.js';
import type { Candidate } from '../../src/balancers/types.js';
import type { BalanceAlgorithm } from '../../src/core/types.js';
import { loadNative, type NativeEngineHandle, type NativeRouteTable } from '../../src/proxy/native-binding.js';
import { selectBackend } from '../../src/proxy/select.js';
import type { RouteBackend, RouteUpstream } from '../../src/core/dataplane.js';
import { connect, listen, namedEcho } from '../helpers/net.js';
import { waitFor, waitUntil } from '../helpers/wait.js';

const native = loadNative();
const skip = native.ok ? false : `native engine not available: ${native.ok ? '' : native.reason}`;

interface TestExports {
  ipHashPick(clientIp: string, idHashes: number[], weights: number[]): number;
  hashString32(s: string, seed: number): number;
}
const testExports = (): TestExports => (native.ok ? (native.binding as unknown as { _test: TestExports })._test : (undefined as never));

/** Deterministic PRNG (xorshift32) so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function randomIp(r: () => number): string {
  const kind = r();
  const byte = (): number => Math.floor(r() * 256);
  if (kind < 0.5) return `${byte()}.${byte()}.${byte()}.${byte()}`;
  if (kind < 0.75) return `::ffff:${byte()}.${byte()}.${byte()}.${byte()}`;
  const hex = (): string => Math.floor(r() * 65536).toString(16);
  return `2001:db8:${hex()}:${hex()}::${hex()}`;
}

test('ip_hash: the C++ pick equals IpHashBalancer for hundreds of addresses and backend sets', { skip }, () => {
  const t = testExports();
  const r = rng(7);
  let compared = 0;
  for (let set = 0; set < 12; set++) {
    const n = 2 + (set % 5);
    const cands: Candidate[] = [];
    for (let i = 0; i < n; i++) cands.push({ id: `up${set}/10.1.${set}.${i}:${8000 + i}`, weight: 1 + Math.floor(r() * 5), active: 0 });
    const ts = new IpHashBalancer();
    const idHashes = cands.map((c) => hashString32(c.id, 0x9747b28c));
    for (const [i, c] of cands.entries()) assert.equal(t.hashString32(c.id, 0x9747b28c), idHashes[i]);
    for (let k = 0; k < 300; k++) {
      const ip = randomIp(r);
      const want = ts.pick(cands, { clientIp: ip });
      const got = t.ipHashPick(ip, idHashes, cands.map((c) => c.weight));
      assert.equal(cands[got]?.id, want?.id, `client ${ip}, set ${set}`);
      compared++;
    }
  }
  assert.equal(compared, 3600);
});

/* ---------- routed connections against the TS decision path ---------- */

interface Routed {
  connId: number;
  key: number;
}

/** A bare addon engine with one listener; records ACCEPT_ROUTED keys, CONNECTED and CLOSED ids. */
class Rig {
  readonly h: NativeEngineHandle;
  readonly routed = new Map<number, Routed>(); // by client port
  readonly plain = new Map<number, number>(); // client port -> connId, for clients that came as plain ACCEPT
  /** The highest connId seen: client ports are reused, so open() only takes an accept newer than its start. */
  lastConnId = 0;
  readonly connected = new Set<number>();
  readonly closed = new Set<number>();
  port = 0;

  constructor() {
    if (!native.ok) throw new Error('no addon');
    this.h = new native.binding.Engine((ev) => this.#onEvents(ev));
  }

  #onEvents(ev: unknown[]): void {
    for (let i = 0; i < ev.length; ) {
      const type = ev[i] as number;
      const size = [0, 7, 2, 3, 7, 3, 8][type]!;
      const connId = ev[i + 1] as number;
      if (type === 1 || type === 6) this.lastConnId = Math.max(this.lastConnId, connId);
      if (type === 1) {
        this.plain.set(ev[i + 4] as number, connId);
        this.h.reject(connId);
      }
      if (type === 6) this.routed.set(ev[i + 4] as number, { connId, key: ev[i + 7] as number });
      if (type === 2) this.connected.add(connId);
      if (type === 4) this.closed.add(connId);
      i += size;
    }
  }

  listen(): void {
    const r = this.h.listen(1, '127.0.0.1', 0, 128);
    assert.ok(r.ok);
    this.port = r.port;
    this.h.activate(1);
  }

  /** Opens a client from `from`; resolves with the socket and its routed key (-1: came as ACCEPT). */
  async open(from = '127.0.0.1'): Promise<{ sock: net.Socket; key: number; connId: number }> {
    const floor = this.lastConnId; // the engine has one thread here: connIds only grow
    const sock = await connect(this.port, '127.0.0.1', from);
    sock.on('error', () => {});
    const lp = sock.localPort!;
    const fresh = (): 'routed' | 'plain' | undefined =>
      (this.routed.get(lp)?.connId ?? 0) > floor ? 'routed' : (this.plain.get(lp) ?? 0) > floor ? 'plain' : undefined;
    await waitFor(() => fresh() !== undefined, { timeoutMs: 3000, what: 'accept event' });
    const r = fresh() === 'routed' ? this.routed.get(lp) : undefined;
    if (r === undefined) return { sock, key: -1, connId: 0 };
    await waitFor(() => this.connected.has(r.connId) || this.closed.has(r.connId), { timeoutMs: 3000, what: 'CONNECTED' });
    return { sock, key: r.key, connId: r.connId };
  }

  async close(c: { sock: net.Socket; connId: number }): Promise<void> {
    c.sock.destroy();
    if (c.connId !== 0) await waitFor(() => this.closed.has(c.connId), { timeoutMs: 3000, what: 'CLOSED' });
  }
}

interface Server {
  id: string;
  port: number;
  close: () => Promise<void>;
}

async function servers(n: number): Promise<Server[]> {
  const out: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = await listen(namedEcho(`S${i}`));
    out.push({ id: `u/127.0.0.1:${s.port}`, port: s.port, close: s.close });
  }
  return out;
}

function upstream(algo: BalanceAlgorithm, backends: RouteBackend[]): RouteUpstream {
  return { name: 'u', balance: algo, backends };
}

function nativeTable(up: RouteUpstream): NativeRouteTable {
  return {
    algo: up.balance,
    connectTimeoutMs: 2000,
    idleMs: 0,
    maxConnections: 0,
    backends: up.backends.map((b, key) => ({
      key,
      ip: b.host,
      port: b.port,
      weight: b.weight,
      maxConns: b.maxConns,
      backup: b.backup,
      usable: b.usable,
      idHash: hashString32(b.id, 0x9747b28c),
    })),
  };
}

/**
 * Drives `steps` random steps against one algorithm: each step may change the
 * table (usable, weight), then opens a client (held or closed at once) or
 * closes a held one. Every routed key must equal what selectBackend picks with
 * a TS balancer of the same kind and the same open counts.
 */
async function parity(algo: BalanceAlgorithm, seed: number, steps: number, opts: { hold: boolean; change?: number; sources?: string[] }): Promise<number> {
  const srv = await servers(4);
  const rig = new Rig();
  const held: { sock: net.Socket; key: number; connId: number }[] = [];
  try {
    rig.listen();
    const r = rng(seed);
    let backends: RouteBackend[] = srv.map((s, i) => ({
      id: s.id,
      host: '127.0.0.1',
      port: s.port,
      weight: 1 + (i % 3),
      maxConns: i === 1 ? 2 : 0,
      backup: i === 3,
      usable: true,
    }));
    const balancer = createBalancer(algo);
    let up = upstream(algo, backends);
    rig.h.setRoute(1, nativeTable(up));
    const active = new Map<string, number>();
    let compared = 0;
    for (let step = 0; step < steps; step++) {
      if (r() < (opts.change ?? 0.3)) {
        const i = Math.floor(r() * backends.length);
        backends = backends.map((b, j) => (j === i ? { ...b, usable: r() < 0.7 ? !b.usable : b.usable, weight: r() < 0.3 ? 1 + Math.floor(r() * 4) : b.weight } : b));
        up = upstream(algo, backends);
        rig.h.setRoute(1, nativeTable(up));
      }
      if (opts.hold && held.length > 0 && r() < 0.35) {
        const c = held.splice(Math.floor(r() * held.length), 1)[0]!;
        await rig.close(c);
        const id = backends[c.key]!.id;
        active.set(id, active.get(id)! - 1);
        continue;
      }
      const from = opts.sources?.[Math.floor(r() * opts.sources.length)] ?? '127.0.0.1';
      const want = selectBackend(up, balancer, from, undefined, active);
      const c = await rig.open(from);
      assert.equal(c.key === -1 ? undefined : backends[c.key]!.id, want?.id, `step ${step} (${algo}, seed ${seed})`);
      compared++;
      if (c.key >= 0 && opts.hold) {
        held.push(c);
        active.set(backends[c.key]!.id, (active.get(backends[c.key]!.id) ?? 0) + 1);
      } else {
        await rig.close(c);
      }
    }
    return compared;
  } finally {
    for (const c of held) c.sock.destroy();
    // Cleanup: let the engine see those closes before it stops (best effort, so a failure above stays the one reported).
    await waitUntil(() => held.every((c) => c.connId === 0 || rig.closed.has(c.connId)), { what: 'the held connections closed in the engine', timeoutMs: 3000 });
    rig.h.stop();
    await Promise.all(srv.map((s) => s.close()));
  }
}

test('round_robin over routed connections equals the TS balancer, tables changing between picks', { skip, timeout: 60_000 }, async () => {
  assert.ok((await parity('round_robin', 11, 120, { hold: false, change: 0.6 })) > 100);
});

test('least_conn with held connections, maxConns and a backup equals the TS balancer', { skip, timeout: 60_000 }, async () => {
  assert.ok((await parity('least_conn', 23, 90, { hold: true })) > 40);
});

test('round_robin with held connections (maxConns, backup) equals the TS balancer', { skip, timeout: 60_000 }, async () => {
  assert.ok((await parity('round_robin', 5, 80, { hold: true })) > 40);
});

test('ip_hash over routed connections from several client addresses equals the TS balancer', { skip, timeout: 60_000 }, async () => {
  const sources = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
  assert.ok((await parity('ip_hash', 3, 60, { hold: false, sources })) > 40);
});
