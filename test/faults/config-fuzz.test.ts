/**
 * Fault 9: config fuzzing. 10,000 seeded random mutations of valid config
 * texts (deleted/inserted characters, swapped value types, huge numbers,
 * 64-deep and a few far deeper nestings, unicode keys, a 10 MB string in a
 * few cases, truncations, duplicated slices) go to `loadConfigText`. It must
 * never throw or hang (each case under ~1 s; a worker thread with a watchdog
 * catches a hang), and every failure must carry issues at line >= 1,
 * column >= 1. A few invalid mutants then go through a running app's reload
 * and must leave `app.runtime.config` untouched (the same object).
 *
 * Replay a run with FAULTS_SEED=<seed printed by the test>.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { loadConfigText } from '../../src/config/load.js';
import { ROOT } from '../helpers/cli.js';
import { waitUntil } from '../helpers/wait.js';
import { configMutant as mutant, cpuSeconds, deadline, lo, seedFromEnv, startProxy, tmpDir, writeConfig } from './helpers.js';

const CASES = 10_000;
// A 10 MB string case takes ~0.3 s on an idle 2-core host and ~1 s on a busy
// one; a hang (the trailing-backslash bug this suite once found) never ends.
const SLOW_MS = 2500;
const HANG_MS = 5000;

/** What one case tells us; `problem` is set when an invariant broke. */
interface CaseResult {
  ok: boolean;
  ms: number;
  problem?: string;
  internal?: string;
}

function check(text: string): CaseResult {
  const t0 = performance.now();
  let res;
  try {
    res = loadConfigText(text, '/tmp/fuzz/config.json5');
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, problem: `threw: ${(e as Error).stack ?? String(e)}` };
  }
  const ms = performance.now() - t0;
  if (res.ok) return { ok: true, ms };
  if (!Array.isArray(res.issues) || res.issues.length === 0) return { ok: false, ms, problem: 'failed without issues' };
  const lines = text.split(/\r\n|\r|\n|\u2028|\u2029/).length;
  for (const is of res.issues) {
    if (!Number.isInteger(is.line) || !Number.isInteger(is.column) || is.line < 1 || is.column < 1) {
      return { ok: false, ms, problem: `issue at line ${is.line} column ${is.column}: ${is.message.slice(0, 120)}` };
    }
    if (is.line > lines + 1) return { ok: false, ms, problem: `issue at line ${is.line} of a ${lines}-line text: ${is.message.slice(0, 120)}` };
    if (typeof is.message !== 'string' || is.message === '') return { ok: false, ms, problem: 'issue without a message' };
    // U+FFFF is what a tokenizer reads past the end of the text: the operator should read "end of file".
    if (is.message.includes('\uffff') && !text.includes('\uffff')) return { ok: false, ms, problem: `message names a character past the end of the text: ${is.line}:${is.column}: ${is.message.slice(0, 120)}` };
  }
  const internal = res.issues.find((is) => /internal error/.test(is.message));
  return { ok: false, ms, ...(internal ? { internal: internal.message.slice(0, 200) } : {}) };
}

/* ---------------------------------------------------------------- cases */

/** Texts too long to print in full. */
const big = (n: number, c = 'x'): string => c.repeat(n);

/**
 * Hand-made edge cases, run before the random ones (so what they find is
 * found on every run): empty and one-character texts, every base cut right
 * after each of its backslashes (a string ending in "\" at end of file),
 * huge nestings, a 10 MB comment and key, numbers past double range.
 */
function edgeCases(bases: readonly string[]): { text: string; what: string }[] {
  const out: { text: string; what: string }[] = [];
  for (const t of ['', ' ', '\ufeff', '{', '}', '[', '{}', 'null', '"\\', "'\\", '{a: "x\\', "{a: 'x\\", '{listeners: [{listen: "\\', '{a:1,a:2}', '\u0000', '"\ud800"', '{\\u0061: 1}', '{a: 1e999999}', '{a: -}', '{a: 0x}', '// only a comment \\', '/* unterminated']) {
    out.push({ text: t, what: `edge ${JSON.stringify(t)}` });
  }
  bases.forEach((b, k) => {
    const i = b.indexOf('\\');
    if (i >= 0) out.push({ text: b.slice(0, i + 1), what: `base ${k} cut after its first backslash (offset ${i})` });
  });
  out.push({ text: '['.repeat(100_000), what: 'edge 100k "["' });
  out.push({ text: `{a:${'['.repeat(100_000)}1${']'.repeat(100_000)}}`, what: 'edge 100k nested arrays' });
  out.push({ text: `${'{a:'.repeat(20_000)}1${'}'.repeat(20_000)}`, what: 'edge 20k nested objects' });
  out.push({ text: `/*${big(10 * 1024 * 1024)}`, what: 'edge 10 MB unterminated comment' });
  out.push({ text: `{"${big(10 * 1024 * 1024)}": 1}`, what: 'edge 10 MB key' });
  out.push({ text: `${big(10 * 1024 * 1024, ' ')}{}`, what: 'edge 10 MB of blanks' });
  return out;
}

