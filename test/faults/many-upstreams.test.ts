/**
 * 10,000 upstreams, each with a `tcp` check (hardening issue, defect 6): every
 * health-state change used to rebuild the whole routing table, so the first
 * round of probes cost 10,000 x 10,000 and tcplb served no client and answered
 * no `ctl` for minutes. Now a change costs its own upstream and the changes of
 * one event-loop turn are published as one table. The bounds here are loose
 * (a shared CI host); bench/scale-start.ts measures the real figures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scaleStart } from '../../bench/scale-start.js';
import { lo } from './helpers.js';

const ENGINE = process.env.TCPLB_ENGINE ?? 'js';

test(`10,000 checked upstreams (${ENGINE}): a client is served and ctl answers within seconds of start`, { timeout: 150_000 }, async () => {
  const r = await scaleStart(10_000, { engine: ENGINE, deadlineMs: 90_000, hosts: [lo(60), lo(61), lo(62), lo(63), lo(64)] });
  console.log(
    `# ${ENGINE}: first client ${r.firstClientMs.toFixed(0)} ms, all UP ${r.allUpMs.toFixed(0)} ms, ` +
      `ctl status ${r.ctlDuringMs.toFixed(0)} ms while probes land / ${r.ctlAfterMs.toFixed(0)} ms after, first scrape ${r.scrapeMs.toFixed(0)} ms`,
  );
  assert.ok(r.firstClientMs < 15_000, `first client served ${r.firstClientMs.toFixed(0)} ms after start`);
  assert.ok(r.allUpMs < 60_000, `every backend UP ${r.allUpMs.toFixed(0)} ms after start`);
  assert.ok(r.ctlAfterMs < 3_000, `ctl status took ${r.ctlAfterMs.toFixed(0)} ms (median of 7)`);
  assert.ok(r.scrapeMs < 10_000, `first metrics scrape took ${r.scrapeMs.toFixed(0)} ms`);
});
