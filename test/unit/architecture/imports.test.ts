/**
 * Imports point one way: a folder of src/ may import from its own folder and
 * from folders of a lower rank, never upward or sideways, and nothing in src/
 * reaches outside src/ but packages and node: modules. The rule lives in the
 * RANK table below; docs/architecture.md explains it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Lower ranks are imported by higher ones. */
export const RANK: Readonly<Record<string, number>> = {
  core: 0,
  config: 1,
  balancers: 1,
  log: 1,
  demo: 1,
  health: 2,
  import: 2,
  runtime: 3,
  proxy: 4,
  console: 4,
  control: 4,
  metrics: 4,
  cli: 5,
};

/** The repository's src/ (this file runs from dist/test/unit/architecture/). */
function srcRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return path.join(dir, 'src');
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative module specifiers of a file: static imports, re-exports and dynamic import() with a literal. */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^\s*import\s*['"](\.[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** Every import of src/ that breaks the rule, as `from -> to (why)`. */
export function violations(root: string): string[] {
  const bad: string[] = [];
  for (const file of sourceFiles(root)) {
    const from = path.relative(root, file).split(path.sep)[0]!;
    for (const spec of relativeImports(fs.readFileSync(file, 'utf8'))) {
      const target = path.relative(root, path.resolve(path.dirname(file), spec));
      const where = `${path.relative(root, file)} imports ${spec}`;
      if (target.startsWith('..')) {
        bad.push(`${where}: outside src/`);
        continue;
      }
      const to = target.split(path.sep)[0]!;
      if (to === from) continue;
      const rf = RANK[from];
      const rt = RANK[to];
      if (rf === undefined) bad.push(`${where}: folder "${from}" has no rank in the import test`);
      else if (rt === undefined) bad.push(`${where}: folder "${to}" has no rank in the import test`);
      else if (rt >= rf) bad.push(`${where}: ${from} (rank ${rf}) may not import ${to} (rank ${rt})`);
    }
  }
  return bad;
}

test('the import test sees every kind of import', () => {
  const text = [
    "import { a } from '../proxy/types.js';",
    "import type { B } from './b.js';",
    "export { c } from '../core/c.js';",
    "const d = await import('../../demo/backends.js');",
    "import './side-effect.js';",
    "import fs from 'node:fs';",
  ].join('\n');
  assert.deepEqual(relativeImports(text), ['../proxy/types.js', './b.js', '../core/c.js', '../../demo/backends.js', './side-effect.js']);
});

test('imports point one way: core <- config/balancers/log <- health/import <- runtime <- proxy/console/control/metrics <- cli', () => {
  assert.deepEqual(violations(srcRoot()), []);
});
