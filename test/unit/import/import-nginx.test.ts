import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportError } from '../../../src/core/errors.js';
import { importNginx } from '../../../src/import/index.js';
import { parseNginxTime } from '../../../src/import/nginx-translate.js';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/nginx/', import.meta.url));
const NOW = new Date('2024-05-01T12:00:00Z');

async function load(name: string): Promise<{ json5: string; warnings: string[]; config: Config }> {
  const r = await importNginx(join(FIXTURES, name), { now: NOW });
  const loaded = loadConfigText(r.json5, 'imported.json5');
  assert.ok(loaded.ok, `does not load: ${JSON.stringify(!loaded.ok && loaded.issues)}\n${r.json5}`);
  return { ...r, config: loaded.config };
}

/** Import nginx text written to a temp file. */
async function importText(text: string): Promise<{ json5: string; warnings: string[]; config: Config }> {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-import-'));
  try {
    await writeFile(join(dir, 'nginx.conf'), text);
    const r = await importNginx(join(dir, 'nginx.conf'), { now: NOW });
    const loaded = loadConfigText(r.json5, '');
    assert.ok(loaded.ok, r.json5);
    return { ...r, config: loaded.config };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('seed tcp-module mail config: six listeners, ip_hash, checks in milliseconds', async () => {
  const { json5, warnings, config } = await load('tcp-mail.conf');
  assert.deepEqual(warnings, []);
  const byPort = new Map(config.listeners.map((l) => [l.listen.port, l]));
  assert.deepEqual([...byPort.keys()].sort((a, b) => a - b), [80, 143, 443, 465, 587, 993]);
  const expected: Record<number, [string, string]> = {
    993: ['cluster_imaps', 'tcp'], 143: ['cluster_imap', 'imap'], 587: ['cluster_smtp', 'smtp'],
    465: ['cluster_smtps', 'smtp'], 80: ['cluster_http', 'tcp'], 443: ['cluster_https', 'tcp'],
  };
  for (const [port, [upstream, type]] of Object.entries(expected)) {
    const l = byPort.get(Number(port))!;
    assert.equal(l.listen.host, '', 'listen 993 = all interfaces');
    assert.equal(l.upstream, upstream);
    assert.equal(l.name, upstream);
    const u = config.upstreams[upstream]!;
    assert.equal(u.balance, 'ip_hash');
    assert.deepEqual(u.servers.map((s) => s.address), [`mail2.itmatrix.eu:${port}`, `mail3.itmatrix.eu:${port}`]);
    assert.deepEqual(
      { type: u.check!.type, interval: u.check!.intervalMs, timeout: u.check!.timeoutMs, rise: u.check!.rise, fall: u.check!.fall },
      { type, interval: 5000, timeout: 2000, rise: 2, fall: 5 },
    );
  }
  // Ignored top-level directives are noted, with their lines.
  assert.match(json5, /^\/\/ {3}user www-data; \(tcp-mail\.conf:1\)$/m);
  assert.match(json5, /^\/\/ {3}worker_processes 1; \(tcp-mail\.conf:2\)$/m);
  assert.match(json5, /^\/\/ {3}events \{ worker_connections 1024; \} \(tcp-mail\.conf:3\)$/m);
  // The tutorial's certificate workaround is said to be unneeded, for the relayed TLS and STARTTLS ports.
  assert.match(json5, /^\/\/ Certificates: cluster_imaps \(993\), cluster_imap \(143\), cluster_smtp \(587\), cluster_smtps \(465\), cluster_https \(443\) relay TLS untouched/m);
  assert.match(json5, /wildcard-certificate workaround\)\. That is no longer needed: tcplb can hold the/);
  assert.match(json5, /starttls: "imap" \| "pop3" \| "smtp"` plus `tls` on 143, 110 and 587; see docs\/tls\.md\./);
  // Header, origins, the ip_hash note.
  assert.match(json5, /^\/\/ tcplb configuration imported from .*tcp-mail\.conf on 2024-05-01/);
  assert.match(json5, /\/\/ from tcp \{ server \{ listen 993; \} \} at tcp-mail\.conf:16\n\s+\{ name: "cluster_imaps", listen: 993, upstream: "cluster_imaps" \},/);
  assert.match(json5, /\/\/ from tcp \{ upstream cluster_imaps \{ … \} \} at tcp-mail\.conf:9\n\s+cluster_imaps: \{/);
  assert.match(json5, /ip_hash; \(tcp-mail\.conf:13\) -- .*always consistent/);
  assert.match(json5, /interval= and timeout= are milliseconds/);
  // Unquoted keys, 2-space indent.
  assert.match(json5, /^ {2}listeners: \[$/m);
  assert.doesNotMatch(json5, /"listeners"|"upstreams"/);
});

test('stream config: hash/least_conn, server parameters, proxy_protocol, allow/deny, udp', async () => {
  const { json5, warnings, config } = await load('stream.conf');
  const db = config.upstreams.db!;
  assert.equal(db.balance, 'ip_hash');
  assert.deepEqual(db.servers.map((s) => [s.address, s.weight, s.maxFails, s.failTimeoutMs, s.maxConns, s.backup, s.down]), [
    ['10.0.0.11:5432', 3, 0, 30_000, 0, false, false],
    ['10.0.0.12:5432', 1, 1, 10_000, 100, false, false],
    ['10.0.0.13:5432', 1, 1, 10_000, 0, true, false],
    ['10.0.0.14:5432', 1, 1, 10_000, 0, false, true],
  ]);
  assert.equal(db.check, undefined);
  const cache = config.upstreams.cache!;
  assert.equal(cache.balance, 'least_conn');
  assert.deepEqual(cache.servers.map((s) => [s.address, s.weight]), [['cache1.example.net:6379', 1], ['cache2.example.net:6379', 2]]);

  const names = config.listeners.map((l) => l.name);
  assert.deepEqual(names, ['db', 'cache-6379', '10.0.0.22-22', 'cache-6380']);
  const [dbL, cacheL, sshL, cache2L] = config.listeners as [Config['listeners'][0], Config['listeners'][0], Config['listeners'][0], Config['listeners'][0]];
  assert.deepEqual(dbL.listen, { host: '', port: 5432 });
  assert.equal(dbL.proxyProtocol, 'v1');
  assert.deepEqual(dbL.allow, ['10.0.0.0/8', '192.168.1.0/24']);
  assert.deepEqual(dbL.deny, []);
  assert.equal(dbL.connectTimeoutMs, 3000);
  assert.equal(dbL.idleTimeoutMs, 30 * 60_000);
  assert.deepEqual(cacheL.listen, { host: '127.0.0.1', port: 6379 });
  assert.equal(cacheL.idleTimeoutMs, 3_600_000, 'server-level proxy_timeout overrides the block');
  assert.deepEqual(cacheL.deny, ['10.6.6.6']);
  assert.deepEqual(cacheL.allow, []);
  assert.equal(cacheL.proxyProtocol, false);
  // proxy_pass to an address: a synthesized one-server upstream.
  assert.equal(sshL.upstream, '10.0.0.22-22');
  assert.deepEqual(config.upstreams['10.0.0.22-22']!.servers.map((s) => s.address), ['10.0.0.22:22']);
  assert.equal(cache2L.upstream, 'cache');
  assert.ok(!config.listeners.some((l) => l.listen.port === 53), 'udp is not translated');

  assert.match(json5, /\/\/ not translated: listen 53 udp; \(stream\.conf:56\) -- UDP/);
  assert.match(json5, /listen \[::\]:5432; \(stream\.conf:39\) is covered by the listener on port 5432/);
  assert.match(json5, /deny all after the allows/);
  assert.match(json5, /\/\/ not translated: ssl_certificate \/etc\/ssl\/cert\.pem; \(stream\.conf:63\) -- tcplb is L4 and does not terminate TLS/);
  assert.match(json5, /\/\/ not translated: slow_start=30s/);
  assert.match(json5, /\/\/ {3}http \{ … \} \(stream\.conf:8\)/);
  assert.match(json5, /hash \$remote_addr consistent; \(stream\.conf:18\)/);
  const expectWarn = [
    'stream.conf:15: not translated: access_log', 'stream.conf:23: not translated: slow_start=30s', 'stream.conf:30: not translated: random two;',
    'stream.conf:52: not translated: tcp_nodelay on;', 'stream.conf:48: not translated: so_keepalive=on', 'stream.conf:56: not translated: listen 53 udp;',
    'stream.conf:63: not translated: ssl_certificate',
  ];
  assert.equal(warnings.length, expectWarn.length, warnings.join('\n'));
  for (const [i, w] of expectWarn.entries()) assert.ok(warnings[i]!.startsWith(join(FIXTURES, w)), `${warnings[i]} should start with ${w}`);
  assert.match(json5, /^\/\/ 7 directives could not be translated/m);
});

test('includes: a conf.d/*.conf glob, relative to the including file, hidden files skipped', async () => {
  const { json5, warnings, config } = await load('includes.conf');
  assert.deepEqual(warnings, []);
  assert.deepEqual(Object.keys(config.upstreams), ['pop3', 'web']);
  assert.deepEqual(config.listeners.map((l) => [l.name, l.listen.port, l.upstream]), [['web-8080', 8080, 'web'], ['web-8443', 8443, 'web'], ['pop3', 110, 'pop3']]);
  const web = config.upstreams.web!;
  assert.equal(web.check!.type, 'http');
  assert.equal(web.check!.intervalMs, 3000);
  assert.equal(web.check!.port, 8081);
  assert.equal(web.check!.send, 'GET /health HTTP/1.0\r\nHost: web\r\n\r\n');
  assert.deepEqual(web.check!.expect, ['2xx', '3xx']);
  const pop3 = config.upstreams.pop3!;
  assert.deepEqual({ i: pop3.check!.intervalMs, t: pop3.check!.timeoutMs, r: pop3.check!.rise, f: pop3.check!.fall }, { i: 10_000, t: 1000, r: 2, f: 5 }, 'module defaults');
  assert.equal(pop3.servers[1]!.failTimeoutMs, 60_000);
  // tcp-module timeouts: one idle timer, the longest; "timeout" from the tcp {} level is inherited.
  assert.equal(config.listeners[0]!.idleTimeoutMs, 5 * 60_000);
  assert.equal(config.listeners[2]!.idleTimeoutMs, 120_000);
  assert.match(json5, /include conf\.d\/\*\.conf \(includes\.conf:7\) -> conf\.d\/pop3\.conf, conf\.d\/web\.conf/);
  assert.match(json5, /relative to the including file's folder/);
  assert.match(json5, /from tcp \{ upstream web \{ … \} \} at conf\.d\/web\.conf:1/);
  assert.match(json5, /default_down=true: not needed/);
  assert.doesNotMatch(json5, /hidden/);
});

test('broken files: errors point at file:line', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['broken-brace.conf', 'broken-brace.conf:2', /"upstream imap \{" is never closed/],
    ['broken-extra-brace.conf', 'broken-extra-brace.conf:10', /no block is open here .*line 5/],
    ['broken-semicolon.conf', 'broken-semicolon.conf:3', /missing ";" after "server 10\.0\.0\.1:5432"/],
    ['broken-semicolon-brace.conf', 'broken-semicolon-brace.conf:5', /missing ";" after "proxy_pass db"/],
    ['broken-quote.conf', 'broken-quote.conf:5', /unterminated double quote/],
    ['broken-include.conf', 'broken-include.conf:4', /cannot read include "upstreams\/db\.conf" .*no such file/],
    // An error inside an included file names that file.
    ['broken-nested.conf', join('sub', 'bad-inner.conf:6'), /unterminated single quote/],
  ];
  for (const [file, where, why] of cases) {
    await assert.rejects(importNginx(join(FIXTURES, file)), (e: unknown) => {
      assert.ok(e instanceof ImportError, String(e));
      assert.ok(e.message.startsWith(join(FIXTURES, where) + ':'), `${e.message} should start with ${where}`);
      assert.match(e.message, why);
      return true;
    });
  }
  await assert.rejects(importNginx(join(FIXTURES, 'no-such.conf')), /no-such\.conf: cannot read: no such file/);
});

test('errors show paths as given (relative stays relative)', async () => {
  const rel = join('test', 'fixtures', 'nginx', 'broken-include.conf');
  const cwd = process.cwd();
  process.chdir(fileURLToPath(new URL('../../../../', import.meta.url)));
  try {
    await assert.rejects(importNginx(rel), (e: Error) => e.message.startsWith(`${rel}:4: `));
  } finally {
    process.chdir(cwd);
  }
});

test('allow/deny: nginx first-match rules become tcplb lists, or a warning when inexact', async () => {
  const acl = async (rules: string): Promise<{ allow: readonly string[]; deny: readonly string[]; warnings: string[] }> => {
    const r = await importText(`stream { server { listen 9000; proxy_pass 10.0.0.1:9000; ${rules} } }`);
    return { allow: r.config.listeners[0]!.allow, deny: r.config.listeners[0]!.deny, warnings: r.warnings };
  };
  assert.deepEqual(await acl('deny 10.1.0.0/16; allow 10.0.0.0/8; deny all;'), { allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'], warnings: [] });
  assert.deepEqual(await acl('deny 192.0.2.1; deny 2001:db8::/32;'), { allow: [], deny: ['192.0.2.1', '2001:db8::/32'], warnings: [] });
  assert.deepEqual(await acl('allow 10.0.0.0/8; deny 10.1.0.0/16;'), { allow: [], deny: [], warnings: [] }, 'the deny is shadowed by the allow');
  assert.deepEqual(await acl('deny all;'), { allow: [], deny: ['0.0.0.0/0', '::/0'], warnings: [] });
  assert.deepEqual(await acl('allow all; deny 10.0.0.1;'), { allow: [], deny: [], warnings: [] });
  const inexact = await acl('allow 10.1.0.0/16; deny 10.0.0.0/8;');
  assert.equal(inexact.warnings.length, 1);
  assert.match(inexact.warnings[0]!, /cannot be expressed exactly.*nginx allows 10\.1\.0\.0/);
  // Block-level rules are inherited unless the server has its own.
  const r = await importText('stream { allow 10.0.0.0/8; deny all; server { listen 1; proxy_pass a:1; } server { listen 2; proxy_pass a:1; deny 10.9.9.9; } }');
  assert.deepEqual(r.config.listeners.map((l) => [l.allow, l.deny]), [[['10.0.0.0/8'], []], [[], ['10.9.9.9']]]);
});

test('listen forms, shared upstreams and clashes', async () => {
  const r = await importText(`stream {
    upstream u { server 10.0.0.1:1; }
    server { listen 127.0.0.1:143; listen [::1]:143; listen *:25; proxy_pass u; }
    server { listen 0.0.0.0:110; listen [::]:110; proxy_pass u; }
    server { listen 127.0.0.1:25; proxy_pass 10.0.0.9:25; }
  }`);
  assert.deepEqual(r.config.listeners.map((l) => [l.name, l.listenText]), [
    ['u-143', '127.0.0.1:143'], ['u-143-2', '[::1]:143'], ['u-25', '*:25'], ['u-110', '*:110'],
  ]);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /listen 127\.0\.0\.1:25; -- port 25 is already taken by listen \*:25;/);
});

test('tcp module: default ports, timeouts, untranslatable balancing and checks', async () => {
  const r = await importText(`tcp {
    upstream a { server backend1; server backend2:8080 max_busy=3; hash $cookie; check interval=2000 type=ajp; }
    server { listen 80; proxy_pass a; proxy_connect_timeout 30; so_keepalive on; }
  }`);
  const u = r.config.upstreams.a!;
  assert.deepEqual(u.servers.map((s) => s.address), ['backend1:80', 'backend2:8080']);
  assert.equal(u.balance, 'round_robin');
  assert.equal(u.check, undefined);
  assert.equal(r.config.listeners[0]!.connectTimeoutMs, 30_000, 'a bare number is seconds in nginx time directives');
  assert.deepEqual(r.warnings.map((w) => w.replace(/^.*?: not translated: /, '').split(' -- ')[0]), [
    'max_busy=3 (in "server backend2:8080 max_busy=3;")', 'hash $cookie;', 'check interval=2000 type=ajp;', 'so_keepalive on;',
  ]);
});

test('includes: cycles are errors; includes inside http {} are not followed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tcplb-import-'));
  try {
    await writeFile(join(dir, 'nginx.conf'), 'http {\n  include mime.types;\n}\nstream {\n  include loop.conf;\n}\n');
    await writeFile(join(dir, 'loop.conf'), 'upstream u { server 10.0.0.1:1; }\ninclude nginx.conf;\n');
    await assert.rejects(importNginx(join(dir, 'nginx.conf')), (e: Error) => e instanceof ImportError && e.message.startsWith(`${join(dir, 'loop.conf')}:2: `) && /cycle/.test(e.message));
    await writeFile(join(dir, 'loop.conf'), 'upstream u { server 10.0.0.1:1; }\nserver { listen 1; proxy_pass u; }\n');
    const r = await importNginx(join(dir, 'nginx.conf'), { now: NOW });
    assert.deepEqual(r.warnings, []);
    assert.match(r.json5, /\/\/ {3}http \{ include mime\.types; \} \(nginx\.conf:1\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('nothing to translate is an error, not an empty config', async () => {
  await assert.rejects(importText('events { }\nhttp { }\n'), /nothing to translate/);
  await assert.rejects(importText('stream { server { listen 53 udp; proxy_pass 10.0.0.1:53; } }'), /nothing to translate.*UDP/);
});

test('parseNginxTime: nginx units; bare numbers in the given unit', () => {
  assert.equal(parseNginxTime('5s'), 5000);
  assert.equal(parseNginxTime('1m30s'), 90_000);
  assert.equal(parseNginxTime('500ms'), 500);
  assert.equal(parseNginxTime('60'), 60_000);
  assert.equal(parseNginxTime('1h 30m'), 5_400_000);
  assert.equal(parseNginxTime('2d'), 172_800_000);
  assert.equal(parseNginxTime('5000', 1), 5000);
  for (const bad of ['', 's', '5x', '-1s', '5 5s', '1.5s']) assert.equal(parseNginxTime(bad), undefined, bad);
});
