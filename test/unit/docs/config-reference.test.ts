/**
 * docs/configuration.md must document every key of the config schema, and
 * document nothing else as a key, so the reference cannot drift.
 *
 * Keys come from test/fixtures/configs/valid-full.json5 (load.test.ts
 * guarantees it uses every key) and valid-tls.json5 (the `tls` sections,
 * whose certificate files a fixture loaded from elsewhere would not find), walked with the project's own JSON5 parser,
 * and are cross-checked against the schema's exported specs.
 *
 * Reference convention in the page: a table whose header's first cell is
 * `key` is a reference table; each row's first cell holds one backticked key,
 * relative to the path in backticks in the nearest heading above it (no
 * backticks in the heading: the top level). `upstreams.NAME` is written for
 * the schema path `upstreams.*`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValueNode } from '@humanwhocodes/momoa';
import { loadConfigText } from '../../../src/config/load.js';
import { parseJson5 } from '../../../src/config/parse.js';
import { keyName } from '../../../src/config/readers.js';
import {
  ACCEPT_PROXY_SPEC, ACME_SPEC, CERT_PAIR_SPEC, CHECK_SPEC, CONTROL_SPEC, HEALTH_SPEC, LISTENER_SPEC, LISTENER_TLS_SPEC, LOG_SPEC, METRICS_SPEC, ROOT_SPEC, SERVER_SPEC, UPSTREAM_SPEC, UPSTREAM_TLS_SPEC,
} from '../../../src/config/schema.js';
import { formatIssue } from '../../../src/core/config.js';

/** The repository root: the compiled test runs from dist/test/unit/docs/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const FIXTURE = join(ROOT, 'test/fixtures/configs/valid-full.json5');
const TLS_FIXTURE = join(ROOT, 'test/fixtures/configs/valid-tls.json5');
const DOC = join(ROOT, 'docs/configuration.md');

function join2(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** Every key path used in a JSON5 document: `listeners[].connectTimeout`, `upstreams.*.check.rise`. */
function keyPaths(text: string): Set<string> {
  const parsed = parseJson5(text);
  assert.ok(parsed.ok, parsed.ok ? '' : `fixture does not parse: ${parsed.message}`);
  const out = new Set<string>();
  const walk = (node: ValueNode, path: string): void => {
    if (node.type === 'Array') {
      for (const el of node.elements) walk(el.value, `${path}[]`);
    } else if (node.type === 'Object') {
      for (const m of node.members) {
        // The members of `upstreams` are names chosen by the operator, not keys.
        const child = join2(path, path === 'upstreams' ? '*' : keyName(m));
        out.add(child);
        walk(m.value, child);
      }
    }
  };
  walk(parsed.body, '');
  return out;
}

/** Every key path the schema knows, from the exported specs (nesting written out here). */
function schemaPaths(): Set<string> {
  const out = new Set<string>();
  const add = (prefix: string, spec: object): void => {
    for (const k of Object.keys(spec)) out.add(join2(prefix, k));
  };
  add('', ROOT_SPEC);
  add('listeners[]', LISTENER_SPEC);
  add('listeners[].acceptProxyProtocol', ACCEPT_PROXY_SPEC);
  out.add('upstreams.*');
  add('upstreams.*', UPSTREAM_SPEC);
  add('upstreams.*.servers[]', SERVER_SPEC);
  add('upstreams.*.check', CHECK_SPEC);
  add('listeners[].tls', LISTENER_TLS_SPEC);
  add('listeners[].tls.certificates[]', CERT_PAIR_SPEC);
  add('upstreams.*.tls', UPSTREAM_TLS_SPEC);
  add('log', LOG_SPEC);
  add('control', CONTROL_SPEC);
  add('metrics', METRICS_SPEC);
  add('health', HEALTH_SPEC);
  add('acme', ACME_SPEC);
  return out;
}

