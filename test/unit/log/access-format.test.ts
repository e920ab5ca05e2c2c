import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAccess, isoTime } from '../../../src/log/logger.js';

test('access-log times read exactly as toISOString, across second, day and year boundaries and out of order', () => {
  const times = [0, 1, 999, 1000, 1001, 1_700_000_000_000, 1_700_000_000_999, 1_700_000_001_000, 1_699_999_999_999, 1_704_067_199_999, 1_704_067_200_000, 1_704_067_200_010, 1_704_067_200_100, 1_704_067_200_123.9, 253_402_300_799_999];
  for (const t of times) assert.equal(isoTime(t), new Date(Math.floor(t)).toISOString(), `time ${t}`);
  let t = 1_750_000_000_000;
  for (let i = 0; i < 5000; i++) {
    t += Math.floor(Math.random() * 700) - 100; // mostly forward, sometimes back (records finish out of order)
    assert.equal(isoTime(t), new Date(t).toISOString());
  }
});

test('an access-log line names time, listener, client, backend, bytes, duration and reason', () => {
  const r = { start: 1_704_067_199_500, durationMs: 1234, listener: 'imap', client: '2001:db8::7', clientPort: 50123, backend: 'imap/10.0.0.2:143', bytesIn: 42, bytesOut: 4096, reason: 'closed' as const, detail: '' };
  assert.equal(formatAccess(r, 'text'), '2024-01-01T00:00:00.734Z imap [2001:db8::7]:50123 imap/10.0.0.2:143 42 4096 1.234s closed');
  assert.deepEqual(JSON.parse(formatAccess({ ...r, detail: 'ECONNRESET from backend' }, 'json')), {
    time: '2024-01-01T00:00:00.734Z',
    listener: 'imap',
    client: '2001:db8::7',
    clientPort: 50123,
    backend: 'imap/10.0.0.2:143',
    bytesIn: 42,
    bytesOut: 4096,
    durationMs: 1234,
    reason: 'closed',
    detail: 'ECONNRESET from backend',
  });
});

test('a session where the balancer spoke TLS says where: tls=client, client+backend or backend after the reason', () => {
  const r = { start: 1_704_067_199_500, durationMs: 1234, listener: 'imap', client: '192.0.2.7', clientPort: 50123, backend: 'imap/10.0.0.2:143', bytesIn: 42, bytesOut: 4096, reason: 'closed' as const, detail: '' };
  assert.equal(formatAccess({ ...r, tls: 'client+backend' }, 'text'), '2024-01-01T00:00:00.734Z imap 192.0.2.7:50123 imap/10.0.0.2:143 42 4096 1.234s closed tls=client+backend');
  assert.equal(formatAccess({ ...r, tls: 'client', reason: 'tls_failed', detail: 'handshake timeout' }, 'text'), '2024-01-01T00:00:00.734Z imap 192.0.2.7:50123 imap/10.0.0.2:143 42 4096 1.234s tls_failed tls=client "handshake timeout"');
  assert.equal(JSON.parse(formatAccess({ ...r, tls: 'backend' }, 'json')).tls, 'backend');
  // No TLS: the line keeps its shape.
  assert.equal(formatAccess({ ...r, tls: '-' }, 'text'), '2024-01-01T00:00:00.734Z imap 192.0.2.7:50123 imap/10.0.0.2:143 42 4096 1.234s closed');
  assert.equal(JSON.parse(formatAccess({ ...r, tls: '-' }, 'json')).tls, undefined);
});
