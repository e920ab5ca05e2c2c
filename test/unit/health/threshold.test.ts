import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evidence, step, UNKNOWN, type Transition, type Verdict } from '../../../src/health/threshold.js';

const v = (state: Verdict['state'], passes = 0, fails = 0): Verdict => ({ state, passes, fails });

/** Every branch of step(), one row each: from, result, {rise, fall} -> next, transition. */
const table: Array<[from: Verdict, ok: boolean, rise: number, fall: number, next: Verdict, transition: Transition]> = [
  // unknown: the first answer decides at once, whatever the thresholds
  [UNKNOWN, true, 3, 3, v('up'), 'changed'],
  [UNKNOWN, false, 3, 3, v('down'), 'changed'],
  [UNKNOWN, true, 1, 1, v('up'), 'changed'],
  // up: passes agree (and wipe a started fall count)
  [v('up'), true, 2, 3, v('up'), 'unchanged'],
  [v('up', 0, 2), true, 2, 3, v('up'), 'unchanged'],
  // up: failures count toward fall
  [v('up'), false, 2, 3, v('up', 0, 1), 'pending'],
  [v('up', 0, 1), false, 2, 3, v('up', 0, 2), 'pending'],
  [v('up', 0, 2), false, 2, 3, v('down'), 'changed'],
  [v('up'), false, 2, 1, v('down'), 'changed'],
  // down: failures agree (and wipe a started rise count)
  [v('down'), false, 3, 2, v('down'), 'unchanged'],
  [v('down', 2, 0), false, 3, 2, v('down'), 'unchanged'],
  // down: passes count toward rise
  [v('down'), true, 3, 2, v('down', 1, 0), 'pending'],
  [v('down', 1, 0), true, 3, 2, v('down', 2, 0), 'pending'],
  [v('down', 2, 0), true, 3, 2, v('up'), 'changed'],
  [v('down'), true, 1, 2, v('up'), 'changed'],
  // thresholds below 1 act as 1 instead of never flipping
  [v('up'), false, 0, 0, v('down'), 'changed'],
  [v('down'), true, 0, 0, v('up'), 'changed'],
];

for (const [from, ok, rise, fall, next, transition] of table) {
  test(`threshold: ${from.state} p${from.passes} f${from.fails} + ${ok ? 'pass' : 'fail'} (rise ${rise}, fall ${fall}) -> ${next.state} ${transition}`, () => {
    assert.deepEqual(step(from, ok, { rise, fall }), { next, transition });
  });
}

/**
 * An independent model over runs of equal results: the first result sets the state;
 * a later run that disagrees flips it once it is `rise`/`fall` long.
 */
function model(history: boolean[], rise: number, fall: number): { verdict: Verdict; transition: Transition } {
  let state: 'up' | 'down' = history[0] ? 'up' : 'down';
  let before: Verdict['state'] = 'unknown';
  let runLength = 0;
  for (let i = 0; i < history.length; i++) {
    runLength = i > 0 && history[i] === history[i - 1] ? runLength + 1 : 1;
    before = i === 0 ? 'unknown' : state;
    const wanted = history[i] ? 'up' : 'down';
    if (i > 0 && wanted !== state && runLength >= (history[i] ? rise : fall)) state = wanted;
  }
  const last = history[history.length - 1]!;
  const disagrees = (last ? 'up' : 'down') !== state;
  const verdict = v(state, disagrees && last ? runLength : 0, disagrees && !last ? runLength : 0);
  const transition = before !== state ? 'changed' : disagrees ? 'pending' : 'unchanged';
  return { verdict, transition };
}

test('threshold: every result sequence up to length 8, rise and fall 1..3, matches the run model', () => {
  let checked = 0;
  for (let rise = 1; rise <= 3; rise++) {
    for (let fall = 1; fall <= 3; fall++) {
      for (let length = 1; length <= 8; length++) {
        for (let bits = 0; bits < 1 << length; bits++) {
          const history = Array.from({ length }, (_, i) => ((bits >> i) & 1) === 1);
          let verdict = UNKNOWN;
          let transition: Transition = 'unchanged';
          for (const ok of history) ({ next: verdict, transition } = step(verdict, ok, { rise, fall }));
          assert.deepEqual({ verdict, transition }, model(history, rise, fall), `rise ${rise} fall ${fall} ${history.map(Number).join('')}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 9 * 510);
});

test('threshold: step() does not mutate its input', () => {
  const from = Object.freeze(v('up', 0, 1));
  step(from, false, { rise: 2, fall: 3 });
  assert.deepEqual(from, v('up', 0, 1));
});

test('threshold: a LOCAL_ERROR probe is no evidence: pass and fail map to true/false, LOCAL_ERROR to null', () => {
  assert.equal(evidence({ ok: true, status: 'L4_OK' }), true);
  assert.equal(evidence({ ok: false, status: 'L4_REFUSED' }), false);
  assert.equal(evidence({ ok: false, status: 'SOCK_ERROR' }), false);
  assert.equal(evidence({ ok: false, status: 'LOCAL_ERROR' }), null);
});

test('threshold: no evidence (tcplb out of descriptors) leaves state and rise/fall counters exactly as they were', () => {
  for (const from of [UNKNOWN, v('up'), v('up', 0, 2), v('down'), v('down', 2, 0)]) {
    for (const [rise, fall] of [[1, 1], [3, 3]] as const) {
      assert.deepEqual(step(from, null, { rise, fall }), { next: from, transition: 'unchanged' }, `${from.state} p${from.passes} f${from.fails}`);
    }
  }
  // A run of failures interrupted by local errors still takes an UP backend down at `fall`,
  // and a crowd of local errors alone never does.
  let verdict: Verdict = v('up');
  for (const ok of [false, null, null, false, null]) verdict = step(verdict, ok, { rise: 2, fall: 3 }).next;
  assert.deepEqual(verdict, v('up', 0, 2));
  assert.deepEqual(step(verdict, false, { rise: 2, fall: 3 }), { next: v('down'), transition: 'changed' });
  verdict = v('up');
  for (let i = 0; i < 1000; i++) verdict = step(verdict, null, { rise: 1, fall: 1 }).next;
  assert.deepEqual(verdict, v('up'));
});
