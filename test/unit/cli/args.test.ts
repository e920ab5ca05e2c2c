import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../../src/cli/args.js';

test('ctl watch takes --json; --json anywhere else is a usage error', () => {
  assert.deepEqual(parseCommand(['ctl', 'watch', '--json']), { kind: 'ctl', args: ['watch', '--json'], targets: [], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['ctl', '--socket', '/run/t.sock', 'watch']), { kind: 'ctl', args: ['watch'], targets: ['/run/t.sock'], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['ctl', '--socket', '/a', '--socket', 'ssh://lb2', 'drain', 'u/h:1']), { kind: 'ctl', args: ['drain', 'u/h:1'], targets: ['/a', 'ssh://lb2'], fleet: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['ctl', '--fleet', 'f.json5', 'status']), { kind: 'ctl', args: ['status'], targets: [], fleet: 'f.json5', config: 'config.json5' });
  assert.throws(() => parseCommand(['ctl', 'status', '--json']), /--json goes with ctl watch/);
  assert.throws(() => parseCommand(['--json']), /--json goes with ctl watch/);
});