/** Case `i`: the edge cases first, then the seeded random mutants. */
function caseAt(bases: readonly string[], edges: readonly { text: string; what: string }[], seed: number, i: number): { text: string; what: string } {
  return i < edges.length ? edges[i]! : mutant(bases, seed, i - edges.length);
}

/* ---------------------------------------------------------------- worker */

/** Partial results a worker posts every BATCH cases (and at its end). */
interface Partial {
  upTo: number; // last case index covered
  valid: number;
  invalid: number;
  ms: number;
  slowest: { i: number; ms: number; what: string }[];
  problems: { i: number; what: string; problem: string }[];
  internals: { i: number; what: string; message: string }[];
  big: { i: number; ms: number }[];
  done: boolean;
}

const BATCH = 250;

function runWorker(): void {
  const { bases, seed, progress, from, skip, total } = workerData as { bases: string[]; seed: number; progress: SharedArrayBuffer; from: number; skip: number[]; total: number };
  const cur = new Float64Array(progress); // [case index, started at (epoch ms)]
  const edges = edgeCases(bases);
  const fresh = (): Partial => ({ upTo: from - 1, valid: 0, invalid: 0, ms: 0, slowest: [], problems: [], internals: [], big: [], done: false });
  let p = fresh();
  for (let i = from; i < total; i++) {
    if (skip.includes(i)) continue;
    const { text, what } = caseAt(bases, edges, seed, i);
    cur[0] = i;
    cur[1] = Date.now();
    const r = check(text);
    p.ms += r.ms;
    if (r.ok) p.valid++;
    else p.invalid++;
    if (r.problem !== undefined) p.problems.push({ i, what: what.slice(0, 100), problem: r.problem });
    if (r.internal !== undefined) p.internals.push({ i, what: what.slice(0, 100), message: r.internal });
    if (text.length >= 10 * 1024 * 1024) p.big.push({ i, ms: r.ms });
    p.slowest.push({ i, ms: r.ms, what: what.slice(0, 80) });
    if (p.slowest.length > 20) {
      p.slowest.sort((a, b) => b.ms - a.ms);
      p.slowest.length = 5;
    }
    if ((i + 1) % BATCH === 0) {
      p.upTo = i;
      parentPort!.postMessage(p);
      p = { ...fresh(), upTo: i };
    }
  }
  cur[0] = -1;
  p.upTo = total - 1;
  p.done = true;
  parentPort!.postMessage(p);
}

function bases(): string[] {
  const dir = path.join(ROOT, 'test/fixtures/configs');
  return ['valid-full.json5', 'design-example.json5', 'minimal.json5'].map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

/**
 * Run every case in worker threads. A case that runs longer than HANG_MS is
 * a hang: the worker is terminated, the case recorded, and a new worker goes
 * on from the last posted batch, skipping the hung cases.
 */
async function fuzz(seed: number): Promise<{ all: Partial; hangs: { i: number; what: string }[]; total: number }> {
  const b = bases();
  const edges = edgeCases(b);
  const total = edges.length + CASES;
  const all: Partial = { upTo: -1, valid: 0, invalid: 0, ms: 0, slowest: [], problems: [], internals: [], big: [], done: false };
  const hangs: { i: number; what: string }[] = [];
  const progress = new SharedArrayBuffer(16);
  const cur = new Float64Array(progress);
  while (!all.done) {
    cur[0] = -2;
    const from = all.upTo + 1;
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { fuzz: true, bases: b, seed, progress, from, skip: hangs.map((h) => h.i), total } });
    await new Promise<void>((resolve, reject) => {
      const dog = setInterval(() => {
        if (cur[0]! >= 0 && Date.now() - cur[1]! > HANG_MS) {
          const i = cur[0]!;
          clearInterval(dog);
          hangs.push({ i, what: caseAt(b, edges, seed, i).what.slice(0, 100) });
          void worker.terminate().then(() => resolve());
        }
      }, 100);
      worker.on('message', (p: Partial) => {
        all.upTo = p.upTo;
        all.valid += p.valid;
        all.invalid += p.invalid;
        all.ms += p.ms;
        all.problems.push(...p.problems);
        all.internals.push(...p.internals);
        all.big.push(...p.big);
        all.slowest = [...all.slowest, ...p.slowest].sort((x, y) => y.ms - x.ms).slice(0, 5);
        if (p.done) {
          all.done = true;
          clearInterval(dog);
          void worker.terminate().then(() => resolve());
        }
      });
      worker.once('error', (e) => {
        clearInterval(dog);
        reject(e);
      });
    });
    if (hangs.length > 20) throw new Error(`more than 20 hangs: ${JSON.stringify(hangs.slice(0, 5))}`);
  }
  return { all, hangs, total };
}

