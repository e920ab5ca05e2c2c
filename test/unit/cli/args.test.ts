import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../../src/cli/args.js';

test('ctl watch takes --json; --json anywhere else is a usage error', () => {
  assert.deepEqual(parseCommand(['ctl', 'watch', '--json']), { kind: 'ctl', args: ['watch', '--json'], socket: undefined, config: 'config.json5' });
  assert.deepEqual(parseCommand(['ctl', '--socket', '/run/t.sock', 'watch']), { kind: 'ctl', args: ['watch'], socket: '/run/t.sock', config: 'config.json5' });
  assert.throws(() => parseCommand(['ctl', 'status', '--json']), /--json goes with ctl watch/);
  assert.throws(() => parseCommand(['--json']), /--json goes with ctl watch/);
});
