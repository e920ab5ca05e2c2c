import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProbeFailure } from '../../../src/core/errors.js';
import { deadline, quote, runProbe } from '../../../src/health/expect.js';
import { silentServer } from '../../fixtures/servers/misbehaving.js';
import { opts } from '../../fixtures/servers/probe-kit.js';

const never = new AbortController().signal;

test('quote: escapes control and non-ASCII bytes, quotes and backslashes', () => {
  assert.equal(quote('+OK ready\r\n'), '"+OK ready\\r\\n"');
  assert.equal(quote(Buffer.from([0, 0x16, 0xff, 0x41])), '"\\x00\\x16\\xffA"');
  assert.equal(quote('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
});

test('quote: at most `max` characters, never cutting an escape', () => {
  assert.equal(quote('a'.repeat(50)), `"${'a'.repeat(40)}..."`);
  assert.equal(quote(`${'a'.repeat(38)}\r\n`), `"${'a'.repeat(38)}\\r..."`);
  assert.equal(quote('abc', 3), '"abc"');
});

test('deadline: fires once after ms; cancel stops it', async () => {
  let fired = 0;
  deadline(10, () => fired++);
  const cancel = deadline(10, () => (fired += 100));
  cancel();
  await new Promise((resolve) => setTimeout(resolve, 40)); // proving a negative: the cancelled one would have fired by now
  assert.equal(fired, 1);
});

test('runProbe: a script error becomes SOCK_ERROR, never a rejection', async () => {
  const r = await runProbe({ host: '127.0.0.1', port: 1 }, opts(), never, async () => {
    throw new TypeError('boom');
  });
  assert.deepEqual([r.ok, r.status, r.detail], [false, 'SOCK_ERROR', 'boom']);
});

test('runProbe: ProbeFailure keeps its status and detail', async () => {
  const r = await runProbe({ host: '127.0.0.1', port: 1 }, opts(), never, async () => {
    throw new ProbeFailure('L7_BAD_STATUS', 'nope');
  });
  assert.deepEqual([r.status, r.detail], ['L7_BAD_STATUS', 'nope']);
});

test('runProbe: an invalid port is a SOCK_ERROR result, not a throw', async () => {
  const r = await runProbe({ host: '127.0.0.1', port: 70000 }, opts(), never, async (s) => {
    await s.connect();
    return { status: 'L4_OK', detail: 'connected' };
  });
  assert.equal(r.status, 'SOCK_ERROR');
});

test('runProbe: settles once; a late script answer after the timeout is ignored', async (t) => {
  const server = await silentServer();
  t.after(() => server.close());
  const r = await runProbe(server, opts({ timeoutMs: 50 }), never, async (s) => {
    await s.connect();
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { status: 'L7_OK', detail: 'too late' };
  });
  assert.equal(r.status, 'L7_TIMEOUT');
  assert.equal(r.detail, 'timeout after 50 ms waiting for a reply');
  assert.equal(r.ok, false);
  assert.equal(typeof r.latencyMs, 'number');
});
