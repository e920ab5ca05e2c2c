/**
 * One test per kind of mistake: each asserts the exact line:col (1-based, at
 * the offending key for unknown keys, at the value for bad values, at the
 * enclosing "{" for a missing key) and the message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../../src/config/load.js';
import { formatIssue, type ConfigIssue } from '../../../src/core/config.js';

const FILE = 'conf/test.json5';

function issuesOf(lines: string[]): readonly ConfigIssue[] {
  const r = loadConfigText(lines.join('\n'), FILE);
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.issues;
}

/** Exactly one issue, at line:col, whose message contains `text`. */
function expectOnly(lines: string[], line: number, column: number, text: string): ConfigIssue {
  const issues = issuesOf(lines);
  const shown = issues.map(formatIssue).join('\n');
  assert.equal(issues.length, 1, `expected one issue, got:\n${shown}`);
  const i = issues[0]!;
  // On failure, show where the issue points, so a wrong expectation is easy to tell from a wrong position.
  const caret = `${lines[i.line - 1] ?? ''}\n${' '.repeat(Math.max(0, i.column - 1))}^`;
  assert.equal(`${i.line}:${i.column}`, `${line}:${column}`, `${shown}\n${caret}`);
  assert.ok(i.message.includes(text), `message ${JSON.stringify(i.message)} lacks ${JSON.stringify(text)}`);
  assert.equal(i.file, FILE);
  return i;
}

/** A valid config with `listener` as the only listener and `server` as the first server. */
function doc(listener: string, server = '{ address: "mail2.example.net:993" }', check = '{ type: "imap" }'): string[] {
  return [
    '{', //                                                        1
    '  listeners: [', //                                           2
    `    ${listener},`, //                                         3
    '  ],', //                                                     4
    '  upstreams: {', //                                           5
    '    imaps: {', //                                             6
    '      servers: [', //                                         7
    `        ${server},`, //                                       8
    '        "mail3.example.net:993",', //                         9
    '      ],', //                                                10
    `      check: ${check},`, //                                  11
    '    },', //                                                  12
    '  },', //                                                    13
    '}', //                                                       14
  ];
}
const LISTENER = '{ listen: "0.0.0.0:993", upstream: "imaps" }';

test('the base document is valid', () => {
  const r = loadConfigText(doc(LISTENER).join('\n'), FILE);
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
});

test('1. unknown key with a suggestion, at the key', () => {
  const i = expectOnly(doc(LISTENER, '{ address: "mail2.example.net:993", wieght: 2 }'), 8, 45, 'unknown key "wieght" (did you mean "weight"?)');
  assert.equal(i.message, 'upstreams.imaps.servers[0]: unknown key "wieght" (did you mean "weight"?)');
  // Case-insensitive match is suggested too; a far-off key gets no suggestion.
  expectOnly(doc('{ listen: 993, upstream: "imaps", MaxConnections: 5 }'), 3, 39, 'unknown key "MaxConnections" (did you mean "maxConnections"?)');
  const far = expectOnly(doc('{ listen: 993, upstream: "imaps", colour: "red" }'), 3, 39, 'unknown key "colour"');
  assert.ok(!far.message.includes('did you mean'));
  expectOnly(['{ lsteners: [], upstreams: {} }'], 1, 3, 'unknown key "lsteners" (did you mean "listeners"?)');
});

test('2. wrong type, at the value', () => {
  expectOnly(doc(LISTENER, '{ address: "mail2.example.net:993", weight: "2" }'), 8, 53, 'upstreams.imaps.servers[0].weight: must be an integer from 1 to 1000 (got a string)');
  expectOnly(doc(LISTENER, '{ address: "mail2.example.net:993", backup: "yes" }'), 8, 53, 'backup: must be true or false (got a string)');
  expectOnly(doc('{ listen: "0.0.0.0:993", upstream: ["imaps"] }'), 3, 40, 'listeners[0].upstream: must be a string (got an array)');
  expectOnly(doc(LISTENER, '{ address: "mail2.example.net:993" }', '"imap"'), 11, 14, 'upstreams.imaps.check: must be an object (got a string)');
});

