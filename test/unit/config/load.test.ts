/**
 * loadConfigText / loadConfigFile: defaults, path resolution, freezing,
 * fixtures, read errors, and "never throws" on hostile input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { closeSync, constants as fsConstants, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import JSON5 from 'json5';
import { loadConfigFile, loadConfigText } from '../../../src/config/load.js';
import { formatIssue, type Config, type LoadResult } from '../../../src/core/config.js';

/** Fixtures live in the source tree; tests run from dist/test/unit/config. */
const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/configs/', import.meta.url));

function ok(r: LoadResult): Config {
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  return r.config;
}

const MINIMAL = '{ listeners: [{ listen: 1143, upstream: "imap" }], upstreams: { imap: { servers: ["127.0.0.1:143"] } } }';

test('defaults: a minimal config is fully defaulted', () => {
  const c = ok(loadConfigText(MINIMAL, '/srv/tcplb/config.json5'));
  assert.deepEqual(c, {
    file: '/srv/tcplb/config.json5',
    listeners: [{
      name: 'imap', listen: { host: '', port: 1143 }, listenText: '*:1143', upstream: 'imap',
      connectTimeoutMs: 5000, idleTimeoutMs: 600_000, proxyProtocol: false, maxConnections: 10_000, maxConnectionsPerClient: 0,
      allow: [], deny: [],
    }],
    upstreams: {
      imap: {
        name: 'imap', balance: 'round_robin', onMarkedDown: 'keep',
        servers: [{ address: '127.0.0.1:143', host: '127.0.0.1', port: 143, weight: 1, maxFails: 1, failTimeoutMs: 10_000, backup: false, down: false, maxConns: 0 }],
      },
    },
    log: { access: '-', format: 'text', level: 'info' },
    control: { socket: null },
    metrics: { listen: null },
    stateFile: null,
    shutdownTimeoutMs: 30_000,
    health: { require: null },
    leaveDelayMs: 0,
    instance: c.instance,
    workers: 1,
    engine: 'auto',
  });
  assert.match(c.instance, /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'instance defaults to the host name, as a valid name');
  assert.equal('check' in c.upstreams.imap!, false, 'no check key without a check section');
});

test('defaults: check keys', () => {
  const text = '{ listeners: [{ listen: 80, upstream: "w" }], upstreams: { w: { servers: ["h:80"], check: { type: "http" } } } }';
  assert.deepEqual(ok(loadConfigText(text, 'c.json5')).upstreams.w!.check, {
    type: 'http', intervalMs: 5000, rise: 2, fall: 5, timeoutMs: 2000, tls: false, servername: '', verify: false, port: 0,
    send: 'GET / HTTP/1.0\r\n\r\n', expect: ['2xx', '3xx'], proxyProtocol: false,
  });
});

test('the DESIGN.md example validates', async () => {
  const c = ok(await loadConfigFile(join(FIXTURES, 'design-example.json5')));
  assert.equal(c.listeners[0]!.listenText, '0.0.0.0:993');
  assert.equal(c.upstreams.imaps!.check!.type, 'imap');
  assert.equal(c.upstreams.imaps!.check!.tls, true);
});

