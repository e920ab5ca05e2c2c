/** runConsole: mounts on the given terminal streams; Ctrl-C asks like q instead of killing the proxy. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { runConsole } from '../../../src/console/run.js';
import { fakeActions, plain, tick, until } from '../../fixtures/snapshot.js';

/** A terminal's output side: records what Ink writes. */
class FakeStdout extends EventEmitter {
  columns = 80;
  rows = 24;
  written = '';
  write = (s: string): boolean => {
    this.written += s;
    return true;
  };
}

/** A terminal's input side in raw mode, as Ink reads it. */
class FakeStdin extends EventEmitter {
  isTTY = true;
  #data: string | null = null;
  write(s: string): void {
    this.#data = s;
    this.emit('readable');
  }
  read = (): string | null => {
    const d = this.#data;
    this.#data = null;
    return d;
  };
  setRawMode(): void {}
  setEncoding(): void {}
  ref(): void {}
  unref(): void {}
  resume(): void {}
  pause(): void {}
}

test('runConsole: Ctrl-C asks instead of exiting, y calls onQuit, unmount ends waitUntilExit', async () => {
  const stdout = new FakeStdout();
  const stdin = new FakeStdin();
  let quits = 0;
  const handle = runConsole(fakeActions(), {
    onQuit: () => quits++,
    version: '9.9.9',
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
  });
  let exited = false;
  const done = handle.waitUntilExit().then(() => {
    exited = true;
  });
  await until(() => stdin.listenerCount('readable') > 0, 'the console reading its input');
  stdin.write('\u0003');
  await tick(100); // proving a negative: Ctrl-C did not unmount
  assert.equal(exited, false, 'Ctrl-C did not unmount the console');
  assert.equal(quits, 0, 'Ctrl-C alone does not quit');
  stdin.write('y');
  await until(() => quits === 1, 'onQuit after y');
  assert.equal(exited, false, 'the caller decides when to unmount');
  handle.unmount();
  await done;
  assert.match(plain(stdout.written), /tcplb 9\.9\.9 · engine js · pid 4242/);
});
