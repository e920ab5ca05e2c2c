/**
 * docs/high-availability.md quotes the keepalived configuration the fleet
 * test runs (test/fleet/keepalived.test.ts), verbatim: both come from one
 * template, and this fails when the page's block and the template drift.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOC_EXAMPLE, keepalivedConf } from '../../fleet/keepalived-conf.js';

/** The repository root: the compiled test runs from dist/test/unit/docs/. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const DOC = readFileSync(join(ROOT, 'docs/high-availability.md'), 'utf8');

test('docs/high-availability.md shows the keepalived config the fleet test runs, verbatim', () => {
  const blocks = [...DOC.matchAll(/```(\w*)\n([^]*?)```/g)].filter((m) => m[2]!.includes('vrrp_instance'));
  assert.equal(blocks.length, 1, 'expected exactly one keepalived block in docs/high-availability.md');
  assert.equal(blocks[0]![2], keepalivedConf(DOC_EXAMPLE), 'the page and test/fleet/keepalived-conf.ts differ: regenerate the block from keepalivedConf(DOC_EXAMPLE)');
});

test('the keepalived config in the page matches the timing the page states', () => {
  // The leaveDelay rule quotes interval × fall; keep the prose honest if the template changes.
  const conf = keepalivedConf(DOC_EXAMPLE);
  const interval = Number(/interval (\d+)/.exec(conf)![1]);
  const fall = Number(/fall (\d+)/.exec(conf)![1]);
  assert.match(DOC, new RegExp(`interval ${interval} s × fall ${fall}`));
});