test('valid-full.json5: every key is read', async () => {
  const path = join(FIXTURES, 'valid-full.json5');
  const c = ok(await loadConfigFile(path));
  assert.equal(c.file, path);
  const [pub, web, smtp] = c.listeners;
  assert.deepEqual(pub, {
    name: 'imaps-public', listen: { host: '::1', port: 9993 }, listenText: '[::1]:9993', upstream: 'imaps',
    connectTimeoutMs: 1500, idleTimeoutMs: 120_000, proxyProtocol: 'v2', maxConnections: 500, maxConnectionsPerClient: 20,
    allow: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1'], deny: ['10.66.0.0/16'],
  });
  assert.equal(web!.name, 'web', 'name defaults to the upstream');
  assert.deepEqual(web!.listen, { host: '', port: 8080 });
  assert.equal(smtp!.proxyProtocol, 'v1');

  const imaps = c.upstreams.imaps!;
  assert.equal(imaps.balance, 'ip_hash');
  assert.equal(imaps.onMarkedDown, 'shutdown');
  assert.deepEqual(imaps.servers.map((s) => s.address), ['mail2.example.net:993', '[2001:db8::3]:993', '10.0.0.4:993', 'mail5.example.net:993']);
  assert.deepEqual(imaps.servers[0], {
    address: 'mail2.example.net:993', host: 'mail2.example.net', port: 993, weight: 3, maxFails: 0, failTimeoutMs: 30_000,
    backup: false, down: false, maxConns: 100,
  });
  assert.equal(imaps.servers[1]!.host, '2001:db8::3');
  assert.equal(imaps.servers[1]!.backup, true);
  assert.equal(imaps.servers[2]!.down, true);
  assert.deepEqual(imaps.check, {
    type: 'imap', intervalMs: 10_000, rise: 3, fall: 4, timeoutMs: 3000, tls: true, servername: 'mail.example.net', verify: true,
    port: 1993, send: 'GET / HTTP/1.0\r\n\r\n', expect: ['2xx', '3xx'], proxyProtocol: 'v2',
  });
  const web2 = c.upstreams.web!;
  assert.equal(web2.balance, 'least_conn');
  assert.equal(web2.check!.send, 'HEAD /health HTTP/1.0\r\n\r\n');
  assert.deepEqual(web2.check!.expect, ['2xx']);
  assert.equal(web2.check!.intervalMs, 1000);
  assert.equal(c.upstreams.mail!.servers[0]!.weight, 2);

  assert.deepEqual(c.log, { access: join(FIXTURES, 'logs/access.log'), format: 'json', level: 'debug' });
  assert.deepEqual(c.control, { socket: join(FIXTURES, 'run/tcplb.sock') });
  assert.deepEqual(c.metrics, { listen: { host: '127.0.0.1', port: 9108 } });
  assert.equal(c.stateFile, '/var/lib/tcplb/state.json');
  assert.equal(c.shutdownTimeoutMs, 60_000);
  assert.equal(c.workers, 'auto');
  assert.equal(c.engine, 'js');

  // Every key the schema knows appears in the fixture (guards against the fixture going stale).
  const doc = JSON5.parse(readFileSync(path, 'utf8'));
  const keys = new Set<string>();
  const walk = (v: unknown, parent: string): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, parent));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) {
      keys.add(parent === 'upstreams' ? '' : k);
      walk(x, k);
    }
  };
  walk(doc, '');
  for (const k of ['listeners', 'name', 'listen', 'upstream', 'connectTimeout', 'idleTimeout', 'proxyProtocol', 'maxConnections',
    'maxConnectionsPerClient', 'allow', 'deny', 'upstreams', 'balance', 'onMarkedDown', 'servers', 'address', 'weight', 'maxFails',
    'failTimeout', 'backup', 'down', 'maxConns', 'check', 'type', 'interval', 'rise', 'fall', 'timeout', 'tls', 'servername',
    'verify', 'port', 'send', 'expect', 'log', 'access', 'format', 'level', 'control', 'socket', 'metrics', 'stateFile',
    'shutdownTimeout', 'health', 'require', 'leaveDelay', 'instance', 'workers', 'engine']) {
    assert.ok(keys.has(k), `valid-full.json5 lacks key ${k}`);
  }
});

test('relative paths resolve against the config folder; "-" and null stay', () => {
  const text = (log: string, rest = ''): string =>
    `{ listeners: [{ listen: 1, upstream: "u" }], upstreams: { u: { servers: ["h:1"] } }, log: { access: ${log} }, ${rest} }`;
  const c = ok(loadConfigText(text('"logs/a.log"', 'control: { socket: "../run/s.sock" }, stateFile: "state.json"'), '/etc/tcplb/config.json5'));
  assert.equal(c.log.access, '/etc/tcplb/logs/a.log');
  assert.equal(c.control.socket, '/etc/run/s.sock');
  assert.equal(c.stateFile, '/etc/tcplb/state.json');
  assert.equal(ok(loadConfigText(text('"-"'), '/etc/tcplb/config.json5')).log.access, '-');
  assert.equal(ok(loadConfigText(text('null'), '/etc/tcplb/config.json5')).log.access, null);
  assert.equal(ok(loadConfigText(text('"/var/log/a.log"', 'stateFile: "/x/s"'), 'rel/config.json5')).stateFile, '/x/s');
  // A relative config file name resolves against the working directory.
  const rel = ok(loadConfigText(text('"a.log"'), 'conf/config.json5'));
  assert.equal(rel.file, resolve('conf/config.json5'));
  assert.equal(rel.log.access, resolve('conf/a.log'));
  // In-memory text: file '' and paths against the working directory.
  const mem = ok(loadConfigText(text('"a.log"'), ''));
  assert.equal(mem.file, '');
  assert.equal(mem.log.access, resolve('a.log'));
  // control/metrics may be null as a whole.
  const off = ok(loadConfigText(text('"-"', 'control: null, metrics: null'), 'c.json5'));
  assert.deepEqual([off.control, off.metrics], [{ socket: null }, { listen: null }]);
});