/** Split a markdown table row into cells, honouring `\|`. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim());
}

function firstBackticked(text: string): string | undefined {
  return /`([^`]+)`/.exec(text)?.[1];
}

/** Doc spelling -> schema spelling: `upstreams.NAME.check` -> `upstreams.*.check`. */
function normalise(path: string): string {
  return path.replace(/\.NAME(?=\.|\[|$)/g, '.*');
}

interface DocKeys {
  /** Keys in reference-table rows, with their line numbers. */
  rows: Map<string, number>;
  /** Paths named in headings that head a reference table, with their line numbers. */
  headings: Map<string, number>;
}

/** Read the reference tables of configuration.md (see the file comment for the convention). */
function docKeys(md: string): DocKeys {
  const rows = new Map<string, number>();
  const headings = new Map<string, number>();
  let prefix = '';
  let headingLine = 0;
  let inRef = false;
  let inFence = false;
  md.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) inFence = !inFence;
    if (inFence) return;
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (h !== null) {
      const named = firstBackticked(h[1]!);
      prefix = named === undefined ? '' : normalise(named);
      headingLine = i + 1;
      inRef = false;
      return;
    }
    if (!line.trimStart().startsWith('|')) {
      inRef = false;
      return;
    }
    const c = cells(line);
    if (c[0] === 'key') {
      inRef = true;
      if (prefix !== '') headings.set(prefix, headingLine);
      return;
    }
    if (!inRef || /^:?-+:?$/.test(c[0] ?? '')) return;
    const key = firstBackticked(c[0] ?? '');
    assert.ok(key !== undefined, `configuration.md:${i + 1}: reference row without a backticked key: ${line}`);
    const path = normalise(join2(prefix, key));
    assert.ok(!rows.has(path), `configuration.md:${i + 1}: ${path} documented twice (also line ${rows.get(path)})`);
    rows.set(path, i + 1);
  });
  return { rows, headings };
}

const fixtureText = readFileSync(FIXTURE, 'utf8');
const tlsFixtureText = readFileSync(TLS_FIXTURE, 'utf8');
const fixtureKeys = new Set([...keyPaths(fixtureText), ...keyPaths(tlsFixtureText)]);
const doc = docKeys(readFileSync(DOC, 'utf8'));

test('the fixtures are valid and use exactly the keys of the schema', () => {
  const r = loadConfigText(fixtureText, FIXTURE);
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const t = loadConfigText(tlsFixtureText, TLS_FIXTURE);
  assert.ok(t.ok, t.ok ? '' : t.issues.map(formatIssue).join('\n'));
  const schema = schemaPaths();
  const notInFixture = [...schema].filter((k) => !fixtureKeys.has(k));
  const notInSchema = [...fixtureKeys].filter((k) => !schema.has(k));
  assert.deepEqual(notInFixture, [], `schema keys missing from valid-full.json5: ${notInFixture.join(', ')}`);
  assert.deepEqual(notInSchema, [], `valid-full.json5 keys the schema does not know: ${notInSchema.join(', ')}`);
});

test('configuration.md documents every key', () => {
  assert.ok(doc.rows.size > 40, `found only ${doc.rows.size} reference rows: is the table convention broken?`);
  const missing = [...fixtureKeys].filter((k) => !doc.rows.has(k) && !doc.headings.has(k)).sort();
  assert.deepEqual(missing, [], `keys missing from docs/configuration.md reference tables:\n  ${missing.join('\n  ')}`);
});

test('configuration.md documents no key that does not exist', () => {
  const bogus = [
    ...[...doc.rows].filter(([k]) => !fixtureKeys.has(k)).map(([k, line]) => `${k} (line ${line})`),
    // A heading may name an array's elements: `listeners[]` is about the key `listeners`.
    ...[...doc.headings].filter(([k]) => !fixtureKeys.has(k.replace(/\[\]$/, ''))).map(([k, line]) => `${k} (heading, line ${line})`),
  ];
  assert.deepEqual(bogus, [], `docs/configuration.md lists keys the schema does not have:\n  ${bogus.join('\n  ')}`);
});