test('3. out-of-range port and numbers', () => {
  expectOnly(doc('{ listen: "0.0.0.0:70000", upstream: "imaps" }'), 3, 15, 'listeners[0].listen: invalid address "0.0.0.0:70000": port 70000 out of range (1-65535)');
  expectOnly(doc('{ listen: 0, upstream: "imaps" }'), 3, 15, 'port 0 out of range (1-65535)');
  expectOnly(doc(LISTENER, '{ address: "mail2.example.net:993", weight: 1001 }'), 8, 53, 'weight: must be from 1 to 1000 (got 1001)');
  expectOnly(doc(LISTENER, undefined, '{ type: "imap", rise: 0 }'), 11, 36, 'check.rise: must be from 1 to 100 (got 0)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", maxConnections: -1 }'), 3, 55, 'maxConnections: must be from 0 to 10000000 (got -1)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", maxConnections: 1.5 }'), 3, 55, 'must be an integer from 0 to 10000000 (got 1.5)');
});

test('4. bad duration', () => {
  expectOnly(doc('{ listen: 993, upstream: "imaps", connectTimeout: "5 sec" }'), 3, 55, 'listeners[0].connectTimeout: invalid duration "5 sec"');
  expectOnly(doc('{ listen: 993, upstream: "imaps", connectTimeout: "2000" }'), 3, 55, 'invalid duration "2000" needs a unit');
  expectOnly(doc('{ listen: 993, upstream: "imaps", idleTimeout: -5 }'), 3, 52, 'idleTimeout: must not be negative (got -5)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", idleTimeout: 0 }'), 3, 52, 'idleTimeout: must be from 1ms to 7d (got 0ms)');
  expectOnly(doc(LISTENER, undefined, '{ type: "imap", interval: "2h" }'), 11, 40, 'check.interval: must be from 10ms to 1h (got 2h)');
  expectOnly(doc(LISTENER, undefined, '{ type: "imap", timeout: true }'), 11, 39, 'check.timeout: must be a duration like "5s" or a number of milliseconds (got true)');
});

test('5. bad address', () => {
  expectOnly(doc(LISTENER, '{ address: "mail2.example.net" }'), 8, 20, 'servers[0].address: invalid address "mail2.example.net": missing port');
  expectOnly(doc(LISTENER, '"993"'), 8, 9, 'upstreams.imaps.servers[0]: invalid address "993": needs a host and a port');
  expectOnly(doc(LISTENER, '{ address: "*:993" }'), 8, 20, 'needs a specific host');
  expectOnly(doc(LISTENER, '{ address: "mail two:993" }'), 8, 20, 'invalid host name "mail two"');
  expectOnly(doc(LISTENER, '{ address: "300.0.0.1:993" }'), 8, 20, 'invalid IPv4 address "300.0.0.1"');
  expectOnly(doc(LISTENER, '993'), 8, 9, 'servers[0]: must be "host:port" or an object with "address" (got a number)');
  expectOnly(doc('{ listen: true, upstream: "imaps" }'), 3, 15, 'listen: must be an address like "0.0.0.0:993" or a port number (got true)');
});

test('6. bad IPv6 address', () => {
  expectOnly(doc(LISTENER, '{ address: "[::g]:993" }'), 8, 20, 'invalid address "[::g]:993": invalid IPv6 address "::g"');
  expectOnly(doc(LISTENER, '{ address: "2001:db8::1:993" }'), 8, 20, 'IPv6 addresses need brackets, e.g. "[2001:db8::1]:993"');
  expectOnly(doc('{ listen: "[::1:993", upstream: "imaps" }'), 3, 15, 'missing "]" after IPv6 address');
});

test('7. listener references an unknown upstream, with a suggestion', () => {
  const i = expectOnly(doc('{ listen: 993, upstream: "imap" }'), 3, 30, 'no upstream named "imap" (did you mean "imaps"?)');
  assert.equal(i.message, 'listeners[0].upstream: no upstream named "imap" (did you mean "imaps"?)');
  const far = expectOnly(doc('{ listen: 993, upstream: "pop3" }'), 3, 30, 'no upstream named "pop3"');
  assert.ok(!far.message.includes('did you mean'));
});

