/** The test helpers every suite leans on: waitFor's failure message, and port reservations that cannot collide. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLAIMS_DIR, reservePort, TEST_PORTS } from '../../helpers/ports.js';
import { waitFor, waitForSteady, waitUntil } from '../../helpers/wait.js';

test('waitFor resolves with the value as soon as it holds; on timeout it names what it waited for and the last value seen', async () => {
  let n = 0;
  const t0 = Date.now();
  assert.equal(await waitFor(() => ++n, { what: 'three polls', until: (k) => k >= 3, intervalMs: 1 }), 3);
  assert.ok(Date.now() - t0 < 500);
  const records: string[] = ['a'];
  await assert.rejects(waitFor(() => records.length, { what: 'two access records', timeoutMs: 60, until: (k) => k === 2 }), /^Error: timed out after 60 ms waiting for two access records; last observed: 1$/);
  await assert.rejects(waitFor(() => JSON.parse('{'), { what: 'the state file', timeoutMs: 30 }), /waiting for the state file; last observed: error .*JSON/);
  assert.equal(await waitUntil(() => false, { what: 'never', timeoutMs: 30 }), false);
  let v = 0;
  const steady = await waitForSteady(() => Math.min(++v, 5), { what: 'a count that stops at 5', quietMs: 30, intervalMs: 5 });
  assert.equal(steady, 5);
});

test('reserved ports lie below the ephemeral range, and two processes reserving at once never get the same one', { timeout: 30_000 }, async () => {
  const [lowEphemeral] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const mine = await Promise.all(Array.from({ length: 20 }, () => reservePort()));
  assert.equal(new Set(mine).size, mine.length, `one process got a port twice: ${mine.join(' ')}`);
  for (const p of mine) assert.ok(p >= TEST_PORTS.min && p <= TEST_PORTS.max && p < lowEphemeral!, `port ${p} is in the ephemeral range (from ${lowEphemeral})`);
  // Two other processes reserve 200 ports each at the same moment (in a range of 500, so a lock that did not hold would show).
  const ports = fileURLToPath(new URL('../../helpers/ports.js', import.meta.url));
  const script = `import { reservePort } from ${JSON.stringify(ports)};
    const got = [];
    for (let i = 0; i < 200; i++) got.push(await reservePort('127.0.0.1', { range: { min: 14000, max: 14499 } }));
    process.stdout.write(JSON.stringify(got) + '\\n');
    process.stdin.resume().on('end', () => process.exit(0));`;
  // Each child holds its ports until both have reported (a claim ends with its process).
  const children = [0, 1].map(() => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const exited = children.map((c) => new Promise<number | null>((r) => c.on('close', r)));
  const [a, b] = await Promise.all(
    children.map(
      (c) =>
        new Promise<number[]>((resolve, reject) => {
          let out = '';
          c.stdout!.on('data', (d) => {
            out += d;
            if (out.endsWith('\n')) resolve(JSON.parse(out) as number[]);
          });
          c.on('close', (code) => reject(new Error(`child exited ${code} before reporting`)));
        }),
    ),
  );
  for (const c of children) c.stdin!.end();
  assert.deepEqual(await Promise.all(exited), [0, 0]);
  const both = a!.filter((p) => b!.includes(p) || mine.includes(p));
  assert.deepEqual(both, [], 'the same port was reserved by two processes');
  // Their claims went with them.
  const left = a!.concat(b!).filter((p) => fs.existsSync(path.join(CLAIMS_DIR, String(p))));
  assert.deepEqual(left, [], 'claims of exited processes left behind');
});
