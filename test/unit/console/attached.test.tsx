/**
 * The console attached to a tcplb elsewhere: the same screen and keys over a
 * source whose actions answer later (a request over the socket), the header
 * naming the instance (or saying the link is lost), and `q` detaching at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { App } from '../../../src/console/App.js';
import type { AttachLink, ConsoleSource } from '../../../src/runtime/console-source.js';
import { fakeActions, renderAt, tick, until } from '../../fixtures/snapshot.js';

const STATUS = 21; // status line index at 80x24
const STARTED = new Date(2024, 0, 1, 12, 0).getTime();

async function mount(t: { after(fn: () => void): void }) {
  const fake = fakeActions();
  let link: AttachLink = { pid: 4242, started: STARTED, config: '/etc/tcplb/config.json5', socket: '/run/tcplb/tcplb.sock' };
  // Every action answers on a later turn, as a reply over the socket does.
  const later = <T,>(v: T): Promise<T> => new Promise((r) => setTimeout(() => r(v), 20));
  const source: ConsoleSource = {
    drain: (id, by) => later(fake.drain(id, by)),
    disable: (id, by) => later(fake.disable(id, by)),
    enable: (id, by) => later(fake.enable(id, by)),
    kill: (id, by) => later(fake.kill(id, by)),
    check: (id, by) => fake.check(id, by),
    reload: (by) => fake.reload(by),
    snapshot: () => fake.snapshot(),
    attachment: { link: () => link, close: () => {} },
  };
  let quits = 0;
  const r = await renderAt(<App actions={source} onQuit={() => quits++} intervalMs={50} />, 80, 24);
  t.after(() => r.unmount());
  return { r, fake, quits: () => quits, status: () => r.lines()[STATUS]!.trimEnd(), setLink: (l: AttachLink) => (link = l) };
}

test('attached: the header names the instance; the footer says q detaches', async (t) => {
  const { r } = await mount(t);
  assert.match(r.lines()[0]!, /^attached to pid 4242 · started 2024-01-01 12:00 · config \/etc\/tcplb\/config\.json5/);
  assert.match(r.lines()[23 - 1]!, /q detach/);
});

test('attached: d drains through the source and shows the reply; the table follows', async (t) => {
  const { r, fake, status } = await mount(t);
  r.stdin.write('d');
  await until(() => status() === 'imaps/mail2.example.net:993 draining: no new connections', 'the reply in the status line');
  assert.deepEqual(fake.calls, [{ name: 'drain', id: 'imaps/mail2.example.net:993', by: 'console' }]);
  await until(() => r.lines().some((l) => /^› mail2\.example\.net:993 +DRAINING/.test(l)), 'DRAINING in the table');
});

test('attached: q detaches at once, no question asked (the proxy is not stopped); Ctrl-C too', async (t) => {
  const { r, quits, status } = await mount(t);
  r.stdin.write('q');
  await until(() => quits() === 1, 'detached');
  assert.doesNotMatch(status(), /Quit\?/);
  r.stdin.write('\u0003');
  await until(() => quits() === 2, 'Ctrl-C detaches');
  await tick();
  assert.doesNotMatch(r.lines().join('\n'), /Quit\?/);
});

test('attached: a lost link is said in the header, the last data stays', async (t) => {
  const { r, setLink } = await mount(t);
  setLink({ pid: 4242, started: STARTED, config: '/etc/tcplb/config.json5', socket: '/run/tcplb/tcplb.sock', lost: 'tcplb closed the connection' });
  await until(() => r.lines()[0]!.startsWith('connection to tcplb lost: tcplb closed the connection'), 'lost in the header');
  assert.ok(r.lines().some((l) => /mail2\.example\.net:993/.test(l)), 'the table stays');
});