test('8. duplicate listen address, including wildcard vs specific host and metrics', () => {
  const lines = doc(LISTENER);
  lines.splice(3, 0, '    { name: "b", listen: "993", upstream: "imaps" },'); // line 4
  expectOnly(lines, 4, 26, 'listeners[1].listen: address "*:993" conflicts with listeners[0] ("0.0.0.0:993")');

  const same = doc('{ listen: "127.0.0.1:143", upstream: "imaps" }');
  same.splice(3, 0, '    { name: "b", listen: "127.0.0.1:143", upstream: "imaps" },');
  expectOnly(same, 4, 26, 'address "127.0.0.1:143" already used by listeners[0]');

  const specific = doc('{ listen: "*:993", upstream: "imaps" }');
  specific.splice(3, 0, '    { name: "b", listen: "10.0.0.1:993", upstream: "imaps" },');
  expectOnly(specific, 4, 26, 'conflicts with listeners[0] ("*:993")');

  const differentHosts = doc('{ listen: "10.0.0.1:993", upstream: "imaps" }');
  differentHosts.splice(3, 0, '    { name: "b", listen: "10.0.0.2:993", upstream: "imaps" },');
  assert.ok(loadConfigText(differentHosts.join('\n'), FILE).ok, 'two hosts on one port are fine');

  const metrics = doc(LISTENER);
  metrics.splice(13, 0, '  metrics: { listen: "127.0.0.1:993" },'); // line 14
  expectOnly(metrics, 14, 22, 'metrics.listen: address "127.0.0.1:993" conflicts with listeners[0]');
});

test('9. duplicate server address within an upstream (canonical: case and IPv6 spelling)', () => {
  expectOnly(doc(LISTENER, '{ address: "MAIL3.example.net:993" }'), 9, 9, 'upstreams.imaps.servers[1]: duplicate server "mail3.example.net:993" (also servers[0])');
  const v6 = doc(LISTENER, '{ address: "[2001:db8::1]:993" }');
  v6[8] = '        { address: "[2001:DB8:0::0001]:993" },';
  expectOnly(v6, 9, 20, 'servers[1].address: duplicate server "[2001:db8::1]:993" (also servers[0])');
});

test('10. bad enum values, with suggestions', () => {
  const lines = doc(LISTENER);
  lines[5] = '    imaps: { balance: "roundrobin",';
  expectOnly(lines, 6, 23, 'upstreams.imaps.balance: must be "round_robin", "least_conn" or "ip_hash" (got "roundrobin") (did you mean "round_robin"?)');
  expectOnly(doc(LISTENER, undefined, '{ type: "imaps" }'), 11, 22, 'check.type: must be "tcp", "ssl_hello", "http", "smtp", "mysql", "pop3" or "imap" (got "imaps") (did you mean "imap"?)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", proxyProtocol: true }'), 3, 54, 'proxyProtocol: must be false, "v1" or "v2" (got true)');
  const log = doc(LISTENER);
  log.splice(13, 0, '  log: { format: "JSON", level: "warning" },'); // line 14
  const issues = issuesOf(log);
  assert.deepEqual(issues.map((i) => `${i.line}:${i.column} ${i.message}`), [
    '14:18 log.format: must be "text" or "json" (got "JSON") (did you mean "json"?)',
    '14:33 log.level: must be "debug", "info", "warn" or "error" (got "warning")',
  ]);
  const engine = doc(LISTENER);
  engine.splice(13, 0, '  engine: "rust", workers: 0,');
  assert.deepEqual(issuesOf(engine).map((i) => `${i.line}:${i.column} ${i.message}`), [
    '14:11 engine: must be "auto", "js" or "native" (got "rust")',
    '14:28 workers: must be a number of processes from 1 to 1024 or "auto" (got 0)',
  ]);
});

test('11. bad CIDR in allow/deny', () => {
  expectOnly(doc('{ listen: 993, upstream: "imaps", allow: ["10.0.0.0/8", "10.0.0.0/33"] }'), 3, 61, 'listeners[0].allow[1]: invalid prefix length in "10.0.0.0/33" (0-32 for IPv4)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", deny: ["::1", "2001:db8::/129"] }'), 3, 53, 'deny[1]: invalid prefix length in "2001:db8::/129" (0-128 for IPv6)');
  expectOnly(doc('{ listen: 993, upstream: "imaps", deny: ["intranet"] }'), 3, 46, 'deny[0]: invalid address in CIDR "intranet"');
  expectOnly(doc('{ listen: 993, upstream: "imaps", allow: "10.0.0.0/8" }'), 3, 46, 'allow: must be an array of CIDR strings');
});

