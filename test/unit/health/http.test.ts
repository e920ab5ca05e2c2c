import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probe } from '../../../src/health/probes/http.js';
import { httpServer } from '../../fixtures/servers/http.js';
import { run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

test('http: 200 passes with the default request', async (t) => {
  const server = await httpServer();
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_OK', r.detail);
  assert.equal(r.detail, 'HTTP 200');
  assert.equal((await serverSawClose(server)).clean, true);
  assert.equal((await server.conn()).received().toString(), 'GET / HTTP/1.0\r\n\r\n');
});

const cases: Array<[status: number, expect: string[], ok: boolean, detail: string]> = [
  [301, [], true, 'HTTP 301'],
  [503, [], false, 'HTTP 503 not in 2xx,3xx'],
  [404, ['2xx'], false, 'HTTP 404 not in 2xx'],
  [503, ['5xx'], true, 'HTTP 503'],
  [204, ['204'], true, 'HTTP 204'],
  [200, ['204'], false, 'HTTP 200 not in 204'],
];
for (const [status, expect, ok, detail] of cases) {
  test(`http: ${status} with expect [${expect}] -> ${ok ? 'pass' : 'fail'}`, async (t) => {
    const server = await httpServer({ status });
    t.after(() => server.close());
    const r = await run(probe, server, { expect });
    assert.equal(r.ok, ok);
    assert.equal(r.status, ok ? 'L7_OK' : 'L7_BAD_STATUS');
    assert.equal(r.detail, detail);
  });
}

test('http: `send` is sent as is', async (t) => {
  const server = await httpServer();
  t.after(() => server.close());
  const send = 'HEAD /health HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n';
  assert.equal((await run(probe, server, { send })).status, 'L7_OK');
  await serverSawClose(server);
  assert.equal((await server.conn()).received().toString(), send);
});

test('http: a response split byte by byte still passes', async (t) => {
  const server = await httpServer({ split: true });
  t.after(() => server.close());
  assert.equal((await run(probe, server)).status, 'L7_OK');
});

test('http: not HTTP is a bad response', async (t) => {
  const server = await httpServer({ response: 'SSH-2.0-OpenSSH_9.6\r\n' });
  t.after(() => server.close());
  const r = await run(probe, server);
  assert.equal(r.status, 'L7_BAD_RESPONSE');
  assert.equal(r.detail, 'expected HTTP status line, got "SSH-2.0-OpenSSH_9.6"');
});
