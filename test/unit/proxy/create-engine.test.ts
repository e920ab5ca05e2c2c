/** Which engine a config gets, and the reason shown for it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/core/config.js';
import { chooseEngine } from '../../../src/proxy/create-engine.js';

// The native addon is ruled out for this file (loadNative reads this once),
// so the answers do not depend on whether this machine built it.
process.env.TCPLB_NO_NATIVE = '1';
delete process.env.TCPLB_ENGINE;

function config(top: string): Config {
  const r = loadConfigText(`{ ${top}
    listeners: [{ listen: "127.0.0.1:1", upstream: "u" }],
    upstreams: { u: { servers: ["127.0.0.1:2"] } } }`, 'config.json5');
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.config;
}

test('engine "js" with one worker runs the in-process JS engine', () => {
  const c = chooseEngine(config('engine: "js",'));
  assert.equal(c.kind, 'js');
  assert.equal(c.label, 'js');
  assert.equal(c.why, 'js (engine: js)');
});

test('workers: 3 runs three relay workers', () => {
  const c = chooseEngine(config('engine: "js", workers: 3,'));
  assert.deepEqual([c.kind, c.workers, c.label], ['workers', 3, 'js x3']);
});

test('auto falls back to JS and says why when the addon is not available', () => {
  const c = chooseEngine(config(''));
  assert.equal(c.kind, 'js');
  assert.equal(c.label, 'js (no native)');
  assert.match(c.why, /auto: native engine not available: disabled by TCPLB_NO_NATIVE=1/);
});

test('engine "native" without the addon is an error naming the reason and the way out', () => {
  assert.throws(() => chooseEngine(config('engine: "native",')), /engine: "native" is set but the native engine is not available: disabled by TCPLB_NO_NATIVE=1; set engine to "auto" or "js"/);
});

test('TCPLB_ENGINE overrides the file, and a bad value is refused', (t) => {
  t.after(() => delete process.env.TCPLB_ENGINE);
  process.env.TCPLB_ENGINE = 'js';
  assert.equal(chooseEngine(config('engine: "native",')).why, 'js (TCPLB_ENGINE: js)');
  process.env.TCPLB_ENGINE = 'fast';
  assert.throws(() => chooseEngine(config('')), /TCPLB_ENGINE=fast: must be auto, js or native/);
});