test('12. syntax error: one issue at the exact position', () => {
  const lines = doc(LISTENER);
  lines[7] = '        { address: "mail2.example.net:993" weight: 2 },'; // missing comma
  expectOnly(lines, 8, 44, 'syntax error: unexpected identifier "weight" (missing comma?)');
  expectOnly(['{', '  listeners: [{ listen: 993, upstream: imaps }],', '}'], 2, 40, 'syntax error: unexpected identifier "imaps" (strings need quotes)');
  expectOnly(['{ "listeners" [] }'], 1, 15, 'missing ":" after the key');
  expectOnly(['{ listeners: [', '  { listen: 993 },'], 2, 19, 'unexpected end of file');
  expectOnly(['{ a: 1 }}'], 1, 9, 'syntax error: unexpected "}"');
});

test('13. missing required key: at the enclosing object, naming the key', () => {
  expectOnly(doc('{ listen: 993 }'), 3, 5, 'listeners[0]: missing required key "upstream"');
  expectOnly(doc(LISTENER, '{ weight: 2 }'), 8, 9, 'upstreams.imaps.servers[0]: missing required key "address"');
  expectOnly(doc(LISTENER, undefined, '{ interval: "5s" }'), 11, 14, 'upstreams.imaps.check: missing required key "type"');
  const noServers = doc(LISTENER);
  noServers.splice(6, 5); // drop the servers array (lines 7-11)
  expectOnly(noServers, 6, 12, 'upstreams.imaps: missing required key "servers"');
  assert.deepEqual(issuesOf(['{', '  upstreams: {},', '}']).map((i) => `${i.line}:${i.column} ${i.message}`), ['1:1 missing required key "listeners"']);
});

test('14. send/expect only with type "http"; expect entries are 2xx..5xx', () => {
  expectOnly(doc(LISTENER, undefined, '{ type: "imap", send: "a1 NOOP\\r\\n" }'), 11, 30, 'upstreams.imaps.check.send: only valid with type "http" (type is "imap")');
  expectOnly(doc(LISTENER, undefined, '{ type: "tcp", expect: ["2xx"] }'), 11, 29, 'check.expect: only valid with type "http" (type is "tcp")');
  expectOnly(doc(LISTENER, undefined, '{ type: "http", expect: ["2xx", "6xx"] }'), 11, 46, 'check.expect[1]: must be a status class "2xx", "3xx", "4xx" or "5xx" (got "6xx")');
  expectOnly(doc(LISTENER, undefined, '{ type: "http", expect: [] }'), 11, 38, 'check.expect: must list at least one status class');
  assert.ok(loadConfigText(doc(LISTENER, undefined, '{ type: "http", send: "HEAD / HTTP/1.0\\r\\n\\r\\n", expect: ["2XX"] }').join('\n'), FILE).ok);
});

test('15. structural rules: servers, listeners, names', () => {
  const empty = doc(LISTENER);
  empty.splice(6, 4, '      servers: [],'); // line 7
  expectOnly(empty, 7, 16, 'upstreams.imaps.servers: an upstream needs at least one server');
  expectOnly(['{ listeners: [], upstreams: { a: { servers: ["h:1"] } } }'], 1, 14, 'listeners: at least one listener is required');

  const dupName = doc('{ name: "a", listen: 993, upstream: "imaps" }');
  dupName.splice(3, 0, '    { name: "a", listen: 994, upstream: "imaps" },');
  expectOnly(dupName, 4, 13, 'listeners[1].name: duplicate listener name "a" (also listeners[0])');

  // Two unnamed listeners of one upstream: each must be named; a unique name is suggested.
  const unnamed = doc(LISTENER);
  unnamed.splice(3, 0, '    { listen: 994, upstream: "imaps" },');
  assert.deepEqual(issuesOf(unnamed).map((i) => `${i.line}:${i.column} ${i.message}`), [
    '3:5 listeners[0]: needs a "name": it would default to its upstream "imaps", which listeners[1] also uses (e.g. name: "imaps-993")',
    '4:5 listeners[1]: needs a "name": it would default to its upstream "imaps", which listeners[0] also uses (e.g. name: "imaps-994")',
  ]);

  const badName = doc('{ name: "my imaps", listen: 993, upstream: "imaps" }');
  expectOnly(badName, 3, 13, 'listeners[0].name: invalid name "my imaps"');
  const slash = doc(LISTENER);
  slash[5] = '    "imaps/2": {';
  slash[2] = '    { listen: 993, upstream: "imaps/2" },';
  expectOnly(slash, 6, 5, 'upstreams: invalid name "imaps/2"');

  expectOnly(doc('{ listen: 993, upstream: "imaps", listen: 994 }'), 3, 39, 'listeners[0]: duplicate key "listen" (first at line 3)');
});