/** Worker side of screen(): validate each text from `from` on, posting `{i, ok}`. */
function runScreenWorker(): void {
  const { texts, from, progress } = workerData as { texts: string[]; from: number; progress: SharedArrayBuffer };
  const cur = new Float64Array(progress);
  for (let i = from; i < texts.length; i++) {
    cur[0] = i;
    cur[1] = Date.now();
    parentPort!.postMessage({ i, ok: loadConfigText(texts[i]!, '/tmp/fuzz/config.json5').ok });
  }
  cur[0] = -1;
  parentPort!.postMessage({ done: true });
}

/**
 * Validate texts in a worker, so one that makes loadConfigText hang cannot
 * freeze the test process: 'valid', 'invalid' or 'hang' for each.
 */
async function screen(texts: string[]): Promise<('valid' | 'invalid' | 'hang')[]> {
  const out: ('valid' | 'invalid' | 'hang')[] = [];
  const progress = new SharedArrayBuffer(16);
  const cur = new Float64Array(progress);
  while (out.length < texts.length) {
    cur[0] = -2;
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { screen: true, texts, from: out.length, progress } });
    await new Promise<void>((resolve, reject) => {
      const dog = setInterval(() => {
        if (cur[0]! >= 0 && Date.now() - cur[1]! > HANG_MS) {
          clearInterval(dog);
          out.push('hang');
          void worker.terminate().then(() => resolve());
        }
      }, 100);
      worker.on('message', (m: { i?: number; ok?: boolean; done?: boolean }) => {
        if (m.done) {
          clearInterval(dog);
          void worker.terminate().then(() => resolve());
        } else out[m.i!] = m.ok ? 'valid' : 'invalid';
      });
      worker.once('error', (e) => {
        clearInterval(dog);
        reject(e);
      });
    });
  }
  return out;
}

const role = isMainThread ? undefined : (workerData as { fuzz?: boolean; screen?: boolean } | null);
if (role?.fuzz === true) {
  runWorker();
} else if (role?.screen === true) {
  runScreenWorker();
} else {
  test(`config fuzzing: ${CASES} mutations (plus edge cases) to loadConfigText never throw or hang, every failure has line/column >= 1`, { timeout: 240_000 }, async () => {
    const seed = seedFromEnv();
    const t0 = Date.now();
    const { all, hangs, total } = await fuzz(seed);
    const wall = Date.now() - t0;
    console.log(
      `config fuzz (seed ${seed}): ${total} cases (${total - CASES} edge, ${CASES} random) in ${(wall / 1000).toFixed(1)} s (${all.ms.toFixed(0)} ms in loadConfigText), ${all.valid} still valid, ${all.invalid} refused; ` +
        `${hangs.length} hangs (> ${HANG_MS / 1000} s), ${all.problems.length} broken invariants, ${all.internals.length} internal errors; ` +
        `slowest ${all.slowest.map((x) => `#${x.i} ${x.ms.toFixed(0)} ms (${x.what})`).join('; ')}; 10 MB cases ${all.big.map((x) => `${x.ms.toFixed(0)} ms`).join(', ')}`,
    );
    for (const h of hangs.slice(0, 8)) console.log(`  HANG #${h.i}: ${h.what}`);
    const kinds = new Map<string, number>();
    for (const p of all.problems) kinds.set(p.problem.replace(/:.*$/s, ''), (kinds.get(p.problem.replace(/:.*$/s, '')) ?? 0) + 1);
    if (kinds.size > 0) console.log(`  broken invariants by kind: ${[...kinds].map(([k, n]) => `${k} x${n}`).join('; ')}`);
    for (const p of all.problems.slice(0, 5)) console.log(`  problem #${p.i} (${p.what}): ${p.problem.slice(0, 300)}`);
    for (const p of all.internals.slice(0, 5)) console.log(`  internal error #${p.i} (${p.what}): ${p.message}`);
    assert.deepEqual(hangs, [], 'loadConfigText hung (never returned) on these inputs');
    assert.deepEqual(all.problems, [], 'invariants broken');
    assert.deepEqual(all.internals, [], 'loadConfigText hit internal errors (caught exceptions) on some inputs');
    assert.ok(all.slowest[0]!.ms < SLOW_MS, `case #${all.slowest[0]!.i} took ${all.slowest[0]!.ms.toFixed(0)} ms (${all.slowest[0]!.what})`);
  });

  test('invalid mutants through a running app\'s reload leave app.runtime.config untouched', { timeout: 60_000 }, async (t) => {
    const { startTestApp } = await import('../helpers/app.js');
    const { reservePort, greetingVia, listen, namedEcho } = await import('../helpers/net.js');
    const host = lo(67);
    const be = await listen(namedEcho('A'), host);
    t.after(() => be.close());
    const port = await reservePort(host);
    const good = `{
      listeners: [{ name: "main", listen: "${host}:${port}", upstream: "u", idleTimeout: "1m", allow: ["127.0.0.0/8"] }],
      upstreams: { u: { balance: "round_robin", servers: [{ address: "${host}:${be.port}", weight: 2 }, "${host}:1"],
        check: { type: "tcp", interval: "10s", rise: 2, fall: 3 } } },
      log: { access: null },
      shutdownTimeout: "1s",
    }`;
    const app = await startTestApp(good);
    t.after(() => {
      app.stopNow();
      fs.rmSync(path.dirname(app.file), { recursive: true, force: true }); // it held a 10 MB config
    });
    const before = app.runtime.config;
    const seed = seedFromEnv();
    const candidates = [{ text: good.replace('"1m"', JSON.stringify('x'.repeat(10 * 1024 * 1024))), what: '10MB string' }];
    for (let i = 1; i < 60; i++) candidates.push(mutant([good], seed, i));
    // Screened in a worker first: a text that hangs the loader would freeze this process (see the test below).
    const verdicts = await screen(candidates.map((c) => c.text));
    const hung = candidates.filter((_, i) => verdicts[i] === 'hang').map((c) => c.what);
    let fed = 0;
    const messages: string[] = [];
    for (const [i, { text, what }] of candidates.entries()) {
      if (fed >= 25) break;
      if (verdicts[i] !== 'invalid') continue; // a still-valid mutant would rightly change the config
      fs.writeFileSync(app.file, text);
      const r = await app.actions.reload('ctl');
      fed++;
      assert.equal(r.ok, false, `reload of an invalid mutant (${what}) was accepted`);
      assert.equal(app.runtime.config, before, `app.runtime.config replaced by a refused reload (${what})`);
      if (messages.length < 3) messages.push(r.message.slice(0, 140));
    }
    assert.equal(await greetingVia(port, host), 'A', 'the app no longer serves after the refused reloads');
    console.log(
      `reload fuzz: ${fed} invalid mutants (of ${candidates.length} screened, ${hung.length} hanging the loader and left out${hung.length > 0 ? `: ${hung.join('; ')}` : ''}) ` +
        `fed through app.actions.reload: all refused, config object unchanged, still serving; e.g. ${messages.join(' | ')}`,
    );
    assert.ok(fed >= 10, `only ${fed} invalid mutants`);
  });
}