test('the result is deeply frozen', () => {
  const c = ok(loadConfigText(readFileSync(join(FIXTURES, 'valid-full.json5'), 'utf8'), join(FIXTURES, 'valid-full.json5')));
  const frozen = [c, c.listeners, c.listeners[0], c.listeners[0]!.listen, c.listeners[0]!.allow, c.upstreams, c.upstreams.imaps,
    c.upstreams.imaps!.servers, c.upstreams.imaps!.servers[0], c.upstreams.imaps!.check, c.upstreams.imaps!.check!.expect, c.log,
    c.control, c.metrics, c.metrics.listen];
  for (const o of frozen) assert.ok(Object.isFrozen(o));
  assert.throws(() => { (c.listeners[0] as { name: string }).name = 'x'; }, TypeError);
  assert.throws(() => { (c.listeners as unknown as string[]).push('x'); }, TypeError);
  const bad = loadConfigText('{ oops: 1 }', 'c.json5');
  assert.ok(!bad.ok && Object.isFrozen(bad.issues) && Object.isFrozen(bad.issues[0]));
});

test('server shorthand, canonical addresses and listener defaults', () => {
  const c = ok(loadConfigText(
    '{ listeners: [{ listen: "*:25", upstream: "m" }, { listen: "[::]:26", upstream: "n" }], upstreams: { m: { servers: ["MX1.Example.com:25", "[2001:DB8::0001]:25"] }, n: { servers: [{ address: "10.0.0.1:25", weight: 5 }] } } }',
    'c.json5'));
  assert.deepEqual(c.upstreams.m!.servers.map((s) => [s.address, s.host, s.port, s.weight]), [
    ['mx1.example.com:25', 'mx1.example.com', 25, 1],
    ['[2001:db8::1]:25', '2001:db8::1', 25, 1],
  ]);
  assert.deepEqual(c.listeners.map((l) => [l.name, l.listenText]), [['m', '*:25'], ['n', '[::]:26']]);
});

