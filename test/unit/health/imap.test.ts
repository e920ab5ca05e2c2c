import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/imap.js';
import { imapServer } from '../../fixtures/servers/text.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

test('imap: * OK greeting passes, then a1 LOGOUT and a clean close', async (t) => {
  const server = await imapServer();
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.detail, '"* OK [CAPABILITY IMAP4rev1] ready"');
  const closed = await serverSawClose(server);
  assert.deepEqual((await server.conn()).lines(), ['a1 LOGOUT']);
  assert.equal(closed.clean, true);
});

test('imap: * PREAUTH passes too (case-insensitive)', async (t) => {
  const server = await imapServer({ greeting: '* preauth logged in as admin\r\n' });
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L7_OK');
});

test('imap: * BYE fails with the quoted greeting', async (t) => {
  const server = await imapServer({ greeting: '* BYE too many connections from your host\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.ok, false);
  assert.equal(r.status, 'L7_BAD_STATUS');
  assert.equal(r.detail, 'expected * OK, got "* BYE too many connections from your hos..."');
});

test('imap: a greeting split byte by byte still passes', async (t) => {
  const server = await imapServer({ split: true });
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L7_OK');
});

test('imap: not IMAP (or * OKAY) is a bad response', async (t) => {
  for (const greeting of ['+OK POP3 ready\r\n', '* OKAY\r\n']) {
    const server = await imapServer({ greeting });
    t.after(() => server.close());
    const r = await run(probe, server);
    assert.equal(r.status, 'L7_BAD_RESPONSE', greeting);
  }
});

test('imap: a greeting cut off by the server closing fails with what arrived', async (t) => {
  const server = await imapServer({ greeting: '* OK no newline', reply: () => undefined });
  t.after(() => server.close());
  server.conn().then((c) => setTimeout(() => c.socket.end(), 20));
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'connection closed waiting for greeting: "* OK no newline"');
});
