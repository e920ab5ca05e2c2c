import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, cidrProblem, formatListen, parseAddress, parseHostPort } from '../../../src/config/address.js';

test('parseHostPort: host:port, [v6]:port, bare port and *:port', () => {
  assert.deepEqual(parseHostPort('mail.example.net:993'), { host: 'mail.example.net', port: 993 });
  assert.deepEqual(parseHostPort('10.0.0.1:143'), { host: '10.0.0.1', port: 143 });
  assert.deepEqual(parseHostPort('0.0.0.0:993'), { host: '0.0.0.0', port: 993 });
  assert.deepEqual(parseHostPort('[::1]:993'), { host: '::1', port: 993 });
  assert.deepEqual(parseHostPort('[2001:db8::1]:65535'), { host: '2001:db8::1', port: 65535 });
  assert.deepEqual(parseHostPort('993'), { host: '', port: 993 });
  assert.deepEqual(parseHostPort(993), { host: '', port: 993 });
  assert.deepEqual(parseHostPort('*:993'), { host: '', port: 993 });
  assert.deepEqual(parseHostPort('localhost:1'), { host: 'localhost', port: 1 });
  assert.deepEqual(parseHostPort('backend_1:80'), { host: 'backend_1', port: 80 });
});

test('parseHostPort: rejects malformed addresses', () => {
  const bad: Array<string | number> = [
    '', ':993', 'host', 'host:', 'host:0', 'host:65536', 'host:99999999', 'host:http', '0', 0, 65536, 1.5, -1,
    '::1:993', '::1', '[::1]', '[::1]993', '[::g]:993', '[::1:993', '999.1.1.1:80', '1.2.3:80', 'a b:80', '-bad:80',
    'bad-:80', 'a..b:80', '*:0', 'x'.repeat(300) + ':80', 'host:+80', 'host: 80',
  ];
  for (const s of bad) assert.equal(parseHostPort(s), undefined, JSON.stringify(s));
});

test('parseAddress: reasons say what is wrong; servers need a host', () => {
  const reason = (s: string | number, all = true): string => {
    const r = parseAddress(s, all);
    assert.equal(r.ok, false, String(s));
    return r.ok ? '' : r.reason;
  };
  assert.match(reason('h:70000'), /port 70000 out of range \(1-65535\)/);
  assert.match(reason('::1:993'), /IPv6 addresses need brackets, e.g. "\[::1\]:993"/);
  assert.match(reason('2001:db8::1'), /need brackets and a port/);
  assert.match(reason('[::g]:1'), /invalid IPv6 address "::g"/);
  assert.match(reason('host'), /missing port/);
  assert.match(reason('993', false), /needs a host and a port/);
  assert.match(reason(993, false), /needs a host and a port/);
  assert.match(reason('*:993', false), /specific host/);
  assert.match(reason('300.1.1.1:5'), /invalid IPv4 address "300.1.1.1"/);
  assert.match(reason('a b:5'), /invalid host name "a b"/);
});

test('canonicalHost and formatListen', () => {
  assert.equal(canonicalHost('Mail.Example.NET'), 'mail.example.net');
  assert.equal(canonicalHost('2001:DB8::0001'), '2001:db8::1');
  assert.equal(canonicalHost('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalHost('10.0.0.1'), '10.0.0.1');
  assert.equal(formatListen({ host: '', port: 993 }), '*:993');
  assert.equal(formatListen({ host: '::1', port: 993 }), '[::1]:993');
  assert.equal(formatListen({ host: '127.0.0.1', port: 9108 }), '127.0.0.1:9108');
});

test('cidrProblem: v4 and v6 CIDRs and single addresses', () => {
  for (const ok of ['10.0.0.0/8', '0.0.0.0/0', '192.0.2.7', '192.0.2.7/32', '10.1.2.3/8', '::1', '::/0', '2001:db8::/32', '::ffff:10.0.0.0/104', 'fe80::/10']) {
    assert.equal(cidrProblem(ok), undefined, ok);
  }
  assert.match(cidrProblem('10.0.0.0/33')!, /invalid prefix length in "10.0.0.0\/33" \(0-32 for IPv4\)/);
  assert.match(cidrProblem('::/129')!, /0-128 for IPv6/);
  assert.match(cidrProblem('10.0.0.0/')!, /invalid prefix length/);
  assert.match(cidrProblem('10.0.0.0/a')!, /invalid prefix length/);
  assert.match(cidrProblem('10.0.0/8')!, /invalid address in CIDR/);
  assert.match(cidrProblem('example.com')!, /invalid address in CIDR/);
  assert.match(cidrProblem('')!, /invalid address in CIDR/);
});