test('16. control, metrics and stateFile values', () => {
  const add = (line: string): string[] => {
    const lines = doc(LISTENER);
    lines.splice(13, 0, line); // line 14
    return lines;
  };
  expectOnly(add('  metrics: { listen: "9108" },'), 14, 22, 'metrics.listen: invalid address "9108": needs a host and a port');
  expectOnly(add('  control: { socket: "" },'), 14, 22, 'control.socket: must not be empty');
  expectOnly(add(`  control: { socket: "${'s'.repeat(120)}.sock" },`), 14, 22, 'control.socket: socket path too long');
  expectOnly(add('  stateFile: 5,'), 14, 14, 'stateFile: must be a string (got a number)');
  expectOnly(add('  shutdownTimeout: "forever",'), 14, 20, 'shutdownTimeout: invalid duration "forever"');
  expectOnly(add('  log: "stdout",'), 14, 8, 'log: must be an object (got a string)');
});

test('the document root: not an object, empty, BOM', () => {
  expectOnly(['[1, 2]'], 1, 1, 'the config must be an object');
  expectOnly(['  '], 1, 1, 'the config is empty');
  // A BOM is invisible in editors, so it must not shift columns.
  const r = loadConfigText('\uFEFF{ listeners: [], upstreams: {}, bogus: 1 }', FILE);
  assert.ok(!r.ok);
  assert.deepEqual(r.issues.map((i) => `${i.line}:${i.column}`), ['1:14', '1:33']);
});

test('several errors in one file are all reported, sorted by position', () => {
  const lines = [
    '{', //                                                                           1
    '  listeners: [', //                                                              2
    '    { name: "imaps", listen: "0.0.0.0:993", upstream: "imap" },', //             3
    '    { name: "imaps", listen: "993", upstream: "imaps", idleTimeout: "10 minutes" },', // 4
    '  ],', //                                                                        5
    '  upstreams: {', //                                                              6
    '    imaps: {', //                                                                7
    '      balance: "roundrobin",', //                                                8
    '      servers: [', //                                                            9
    '        { address: "mail2.example.net:993", wieght: 2 },', //                   10
    '        { address: "mail2.example.net:993" },', //                             11
    '        { address: "[::1]:99999" },', //                                        12
    '      ],', //                                                                   13
    '      check: { type: "imap", send: "a1 NOOP\\r\\n", rise: 0 },', //            14
    '    },', //                                                                     15
    '    empty: { servers: [] },', //                                                16
    '  },', //                                                                       17
    '  workers: "many",', //                                                         18
    '}', //                                                                          19
  ];
  const got = issuesOf(lines).map((i) => `${i.line}:${i.column} ${i.message}`);
  assert.deepEqual(got, [
    '3:55 listeners[0].upstream: no upstream named "imap" (did you mean "imaps"?)',
    '4:13 listeners[1].name: duplicate listener name "imaps" (also listeners[0])',
    '4:30 listeners[1].listen: address "*:993" conflicts with listeners[0] ("0.0.0.0:993")',
    '4:69 listeners[1].idleTimeout: invalid duration "10 minutes": use e.g. "5s", "2000ms", "10m" or a number of milliseconds',
    '8:16 upstreams.imaps.balance: must be "round_robin", "least_conn" or "ip_hash" (got "roundrobin") (did you mean "round_robin"?)',
    '10:45 upstreams.imaps.servers[0]: unknown key "wieght" (did you mean "weight"?)',
    '11:20 upstreams.imaps.servers[1].address: duplicate server "mail2.example.net:993" (also servers[0])',
    '12:20 upstreams.imaps.servers[2].address: invalid address "[::1]:99999": port 99999 out of range (1-65535)',
    '14:30 upstreams.imaps.check.send: only valid with type "http" (type is "imap")',
    '14:57 upstreams.imaps.check.rise: must be from 1 to 100 (got 0)',
    '16:23 upstreams.empty.servers: an upstream needs at least one server',
    '18:12 workers: must be a number of processes from 1 to 1024 or "auto" (got "many")',
  ]);
  assert.equal(formatIssue(issuesOf(lines)[0]!), `${FILE}:3:55: listeners[0].upstream: no upstream named "imap" (did you mean "imaps"?)`);
});
