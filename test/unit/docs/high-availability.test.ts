/**
 * docs/high-availability.md quotes the BIRD and ExaBGP configs the fleet
 * test runs (test/fleet/bgp.test.ts); both come from bgp-configs.ts. The
 * `conf` blocks of the page's BGP section must be exactly those configs,
 * rendered for the documented example, in order: a config edited in one
 * place and not the other fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DOC_SITE, birdConf, exabgpConf, exabgpEnv } from '../../fleet/bgp-configs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const HEADING = '## Active/active: BGP and ECMP';

/** The section under HEADING, up to the next `## ` heading. */
function section(page: string): string {
  const start = page.indexOf(`\n${HEADING}\n`);
  assert.ok(start >= 0, `docs/high-availability.md has no "${HEADING}" section`);
  const rest = page.slice(start + HEADING.length + 2);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The bodies of the ```conf fenced blocks, in order. */
function confBlocks(text: string): string[] {
  return [...text.matchAll(/^```conf\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

test('docs/high-availability.md quotes the fleet test\'s BIRD and ExaBGP configs verbatim', () => {
  const page = readFileSync(join(ROOT, 'docs/high-availability.md'), 'utf8');
  const blocks = confBlocks(section(page));
  const expected = [exabgpEnv(), exabgpConf(DOC_SITE, 'lb1'), birdConf(DOC_SITE)];
  const names = ['exabgp.env', 'exabgp.conf', 'bird.conf'];
  assert.equal(blocks.length, expected.length, `expected ${expected.length} conf blocks (${names.join(', ')}), found ${blocks.length}`);
  expected.forEach((want, k) => assert.equal(blocks[k], want, `the page's ${names[k]} differs from test/fleet/bgp-configs.ts`));
});

test('the documented example is the lab\'s topology: the configs name the instances and the VIP', () => {
  const bird = birdConf(DOC_SITE);
  for (const i of DOC_SITE.instances) assert.match(bird, new RegExp(`neighbor ${i.ip.replace(/\./g, '\\.')} as ${DOC_SITE.lbAs};`));
  assert.match(exabgpConf(DOC_SITE, 'lb1'), /run tcplb-console health --socket \/run\/tcplb\/tcplb\.sock --exabgp 10\.96\.100\.1\/32 --interval 200ms;/);
  assert.throws(() => exabgpConf(DOC_SITE, 'lb9'), /no instance "lb9"/);
});
