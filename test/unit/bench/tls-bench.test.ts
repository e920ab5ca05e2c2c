/**
 * The pure parts of the TLS bench (bench/lib/tls-bench.ts): the rendered
 * peer configs carry the run's certificates, ports and engine (and every
 * placeholder is filled), the generators' output is read right (and
 * unreadable output is an error, not a zero), and the ratio table puts
 * "better than HAProxy" above 1.00x for rates and CPU costs alike.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  gbitPerSecond,
  parseSClient,
  parseSTime,
  parseTimes,
  withTimes,
  parseWrkTotals,
  renderTlsConfig,
  TLS_COLUMNS,
  TLS_TEMPLATES,
  TlsResults,
  tlsTables,
  wrkArgs,
  type TlsVars,
} from '../../../bench/lib/tls-bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const vars: TlsVars = {
  listenHost: '127.0.0.1',
  ecdsaPort: 21001,
  rsaPort: 21002,
  backend: '127.0.0.2:21003',
  dir: '/tmp/x/col',
  certs: { ecdsaCert: '/p/ecdsa.pem', ecdsaKey: '/p/ecdsa.key', ecdsaPem: '/p/ecdsa-haproxy.pem', rsaCert: '/p/rsa.pem', rsaKey: '/p/rsa.key', rsaPem: '/p/rsa-haproxy.pem' },
  nbthread: 2,
  nofile: 20000,
  maxconn: 9500,
  loadStream: 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
};
const template = (c: (typeof TLS_COLUMNS)[number]): string => fs.readFileSync(path.join(ROOT, 'bench/configs', TLS_TEMPLATES[c]), 'utf8');

test('every column renders with no placeholder left, both ports and its own certificates', () => {
  for (const c of TLS_COLUMNS) {
    const text = renderTlsConfig(c, template(c), vars);
    assert.doesNotMatch(text, /\{\{[A-Z]/, c);
    assert.match(text, /127\.0\.0\.1:21001/, c);
    assert.match(text, /127\.0\.0\.1:21002/, c);
    if (c === 'haproxy' || c === 'ceiling') {
      assert.match(text, /ssl crt \/p\/ecdsa-haproxy\.pem/);
      assert.match(text, /ssl crt \/p\/rsa-haproxy\.pem/);
      assert.match(text, /nbthread 2/);
    } else {
      assert.match(text, /\/p\/ecdsa\.pem/, c);
      assert.match(text, /\/p\/rsa\.key/, c);
    }
    if (c !== 'ceiling') assert.match(text, /127\.0\.0\.2:21003/, c);
  }
  assert.match(renderTlsConfig('ceiling', template('ceiling'), vars), /string "x{100}"/, 'the ceiling answers 100 bytes, as the backend');
  assert.match(renderTlsConfig('nginx', template('nginx'), vars), /ssl_protocols TLSv1\.2 TLSv1\.3;/, 'nginx 1.22 offers TLS 1.3 as the others do');
  assert.match(renderTlsConfig('tcplb-js', template('tcplb-js'), vars), /engine: "js", workers: 1,/);
  assert.match(renderTlsConfig('tcplb-js2', template('tcplb-js2'), vars), /engine: "js", workers: 2,/);
  assert.match(renderTlsConfig('tcplb-native', template('tcplb-native'), vars), /engine: "native", workers: "auto",/);
});

test('the tcplb config it renders loads: two TLS listeners with the run\'s certificates, the column\'s engine', async (t) => {
  const { loadConfigText } = await import('../../../src/config/load.js');
  const { makePki } = await import('../../fixtures/pki.js');
  const pki = makePki();
  t.after(() => pki.cleanup());
  const e = pki.leaf('ecdsa', ['bench.test']);
  const r2 = pki.leaf('rsa', ['bench.test']);
  const certs = { ...vars.certs, ecdsaCert: e.cert, ecdsaKey: e.key, rsaCert: r2.cert, rsaKey: r2.key };
  const r = loadConfigText(renderTlsConfig('tcplb-js2', template('tcplb-js2'), { ...vars, certs }), path.join(pki.dir, 'config.json5'));
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.config.workers, 2);
  assert.deepEqual(r.config.listeners.map((l) => [l.name, l.tls?.certificates.length]), [['tls-ecdsa', 1], ['tls-rsa', 1]]);
});

test('s_time: the connections and bytes per connection of its "real seconds" line; anything else is an error', () => {
  const out = 'Collecting connection statistics for 5 seconds\n****\n\n2104 connections in 1.34s; 1570.15 connections/user sec, bytes read 197776\n2104 connections in 4 real seconds, 94 bytes read per connection\n';
  assert.deepEqual(parseSTime(out), { connections: 2104, bytesPerConnection: 94 });
  assert.throws(() => parseSTime('ERROR\nconnect:errno=111\n'), /unreadable s_time output: connect:errno=111/);
});

test('wrk totals from the Lua done() line; Gbit/s from bytes over the duration', () => {
  const t = parseWrkTotals('Running 5s test\n...\nWRK_TOTALS requests=4000 bytes=4194304000 duration_us=5000000 errors=3 status=1\n');
  assert.deepEqual(t, { requests: 4000, bytes: 4194304000, durationUs: 5000000, errors: 3, status: 1 });
  assert.equal(gbitPerSecond(t).toFixed(3), '6.711');
  assert.throws(() => parseWrkTotals('unable to connect to 127.0.0.1:1 Connection refused'), /unreadable wrk output/);
  assert.deepEqual(wrkArgs({ threads: 2, connections: 8, seconds: 5, url: 'https://h:1/100b', close: true, script: 's.lua' }), [
    '-t2', '-c8', '-d5s', '--timeout', '5s', '-s', 's.lua', '-H', 'Connection: close', 'https://h:1/100b',
  ]);
});

test('s_client: New or Reused, the protocol and cipher', () => {
  assert.deepEqual(parseSClient('---\nReused, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384\nServer public key is 256 bit\n'), { reused: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
  assert.equal(parseSClient('New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384\n').reused, false);
});

test('tables: medians with [min-max], failures named, ratios above 1.00x mean better than HAProxy for rates and costs alike', () => {
  const r = new TlsResults();
  for (const v of [400, 500, 450]) r.add('fullEcdsa', 'haproxy', v);
  for (const v of [200, 250, 300]) r.add('fullEcdsa', 'tcplb-js', v);
  r.add('cpuFullEcdsa', 'haproxy', 600);
  r.add('cpuFullEcdsa', 'tcplb-js', 1200);
  r.fail('fullEcdsa', 'nginx', 'config rejected: no stream module');
  const { main, ratios } = tlsTables(r, ['haproxy', 'nginx', 'tcplb-js']);
  const row = main.rows.find((x) => x[0] === 'full handshakes, ECDSA P-256')!;
  assert.deepEqual(row.slice(3), ['450 [400-500]', 'n/a (config rejected: no stream module)', '250 [200-300]']);
  assert.ok(ratios);
  assert.deepEqual(ratios.header, ['workload', 'nginx vs haproxy', 'tcplb-js vs haproxy']);
  assert.deepEqual(ratios.rows.find((x) => x[0] === 'full handshakes, ECDSA P-256')!.slice(1), ['—', '0.56x']);
  assert.deepEqual(ratios.rows.find((x) => x[0] === 'server CPU per full handshake, ECDSA')!.slice(1), ['—', '0.50x']);
  assert.equal(tlsTables(r, ['nginx', 'tcplb-js']).ratios, undefined, 'no HAProxy column: no ratios');
});

test('the generator CPU: user + system seconds of the children, from the times builtin of bash, after the marker', () => {
  assert.equal(parseTimes('some s_time noise\nTIMES\n0m0.004s 0m0.002s\n1m2.500s 0m0.250s\n'), 62.75);
  assert.throws(() => parseTimes('killed\n'), /no CPU times from the generator: killed/);
  assert.deepEqual(withTimes('wrk', ['-t1', 'https://h/']).slice(2), ['bash', 'wrk', '-t1', 'https://h/']);
});
