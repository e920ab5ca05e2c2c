import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileAcl } from '../../../src/proxy/acl.js';

interface Case {
  name: string;
  allow: string[];
  deny: string[];
  admitted: string[];
  refused: string[];
}

const cases: Case[] = [
  {
    name: 'both lists empty: everyone',
    allow: [],
    deny: [],
    admitted: ['10.0.0.1', '::1', '::ffff:1.2.3.4', '255.255.255.255', 'not-an-ip'],
    refused: [],
  },
  {
    name: 'deny only: everyone but the denied',
    allow: [],
    deny: ['10.0.0.0/8', '192.168.1.7'],
    admitted: ['11.0.0.1', '192.168.1.8', '::1'],
    refused: ['10.0.0.1', '10.255.255.255', '192.168.1.7'],
  },
  {
    name: 'allow only: nobody else',
    allow: ['127.0.0.1', '172.16.0.0/12'],
    deny: [],
    admitted: ['127.0.0.1', '172.16.0.1', '172.31.255.255'],
    refused: ['127.0.0.2', '172.32.0.0', '::1', '8.8.8.8'],
  },
  {
    name: 'deny wins over allow',
    allow: ['10.0.0.0/8'],
    deny: ['10.1.0.0/16', '10.2.3.4'],
    admitted: ['10.0.0.1', '10.2.3.5'],
    refused: ['10.1.2.3', '10.2.3.4', '11.0.0.1'],
  },
  {
    name: 'IPv6 addresses and CIDRs',
    allow: ['2001:db8::/32', '::1'],
    deny: ['2001:db8:bad::/48'],
    admitted: ['2001:db8::1', '2001:db8:ffff::1', '::1'],
    refused: ['2001:db9::1', '2001:db8:bad::1', '::2', '127.0.0.1'],
  },
  {
    name: 'v4-mapped clients match IPv4 rules',
    allow: ['10.0.0.0/8'],
    deny: ['10.9.9.9'],
    admitted: ['::ffff:10.1.2.3', '::FFFF:10.1.2.3', '10.1.2.3'],
    refused: ['::ffff:10.9.9.9', '::ffff:11.0.0.1'],
  },
  {
    name: 'v4-mapped rules match IPv4 clients',
    allow: ['::ffff:10.0.0.0/104', '::ffff:192.0.2.1'],
    deny: [],
    admitted: ['10.4.5.6', '::ffff:10.4.5.6', '192.0.2.1'],
    refused: ['11.4.5.6', '192.0.2.2'],
  },
  {
    name: '/0 and host-bits-set CIDRs',
    allow: ['0.0.0.0/0'],
    deny: ['10.0.0.1/8'],
    admitted: ['1.1.1.1', '255.255.255.255'],
    refused: ['10.200.0.1', '::1'],
  },
  {
    name: 'unparsable entries are ignored, valid ones still apply',
    allow: ['garbage', '10.0.0.0/33', '10.0.0.0/x', '', '1.2.3.4/', '10.0.0.0/8', ' 192.0.2.5 '],
    deny: ['also garbage', '::/129', '10.1.0.0/16'],
    admitted: ['10.0.0.1', '192.0.2.5'],
    refused: ['10.1.0.1', '11.0.0.1'],
  },
  {
    name: 'an allow list with only unparsable entries stays closed',
    allow: ['garbage'],
    deny: [],
    admitted: [],
    refused: ['10.0.0.1', '::1'],
  },
  {
    name: 'a deny list with only unparsable entries denies nobody',
    allow: [],
    deny: ['garbage', '300.1.1.1'],
    admitted: ['10.0.0.1', '300.1.1.1'],
    refused: [],
  },
  {
    name: 'unparsable client address is refused when rules exist',
    allow: [],
    deny: ['10.0.0.0/8'],
    admitted: [],
    refused: ['', 'garbage', '10.0.0', '::ffff:garbage'],
  },
];

for (const c of cases) {
  test(`acl: ${c.name}`, () => {
    const check = compileAcl(c.allow, c.deny);
    for (const ip of c.admitted) assert.equal(check(ip), true, `${ip} should be admitted`);
    for (const ip of c.refused) assert.equal(check(ip), false, `${ip} should be refused`);
  });
}

test('acl: empty lists compile to one shared constant function', () => {
  assert.equal(compileAcl([], []), compileAcl([], []));
});

test('acl: compiling never throws, checking never throws', () => {
  const weird = [undefined, null, 42, '::ffff:', '/', '/8', '1.2.3.4/-1', 'fe80::1%eth0', '[::1]'] as unknown as string[];
  const check = compileAcl(weird, weird);
  for (const ip of [...weird, 'fe80::1%eth0']) assert.doesNotThrow(() => check(ip));
});
