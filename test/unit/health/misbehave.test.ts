/**
 * The Probe contract, checked for every check type against the same misbehaving
 * backends: silent, refusing, aborted, endless / 1 MB / binary floods.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK_TYPES, type CheckType, type ProbeStatus } from '../../../src/core/types.js';
import { probeFor } from '../../../src/health/registry.js';
import type { ProbeOptions } from '../../../src/health/types.js';
import { floodServer, noise, silentServer } from '../../fixtures/servers/misbehaving.js';
import { reservePort, run, serverSawClose } from '../../fixtures/servers/probe-kit.js';

/** What looks like the start of a good answer, so a probe must not simply give up on byte one. */
const PREFIX: Record<CheckType, string | Buffer> = {
  tcp: '',
  ssl_hello: Buffer.from([22, 3, 3, 0xff, 0xff, 11]), // a handshake record, but a Certificate
  http: 'HTTP/1.0 200 ',
  smtp: '220 ',
  mysql: Buffer.from([0xff, 0xff, 0xff, 0, 10]), // a 16 MB "handshake"
  pop3: '+OK ',
  imap: '* OK ',
};

/** tcp would pass against a silent server; with TLS it has something to wait for. */
const SILENT: Record<CheckType, [Partial<ProbeOptions>, ProbeStatus]> = {
  tcp: [{ tls: true }, 'L6_TIMEOUT'],
  ssl_hello: [{}, 'L6_TIMEOUT'],
  http: [{}, 'L7_TIMEOUT'],
  smtp: [{}, 'L7_TIMEOUT'],
  mysql: [{}, 'L7_TIMEOUT'],
  pop3: [{}, 'L7_TIMEOUT'],
  imap: [{}, 'L7_TIMEOUT'],
};

const TIMEOUT = 300;
const SLACK = 200;

for (const type of CHECK_TYPES) {
  const probe = probeFor(type);
  describe(`${type}: misbehaving backends`, () => {
    test('silent server: times out within timeout + 200 ms', async (t) => {
      const server = await silentServer();
      t.after(() => server.close());
      const [extra, status] = SILENT[type];
      const r = await run(probe, server, { timeoutMs: TIMEOUT, ...extra });
      assert.equal(r.status, status, r.detail);
      assert.equal(r.ok, false);
      assert.match(r.detail, /^timeout after 300 ms waiting for /);
      assert.ok(r.elapsedMs >= TIMEOUT - 5 && r.elapsedMs < TIMEOUT + SLACK, `settled after ${r.elapsedMs} ms`);
      await serverSawClose(server);
    });

    test('refused port: L4_REFUSED at once', async () => {
      const r = await run(probe, { host: '127.0.0.1', port: await reservePort() }, { timeoutMs: 2000 });
      assert.equal(r.status, 'L4_REFUSED');
      assert.equal(r.detail, 'connection refused');
      assert.ok(r.elapsedMs < 200, `settled after ${r.elapsedMs} ms`);
    });

    test('abort: ABORTED at once, connection dropped', async (t) => {
      const server = await silentServer();
      t.after(() => server.close());
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      const r = await run(probe, server, { timeoutMs: 5000, tls: type === 'tcp' }, ac.signal);
      assert.equal(r.status, 'ABORTED');
      assert.ok(r.elapsedMs < 150, `settled after ${r.elapsedMs} ms`);
      await serverSawClose(server);
    });

    test('already aborted signal: ABORTED without connecting', async (t) => {
      const server = await silentServer();
      t.after(() => server.close());
      const r = await run(probe, server, {}, AbortSignal.abort());
      assert.equal(r.status, 'ABORTED');
      await new Promise((resolve) => setTimeout(resolve, 20)); // proving a negative: no connection arrives
      assert.equal(server.conns.length, 0);
    });

    const floods: Array<[string, () => ReturnType<typeof floodServer>]> = [
      ['endless greeting', () => floodServer(PREFIX[type])],
      ['1 MB greeting', () => floodServer(PREFIX[type], { limit: 1024 * 1024 })],
      ['binary noise', () => floodServer(noise(16), { binary: true })],
    ];
    for (const [name, start] of floods) {
      test(`${name}: decides, stops reading, and the server sees the close`, async (t) => {
        const server = await start();
        t.after(() => server.close());
        const r = await run(probe, server, { timeoutMs: 1000 });
        assert.ok(r.elapsedMs < 1000 + SLACK, `settled after ${r.elapsedMs} ms`);
        // Only tcp passes: it asks nothing of the bytes.
        assert.equal(r.ok, type === 'tcp', `${r.status} ${r.detail}`);
        await serverSawClose(server);
        assert.ok(server.sent() < 8 * 1024 * 1024, `server could send ${server.sent()} bytes`);
      });
    }
  });
}
