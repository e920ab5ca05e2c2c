/**
 * bench/lib/proc.ts run(): what a command printed is all there when run()
 * resolves, also when its output arrives after the process itself exited
 * (the TLS bench read "no CPU times" from an s_time run whose stderr had not
 * been read yet at 'exit').
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../../bench/lib/proc.js';

test('run() returns output written after the process exited (a child still holding the pipe)', async () => {
  // sh exits at once; its background child writes 200 ms later on the same stdout/stderr.
  const r = await run('sh', ['-c', '(sleep 0.2; echo late; echo late-err >&2) & exit 0'], 5000);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'late\n');
  assert.equal(r.stderr, 'late-err\n');
});
