/**
 * Fault 7: crash safety of the state file. The real binary runs with a
 * stateFile and a control socket; the test hammers drain/disable/enable over
 * the socket protocol and SIGKILLs the process at a random moment, 10 rounds.
 * The file must always parse (or be absent), hold one of the states the
 * command sequence went through, never one older than the last acknowledged
 * command (a reply waits for the save), and after a restart the operator
 * states of that last completed save must be back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { request } from '../../src/control/client.js';
import { reservePort } from '../helpers/net.js';
import { waitUntil } from '../helpers/wait.js';
import { lo, rng, seedFromEnv, sleep, startProxy, tmpDir, writeConfig, type ProxyChild } from './helpers.js';

const HOST = lo(65);
const ROUNDS = 10;
type Admin = 'ready' | 'drain' | 'disabled';

/** Canonical text of a state: `id=admin` for every non-ready backend, sorted. */
function canon(m: ReadonlyMap<string, Admin>): string {
  return [...m].filter(([, a]) => a !== 'ready').map(([id, a]) => `${id}=${a}`).sort().join(',');
}

/** The state file's content as a state, or undefined when absent; throws if it does not parse. */
function readStateFile(file: string): Map<string, Admin> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as { version: number; backends: { backend: string; admin: Admin }[] };
  assert.equal(v.version, 1, 'state file version');
  assert.ok(Array.isArray(v.backends), 'state file has a backends list');
  return new Map(v.backends.map((b) => [b.backend, b.admin]));
}

/** What the running instance reports, via `status` on the control socket. */
async function liveState(sock: string): Promise<Map<string, Admin>> {
  const r = await request(sock, { cmd: 'status' }, 5000);
  assert.ok(r.ok, `status failed: ${JSON.stringify(r)}`);
  const snap = r.data as { upstreams: { backends: { id: string; state: string }[] }[] };
  const out = new Map<string, Admin>();
  for (const u of snap.upstreams) for (const b of u.backends) out.set(b.id, b.state === 'DRAINING' ? 'drain' : b.state === 'DISABLED' ? 'disabled' : 'ready');
  return out;
}

test(`state file: SIGKILL at a random moment while drain/enable are hammered, ${ROUNDS} rounds; the file always parses and its states come back`, { timeout: 120_000 }, async (t) => {
  const seed = seedFromEnv();
  const rand = rng(seed);
  const dir = tmpDir('state');
  const port = await reservePort(HOST);
  const ports = await Promise.all([0, 1, 2, 3].map(() => reservePort(HOST)));
  const ids = ports.map((p) => `u/${HOST}:${p}`);
  // Backends without checks start UP and nothing connects to them: only operator states change.
  const file = writeConfig(
    dir,
    `{
    listeners: [{ listen: "${HOST}:${port}", upstream: "u" }],
    upstreams: { u: { servers: [${ports.map((p) => `"${HOST}:${p}"`).join(', ')}] } },
    log: { access: null },
    control: { socket: "tcplb.sock" },
    stateFile: "tcplb.state",
  }`,
  );
  const sockPath = path.join(dir, 'tcplb.sock');
  const statePath = path.join(dir, 'tcplb.state');
  let px: ProxyChild | undefined;
  t.after(() => px?.kill());

  const figures: string[] = [];
  let expected: Map<string, Admin> | undefined; // the state the next start must show (file content at the kill)
  let totalCmds = 0;
  let totalAcked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    px = await startProxy(file);
    // 1. The restart brings back exactly the file's states.
    const back = await liveState(sockPath);
    assert.equal(canon(back), canon(expected ?? new Map()), `round ${round}: after restart the states are not those of the last save`);

    // 2. Hammer: commands pipelined on one connection (<= 16 in flight); every state the sequence passes through is recorded.
    const states = [canon(back)];
    const model = new Map(back);
    const sock = net.connect(sockPath);
    await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
    sock.on('error', () => {});
    let sent = 0;
    let acked = 0;
    let inflight = 0;
    let closed = false;
    let buf = '';
    const pump = (): void => {
      while (!closed && inflight < 16) {
        const id = ids[Math.floor(rand() * ids.length)]!;
        const cmd = (['drain', 'disable', 'enable'] as const)[Math.floor(rand() * 3)]!;
        model.set(id, cmd === 'drain' ? 'drain' : cmd === 'disable' ? 'disabled' : 'ready');
        states.push(canon(model));
        sock.write(`${JSON.stringify({ cmd, backend: id, id: ++sent })}\n`);
        inflight++;
      }
    };
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const reply = JSON.parse(buf.slice(0, i)) as { ok: boolean; error?: string };
        buf = buf.slice(i + 1);
        assert.ok(reply.ok, `command failed: ${reply.error}`);
        acked++;
        inflight--;
      }
      pump();
    });
    sock.on('close', () => (closed = true));
    pump();
    const killAfter = 20 + Math.floor(rand() * 400);
    await sleep(killAfter); // the scenario: a SIGKILL at a random moment of the command stream
    px.child.kill('SIGKILL');
    await px.exited;
    closed = true;
    sock.destroy();
    totalCmds += sent;
    totalAcked += acked;

    // 3. The file parses (or is absent) and holds one of the states the sequence went through.
    const saved = readStateFile(statePath);
    const savedCanon = canon(saved ?? new Map());
    const at = states.lastIndexOf(savedCanon);
    const tmps = fs.readdirSync(dir).filter((n) => n.startsWith('tcplb.state.tmp-'));
    assert.ok(saved === undefined || at >= 0, `round ${round}: the state file holds a state the commands never produced: ${savedCanon}`);
    // A reply means "on disk": the file is at least as new as the last acknowledged command (states[k] follows command k).
    assert.ok(acked === 0 || at >= acked, `round ${round}: command ${acked} was acknowledged but the file holds state #${at}`);
    figures.push(`r${round}: kill at ${killAfter} ms after ${sent} cmds (${acked} acked), file = state #${at}/${states.length - 1}${tmps.length > 0 ? `, ${tmps.length} tmp left` : ''}`);
    if (saved === undefined) assert.equal(round, 0, 'the state file vanished after it had been written');
    expected = saved ?? new Map();
  }
  // The last round's file must come back too.
  px = await startProxy(file);
  const back = await liveState(sockPath);
  assert.equal(canon(back), canon(expected ?? new Map()), 'after the last restart the states are not those of the last save');
  // A restart that reapplies states saves once, which sweeps dead writers' tmp files (a figure, not an assertion: up to 1 s).
  const tmps = (): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('tcplb.state.tmp-'));
  await waitUntil(() => tmps().length, { what: 'tmp files of killed writers swept', timeoutMs: 1000, until: (n) => n === 0 });
  const tmpsLeft = tmps();
  console.log(`state file crash safety (seed ${seed}): ${ROUNDS} SIGKILLs, ${totalCmds} commands sent, ${totalAcked} acknowledged; the file parsed every time and every restart showed its states; tmp files of killed writers left after the last restart: ${tmpsLeft.length}`);
  for (const f of figures) console.log(`  ${f}`);
});