test('loadConfigFile: a read error is one issue at 1:1 with the OS message', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-config-'));
  try {
    const missing = join(dir, 'nope.json5');
    const r = await loadConfigFile(missing);
    assert.ok(!r.ok);
    assert.equal(r.issues.length, 1);
    assert.deepEqual([r.issues[0]!.file, r.issues[0]!.line, r.issues[0]!.column], [missing, 1, 1]);
    assert.match(r.issues[0]!.message, /ENOENT/);
    const isDir = await loadConfigFile(dir);
    assert.ok(!isDir.ok);
    assert.match(isDir.issues[0]!.message, /not a regular file: it is a directory/);
    // A real file: issues carry the path as given.
    const file = join(dir, 'c.json5');
    await writeFile(file, '{\n  listeners: [],\n}\n');
    const bad = await loadConfigFile(file);
    assert.ok(!bad.ok);
    assert.deepEqual(bad.issues.map(formatIssue), [`${file}:1:1: missing required key "upstreams"`, `${file}:2:14: listeners: at least one listener is required`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** `p`, or a rejection naming `what` once `ms` have passed: a hang must fail the test, not wedge it. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

test('loadConfigFile: a FIFO is refused at once (it used to block until a writer came), naming what it is', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-config-'));
  const fifo = join(dir, 'config.json5');
  execFileSync('mkfifo', [fifo]);
  try {
    const t0 = Date.now();
    const r = await within(3000, 'loadConfigFile(FIFO)', loadConfigFile(fifo));
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(!r.ok);
    assert.deepEqual(r.issues.map(formatIssue), [`${fifo}:1:1: cannot read config: not a regular file: it is a named pipe (FIFO); the config must be a regular file (or a symlink to one)`]);
    // Through a symlink too.
    const link = join(dir, 'link.json5');
    await symlink(fifo, link);
    const viaLink = await within(3000, 'loadConfigFile(link to FIFO)', loadConfigFile(link));
    assert.ok(!viaLink.ok && /named pipe/.test(viaLink.issues[0]!.message));
  } finally {
    // Unblock a reader stuck in open() (old code), so the process can end.
    try {
      closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
    } catch {
      // no reader waiting
    }
    await rm(dir, { recursive: true, force: true });
  }
});

test('loadConfigFile: a symlink to /dev/zero or /dev/urandom is refused at once, reading nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-config-'));
  try {
    for (const dev of ['/dev/zero', '/dev/urandom']) {
      const link = join(dir, `${dev.slice(5)}.json5`);
      await symlink(dev, link);
      const rss = process.memoryUsage().rss;
      const t0 = Date.now();
      const r = await within(5000, `loadConfigFile(${dev})`, loadConfigFile(link));
      const ms = Date.now() - t0;
      const grew = process.memoryUsage().rss - rss;
      assert.ok(!r.ok);
      assert.equal(r.issues.length, 1);
      assert.match(r.issues[0]!.message, /^cannot read config: not a regular file: it is a character device/);
      assert.ok(ms < 1000, `${dev}: took ${ms} ms`);
      assert.ok(grew < 16 * 1024 * 1024, `${dev}: memory grew by ${grew} bytes`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('loadConfigFile: a listen host name is resolved once (IPv4 first) and bound by every engine; its spelling is kept for messages', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-config-'));
  try {
    const file = join(dir, 'c.json5');
    await writeFile(file, '{ listeners: [{ listen: "LocalHost:7000", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:1"] } }, metrics: { listen: "localhost:7001" } }');
    const c = ok(await loadConfigFile(file));
    assert.deepEqual(c.listeners[0]!.listen, { host: '127.0.0.1', port: 7000 });
    assert.equal(c.listeners[0]!.listenText, 'LocalHost:7000');
    assert.deepEqual(c.metrics.listen, { host: '127.0.0.1', port: 7001 });
    // Pure validation leaves the name alone.
    const text = loadConfigText('{ listeners: [{ listen: "localhost:7000", upstream: "u" }], upstreams: { u: { servers: ["127.0.0.1:1"] } } }', '');
    assert.equal(ok(text).listeners[0]!.listen.host, 'localhost');
    // A name that does not resolve is an issue at its position.
    await writeFile(file, `{
  listeners: [{ listen: "no-such-host.invalid:7000", upstream: "u" }],
  upstreams: { u: { servers: ["127.0.0.1:1"] } },
}
`);
    const bad = await within(15000, 'loadConfigFile(unresolvable)', loadConfigFile(file));
    assert.ok(!bad.ok);
    assert.equal(bad.issues.length, 1);
    assert.match(formatIssue(bad.issues[0]!), /c\.json5:2:25: listeners\[0\]\.listen: cannot resolve host "no-such-host\.invalid" of "no-such-host\.invalid:7000" \(/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('listener clash through address forms: IPv4-mapped IPv6 and a name resolving to the same address, both shown as written', async () => {
  const mapped = loadConfigText(`{
  listeners: [
    { name: "a", listen: "127.0.0.1:7000", upstream: "u" },
    { name: "b", listen: "[::ffff:127.0.0.1]:7000", upstream: "u" },
  ],
  upstreams: { u: { servers: ["127.0.0.1:1"] } },
}
`, 'c.json5');
  assert.ok(!mapped.ok);
  assert.deepEqual(mapped.issues.map(formatIssue), [
    'c.json5:4:26: listeners[1].listen: address "[::ffff:127.0.0.1]:7000" is the same address as listeners[0] ("127.0.0.1:7000")',
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-config-'));
  try {
    const file = join(dir, 'c.json5');
    await writeFile(file, `{
  listeners: [
    { name: "a", listen: "127.0.0.1:7000", upstream: "u" },
    { name: "b", listen: "localhost:7000", upstream: "u" },
  ],
  upstreams: { u: { servers: ["127.0.0.1:1"] } },
}
`);
    const named = await loadConfigFile(file);
    assert.ok(!named.ok);
    assert.deepEqual(named.issues.map((i) => `${i.line}:${i.column}: ${i.message}`), [
      '4:26: listeners[1].listen: address "localhost:7000" (localhost is 127.0.0.1) is the same address as listeners[0] ("127.0.0.1:7000")',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Small deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function assertWellFormed(r: LoadResult, label: string): void {
  assert.equal(typeof r.ok, 'boolean', label);
  if (r.ok) return;
  assert.ok(r.issues.length > 0, label);
  for (const i of r.issues) {
    assert.ok(Number.isInteger(i.line) && i.line >= 1 && Number.isInteger(i.column) && i.column >= 1, `${label}: ${formatIssue(i)}`);
    assert.equal(typeof i.message, 'string');
  }
  for (let k = 1; k < r.issues.length; k++) {
    const a = r.issues[k - 1]!;
    const b = r.issues[k]!;
    assert.ok(a.line < b.line || (a.line === b.line && a.column <= b.column), `${label}: issues not sorted`);
  }
}

test('never throws: wrong types in every position', () => {
  const base = JSON5.parse(readFileSync(join(FIXTURES, 'valid-full.json5'), 'utf8')) as unknown;
  const wrong: unknown[] = [null, true, false, 0, -1, 1e308, 1.5, '', 'x', '-', [], [null], {}, { a: 1 }, 'auto'];
  // Every path to every value in the document.
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, p: Array<string | number>): void => {
    paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(base, []);
  let rejected = 0;
  for (const p of paths) {
    for (const w of wrong) {
      const copy = structuredClone(base) as Record<string | number, unknown>;
      if (p.length === 0) {
        assertWellFormed(loadConfigText(JSON.stringify(w), 'c.json5'), 'root');
        continue;
      }
      let o: Record<string | number, unknown> = copy;
      for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
      o[p[p.length - 1]!] = w;
      const r = loadConfigText(JSON.stringify(copy, null, 2), 'c.json5');
      assertWellFormed(r, `${p.join('.')} = ${JSON.stringify(w)}`);
      if (!r.ok) rejected++;
    }
  }
  assert.ok(rejected > paths.length * 5, 'most substitutions are errors');
  // Everything wrong at once: many issues, none thrown.
  const corrupt = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(corrupt)
      : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, corrupt(x)]))
        : { bogus: String(v) };
  const all = JSON.stringify(corrupt(base));
  const r = loadConfigText(all, 'c.json5');
  assertWellFormed(r, 'all wrong');
  assert.ok(!r.ok && r.issues.length > 40, `expected many issues, got ${r.ok ? 0 : r.issues.length}`);
});

test('never throws: random corruption of a valid file', () => {
  const text = readFileSync(join(FIXTURES, 'valid-full.json5'), 'utf8');
  const rand = rng(42);
  const junk = ['{', '}', '[', ']', ',', ':', '"', "'", '\\', '/*', '//', '\n', 'x', '0', '-', 'NaN', 'Infinity', '\u2028', '\uFEFF', '\0'];
  for (let n = 0; n < 1500; n++) {
    let t = text;
    const edits = 1 + Math.floor(rand() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * t.length);
      const cut = Math.floor(rand() * 8);
      t = t.slice(0, at) + (rand() < 0.6 ? junk[Math.floor(rand() * junk.length)] : '') + t.slice(at + cut);
    }
    assertWellFormed(loadConfigText(t, 'c.json5'), `seed 42 iteration ${n}`);
  }
});

test('never throws: hostile shapes stay fast', () => {
  const started = Date.now();
  const cases = [
    '['.repeat(200_000),
    '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000),
    `{ listeners: [{ listen: 1, upstream: "u", name: "${'x'.repeat(2_000_000)}" }], upstreams: { u: { servers: ["h:1"] } } }`,
    `{ "${'k'.repeat(1_000_000)}": 1 }`,
    `{ listeners: [${'{ listen: true, upstream: 5, allow: {} },'.repeat(20_000)}], upstreams: [] }`,
    `{ listeners: [{ listen: 1, upstream: "u" }], upstreams: { u: { servers: [${'"h:1",'.repeat(20_000)}] } } }`,
    `{ listeners: [${Array.from({ length: 5000 }, (_, i) => `{ listen: ${i + 1}, upstream: "x${i}" }`).join(',')}], upstreams: { ${Array.from({ length: 2000 }, (_, i) => `x${i}y: { servers: ["h:1"] }`).join(',')} } }`,
    '\0\uFFFF\uD800',
  ];
  for (const c of cases) {
    const r = loadConfigText(c, 'c.json5');
    assertWellFormed(r, c.slice(0, 30));
    assert.ok(!r.ok);
    assert.ok(r.issues.length <= 1001, 'issues are capped');
  }
  assert.equal(loadConfigText(null as unknown as string, 'c.json5').ok, false);
  // Generous bound: catches accidental quadratic behaviour, not slow CI machines.
  assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
});

test('issue cap: a huge number of problems ends with "… and N more issues"', () => {
  const r = loadConfigText(`{ ${Array.from({ length: 1500 }, (_, i) => `k${i}: 1`).join(',\n')} }`, 'c.json5');
  assert.ok(!r.ok);
  assert.equal(r.issues.length, 1001);
  assert.match(r.issues[1000]!.message, /^… and \d+ more issues$/);
});