if (isMainThread) {
  test('a config saved mid-edit, ending inside a string after a backslash, is refused by a running proxy, not a freeze', { timeout: 30_000 }, async (t) => {
    const { reservePort, greetingVia, listen, namedEcho } = await import('../helpers/net.js');
    const host = lo(68);
    const be = await listen(namedEcho('A'), host);
    t.after(() => be.close());
    const port = await reservePort(host);
    const good = `{
      listeners: [{ listen: "${host}:${port}", upstream: "u" }],
      upstreams: { u: { servers: ["${host}:${be.port}"] } },
      log: { access: null },
    }`;
    const file = writeConfig(tmpDir('midedit'), good);
    const px = await startProxy(file);
    t.after(() => px.kill());
    assert.equal(await greetingVia(port, host), 'A');
    // An editor saving while the operator types `send: "GET / HTTP/1.0\r\n` (the watcher and SIGHUP both reload).
    fs.writeFileSync(file, `{\n  listeners: [{ listen: "${host}:${port}", upstream: "u", name: "a\\`);
    px.child.kill('SIGHUP');
    // Up to 1.5 s for the refusal; a loader that loops forever never logs one, and the checks below say so.
    await waitUntil(() => /reload refused/.test(px.stderr()), { what: 'the refusal of the mid-edit file', timeoutMs: 1500 });
    const cpu0 = cpuSeconds(px.pid);
    const t0 = Date.now();
    const served = await Promise.race([greetingVia(port, host).then((g) => g === 'A', () => false), deadline(2000).then(() => false)]);
    const ms = Date.now() - t0;
    const cpu = (cpuSeconds(px.pid) - cpu0) / Math.max(0.001, ms / 1000);
    const refused = /reload refused/.test(px.stderr());
    console.log(`mid-edit save (string ending in a backslash at EOF): proxy ${served ? `still served in ${ms} ms` : `did NOT serve within 2 s, CPU ${(cpu * 100).toFixed(0)}%`}; reload ${refused ? 'refused and logged' : 'never answered'}`);
    assert.ok(served, `the proxy stopped serving after a reload of a config ending in a backslash inside a string (CPU ${(cpu * 100).toFixed(0)}%: the loader loops forever)`);
    assert.ok(refused, 'no "reload refused" line for the bad file');
  });
}
