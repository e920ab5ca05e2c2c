/** The bench's ratio table: per-peer ratios and best/best over every other proxy's column, tuned ones included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { maxPipes, PEER_TEMPLATES, PEERS, render, toolOf } from '../../../bench/lib/peers.js';
import { buildTables, ROWS, Results, type RowDef } from '../../../bench/lib/report.js';

const rows: RowDef[] = ROWS.filter((r) => r.key === 'conn_rps' || r.key === 'conn_p99');

function results(cells: Record<string, [number, number]>): Results {
  const r = new Results();
  for (const [col, [rps, p99]] of Object.entries(cells)) {
    r.add('conn_rps', col as never, rps);
    r.add('conn_p99', col as never, p99);
  }
  return r;
}

test('best/best takes the best of all the other proxies per row, a tuned column included, each row on its own', () => {
  // haproxy-tuned has the best rate, nginx (defaults) the best p99: each row picks its own best peer
  const r = results({
    nginx: [1000, 2.0],
    haproxy: [1100, 3.0],
    'nginx-tuned': [1200, 2.5],
    'haproxy-tuned': [1500, 2.2],
    'tcplb-native': [1800, 2.1],
    'tcplb-js': [700, 5.0],
  });
  const cols = ['nginx', 'haproxy', 'nginx-tuned', 'haproxy-tuned', 'tcplb-js', 'tcplb-native'] as const;
  const t = buildTables(r, cols, rows).ratios!;
  assert.ok(t, 'a ratio table');
  const best = t.header.indexOf('best/best');
  assert.equal(best, t.header.length - 1);
  const rate = t.rows.find((x) => x[0] === rows[0]!.label)!;
  assert.equal(rate[best], '1.20x native/haproxy-tuned'); // 1800 / 1500
  const p99 = t.rows.find((x) => x[0] === rows[1]!.label)!;
  assert.equal(p99[best], '1.05x native/nginx'); // lower is better: 2.1 / 2.0
  // a ratio column per tcplb column and proxy column, tuned ones too
  for (const h of ['native/nginx', 'native/haproxy', 'native/nginx-tuned', 'native/haproxy-tuned', 'js/haproxy-tuned']) assert.ok(t.header.includes(h), h);
  assert.equal(rate[t.header.indexOf('native/haproxy')], '1.64x');
});

test('best/best appears with any two proxy columns (a tuned pair alone counts), not with one', () => {
  const two = buildTables(results({ haproxy: [1000, 2], 'haproxy-tuned': [1250, 2], 'tcplb-native': [1000, 2] }), ['haproxy', 'haproxy-tuned', 'tcplb-native'], rows).ratios!;
  const best = two.header.indexOf('best/best');
  assert.ok(best > 0);
  assert.equal(two.rows[0]![best], '0.80x native/haproxy-tuned');
  const one = buildTables(results({ haproxy: [1000, 2], 'tcplb-native': [1000, 2] }), ['haproxy', 'tcplb-native'], rows).ratios!;
  assert.ok(!one.header.includes('best/best'));
});

test('tuned columns: a template each, run with the right program, placeholders all filled', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
  const names = (file: string): Set<string> =>
    new Set([...fs.readFileSync(path.join(root, 'bench/configs', file), 'utf8').matchAll(/\{\{([A-Z][A-Z_]*)\}\}/g)].map((m) => m[1]!));
  // a tuned template needs nothing its default twin's launcher does not fill (haproxy-tuned: + MAXPIPES)
  for (const [tuned, plain, extra] of [
    ['nginx-tuned', 'nginx', []],
    ['haproxy-tuned', 'haproxy', ['MAXPIPES']],
  ] as const) {
    assert.ok(PEERS.includes(tuned));
    const have = new Set([...names(PEER_TEMPLATES[plain]), ...extra]);
    const missing = [...names(PEER_TEMPLATES[tuned])].filter((n) => !have.has(n));
    assert.deepEqual(missing, [], `${tuned}: placeholders no launcher fills`);
    assert.throws(() => render('{{NOPE}}', {}), /\{\{NOPE\}\} has no value/);
  }
  assert.equal(toolOf('nginx-tuned'), 'nginx');
  assert.equal(toolOf('haproxy-tuned'), 'haproxy');
  assert.equal(toolOf('tcplb-native'), undefined);
  const hap = fs.readFileSync(path.join(root, 'bench/configs/haproxy-tuned.cfg'), 'utf8');
  assert.match(hap, /^\s*option splice-auto/m);
  const ngx = fs.readFileSync(path.join(root, 'bench/configs/nginx-tuned.conf'), 'utf8');
  assert.equal((ngx.match(/^\s*server \{ listen \S+ reuseport;/gm) ?? []).length, 3);
});

test('haproxy-tuned maxpipes: pipes fit the open-files limit beside 2 descriptors per connection', () => {
  assert.equal(maxPipes(20_000, 9_500), 400); // 20,000 - 19,000 - 200 = 800 descriptors, 2 per pipe
  assert.ok(2 * 9_500 + 2 * maxPipes(20_000, 9_500) <= 20_000 - 200);
  assert.equal(maxPipes(2_000, 1_000), 16); // never below 16
});
