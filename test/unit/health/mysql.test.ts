import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/mysql.js';
import { mysqlError, mysqlHandshake, mysqlPacket, mysqlServer } from '../../fixtures/servers/mysql.js';
import { blobServer } from '../../fixtures/servers/misbehaving.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

test('mysql: a protocol-10 handshake passes and names the version; clean close', async (t) => {
  const server = await mysqlServer(mysqlHandshake('10.11.6-MariaDB'));
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.detail, 'MySQL 10.11.6-MariaDB');
  assert.equal((await serverSawClose(server)).clean, true);
  assert.equal((await server.conn()).received().length, 0, 'the probe sends nothing');
});

test('mysql: an ERR packet fails with its code and message', async (t) => {
  const server = await mysqlServer(mysqlError(1040, 'Too many connections'));
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_STATUS');
  assert.equal(r.detail, 'MySQL error 1040: Too many connections');
});

test('mysql: an ERR packet with #SQLSTATE drops the state', async (t) => {
  const payload = Buffer.concat([Buffer.from([0xff, 0x69, 0x04]), Buffer.from("#HY000Host '10.0.0.9' is not allowed")]);
  const server = await mysqlServer(mysqlPacket(payload));
  t.after(() => server.close());
  assert.equal((await run(probe, server)).detail, "MySQL error 1129: Host '10.0.0.9' is not allowed");
});

test('mysql: protocol 9 is not accepted', async (t) => {
  const server = await mysqlServer(mysqlHandshake('3.22.0', 9));
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'expected MySQL protocol 10, got 9');
});

test('mysql: a text greeting is not MySQL', async (t) => {
  const server = await blobServer('220 mx.test ESMTP\r\n');
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'expected MySQL handshake, got "220 mx.test ESMTP\\r\\n"');
});

test('mysql: a handshake split byte by byte still passes', async (t) => {
  const server = await mysqlServer(mysqlHandshake(), { split: true });
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L7_OK');
});

test('mysql: a packet cut short by a close fails', async (t) => {
  const server = await blobServer(mysqlHandshake().subarray(0, 20), true);
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.match(r.detail, /^connection closed waiting for handshake packet: "/);
});
