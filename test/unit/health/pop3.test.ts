import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/pop3.js';
import { pop3Server } from '../../fixtures/servers/text.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

test('pop3: +OK greeting passes, then QUIT and a clean close', async (t) => {
  const server = await pop3Server();
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.ok, true);
  assert.equal(r.detail, '"+OK POP3 ready"');
  const closed = await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['QUIT']);
  assert.equal(closed.clean, true);
});

test('pop3: -ERR greeting fails with the quoted reply', async (t) => {
  const server = await pop3Server({ greeting: '-ERR busy, try later\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.ok, false);
  assert.equal(r.status, 'L7_BAD_STATUS');
  assert.equal(r.detail, 'expected +OK, got "-ERR busy, try later"');
});

test('pop3: a greeting split byte by byte still passes', async (t) => {
  const server = await pop3Server({ split: true });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
});

test('pop3: something else than POP3 is a bad response', async (t) => {
  const server = await pop3Server({ greeting: '220 smtp.example ESMTP\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'expected +OK, got "220 smtp.example ESMTP"');
});

test('pop3: the preamble (PROXY header) is written first', async (t) => {
  const server = await pop3Server();
  t.after(() => server.close());
  const preamble = Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 5555 110\r\n');
  const r = await run(probe, server, { preamble });
  assert.equal(r.status, 'L7_OK', r.detail);
  await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['PROXY TCP4 10.0.0.1 10.0.0.2 5555 110', 'QUIT']);
});
