import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeLine, LineSplitter, parseRequest } from '../../../src/control/protocol.js';

test('parseRequest accepts every command', () => {
  assert.deepEqual(parseRequest('{"cmd":"status"}'), { ok: true, req: { cmd: 'status' } });
  assert.deepEqual(parseRequest('{"cmd":"reload","id":"r1"}'), { ok: true, req: { cmd: 'reload', id: 'r1' } });
  for (const cmd of ['drain', 'disable', 'enable', 'check', 'kill']) {
    assert.deepEqual(parseRequest(JSON.stringify({ cmd, backend: ' imap/1.2.3.4:143 ', id: 5 })), {
      ok: true,
      req: { cmd, backend: 'imap/1.2.3.4:143', id: 5 },
    });
  }
  assert.deepEqual(parseRequest('{"cmd":"health"}'), { ok: true, req: { cmd: 'health' } });
  assert.deepEqual(parseRequest('{"cmd":"certs","id":2}'), { ok: true, req: { cmd: 'certs', id: 2 } });
  assert.deepEqual(parseRequest('{"cmd":"standby","on":true}'), { ok: true, req: { cmd: 'standby', on: true } });
  assert.deepEqual(parseRequest('{"cmd":"explain","client":" 203.0.113.7 ","listener":"imap"}'), { ok: true, req: { cmd: 'explain', client: '203.0.113.7', listener: 'imap' } });
  assert.deepEqual(parseRequest('{"cmd":"standby","on":"yes","id":3}'), { ok: false, error: '"standby" needs "on": true or false', id: 3 });
  assert.deepEqual(parseRequest('{"cmd":"explain"}'), { ok: false, error: '"explain" needs "client": an IP address' });
  assert.deepEqual(parseRequest('{"cmd":"explain","client":"1.2.3.4","listener":5}'), { ok: false, error: '"explain": "listener" must be a listener name' });
});

test('parseRequest rejects bad requests, keeping the id when it can', () => {
  assert.equal(parseRequest('nope').ok, false);
  assert.equal(parseRequest('null').ok, false);
  assert.equal(parseRequest('"status"').ok, false);
  assert.deepEqual(parseRequest('{"cmd":"drain","id":9}'), { ok: false, error: '"drain" needs "backend": "upstream/host:port"', id: 9 });
  assert.deepEqual(parseRequest('{"cmd":"drain","backend":7}').ok, false);
  assert.match((parseRequest('{"cmd":"__proto__"}') as { error: string }).error, /unknown cmd/);
  assert.match((parseRequest('{"cmd":"toString","backend":"a/b:1"}') as { error: string }).error, /unknown cmd/);
  assert.match((parseRequest('{"cmd":"status","id":NaN}') as { error: string }).error, /malformed JSON/);
});

test('LineSplitter joins chunks, splits lines, drops \\r', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push(Buffer.from('ab')), []);
  assert.equal(s.pendingBytes, 2);
  assert.deepEqual(s.push(Buffer.from('c\r\nd\n\ne')), ['abc', 'd', '']);
  assert.equal(s.flush(), 'e');
  assert.equal(s.flush(), '');
  const euro = Buffer.from('€\n');
  assert.deepEqual(s.push(euro.subarray(0, 1)), []);
  assert.deepEqual(s.push(euro.subarray(1)), ['€']);
});

test('LineSplitter overflows on a long line, complete or not, and stays overflowed', () => {
  const a = new LineSplitter(10);
  assert.deepEqual(a.push(Buffer.from('0123456789\n')), ['0123456789']);
  assert.equal(a.push(Buffer.from('0123456789x\n')), 'overflow');
  assert.equal(a.push(Buffer.from('ok\n')), 'overflow');
  const b = new LineSplitter(10);
  assert.deepEqual(b.push(Buffer.from('012345')), []);
  assert.equal(b.push(Buffer.from('67890')), 'overflow');
  assert.equal(encodeLine({ ok: false, error: 'x' }), '{"ok":false,"error":"x"}\n');
});

test('watch requests: fields checked, interval clamped to 100 ms..60 s', async () => {
  const { clampInterval } = await import('../../../src/control/protocol.js');
  assert.deepEqual(parseRequest('{"cmd":"watch"}'), { ok: true, req: { cmd: 'watch' } });
  assert.deepEqual(parseRequest('{"cmd":"watch","interval":250,"events":false,"id":3}'), { ok: true, req: { cmd: 'watch', id: 3, interval: 250, events: false } });
  assert.match((parseRequest('{"cmd":"watch","snapshots":1}') as { error: string }).error, /"snapshots" must be true or false/);
  assert.deepEqual([clampInterval(undefined), clampInterval(0), clampInterval(-5), clampInterval(250.4), clampInterval(1e12)], [1000, 100, 100, 250, 60_000]);
});
