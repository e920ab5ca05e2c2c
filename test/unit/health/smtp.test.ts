import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/smtp.js';
import { smtpServer } from '../../fixtures/servers/text.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

test('smtp: multi-line greeting and EHLO pass; EHLO then QUIT were sent; clean close', async (t) => {
  const server = await smtpServer();
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.detail, '"220-mx.test ESMTP"');
  const closed = await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['EHLO tcplb-check', 'QUIT']);
  assert.equal(closed.clean, true);
});

test('smtp: a 554 greeting fails, and the server is still told QUIT', async (t) => {
  const server = await smtpServer({ greeting: '554-5.3.2 no service\r\n554 go away\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_STATUS');
  assert.equal(r.detail, 'expected 2xx greeting, got "554-5.3.2 no service"');
  await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['QUIT']);
});

test('smtp: EHLO refused with 5xx falls back to HELO', async (t) => {
  const server = await smtpServer({ greeting: '220 old.test SMTP\r\n', ehlo: '502 5.5.2 command not recognized\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['EHLO tcplb-check', 'HELO tcplb-check', 'QUIT']);
});

test('smtp: HELO refused too fails', async (t) => {
  const server = await smtpServer({ ehlo: '500 no\r\n', helo: '501 5.5.4 bad syntax\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_STATUS');
  assert.equal(r.detail, 'expected 2xx to HELO, got "501 5.5.4 bad syntax"');
});

test('smtp: a 4xx to EHLO fails without trying HELO', async (t) => {
  const server = await smtpServer({ ehlo: '421 4.3.2 shutting down\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.detail, 'expected 2xx to EHLO, got "421 4.3.2 shutting down"');
  await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['EHLO tcplb-check', 'QUIT']);
});

test('smtp: a greeting split byte by byte still passes', async (t) => {
  const server = await smtpServer({}, { split: true });
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L7_OK');
});

test('smtp: not SMTP is a bad response', async (t) => {
  const server = await smtpServer({ greeting: '+OK POP3 ready\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'expected SMTP greeting, got "+OK POP3 ready"');
});

test('smtp: an endless multi-line greeting is cut off at 100 lines', async (t) => {
  const server = await smtpServer({ greeting: '220-hello\r\n'.repeat(150) });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'greeting longer than 100 lines');
});

test('smtp: the checker names itself by the instance name in EHLO, so a server checked by several balancers logs which one', async (t) => {
  const server = await smtpServer();
  t.after(() => server.close());
  const r = await run(probe, server, { helo: 'lb2.example.net' });
  assert.equal(r.status, 'L7_OK', r.detail);
  await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['EHLO lb2.example.net', 'QUIT']);
});
