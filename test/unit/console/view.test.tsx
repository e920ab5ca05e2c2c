/** <App/> rendered over fake snapshots: what an operator sees at 80x24 and other sizes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { App } from '../../../src/console/App.js';
import { fakeActions, fakeSnapshot, manyBackends, NOW, plain, renderAt, until } from '../../fixtures/snapshot.js';

/** The whole 80x24 frame of the realistic snapshot (23 lines: Ink keeps the last row for the cursor). */
const FRAME_80x24 = `tcplb 0.1.0 · engine js · pid 4242                                      12:01:05
watching config.json5 · loaded 12:00:05
12 active · 3.4 conn/s · 1.2 MB/s · listen imaps *:993 smtp *:25 https *:443
  BACKEND               STATE    PROBE          CHECKS    ACT    IN/OUT CERT
imaps  ip_hash · imap+tls every 5s rise 2 fall 5 · 1/2 up
› mail2.example.net:993 UP       L7_OK 3ms      2/2         5 3.4M/120M 12d
  mail3.example.net:993 DRAINING L7_OK 4ms      2/2         3  2.1M/87M 80d
smtp  round_robin · smtp every 5s rise 2 fall 3 · 1/2 up
  10.0.0.21:25          UP       L7_TIMEOUT 2s  fail 1/3    2  45K/9.0K
  10.0.0.22:25          DOWN     L4_REFUSED 1ms 0/2         0     0B/0B
https  least_conn · http every 2s rise 2 fall 5 · 0/2 up
  web1.internal:443     DISABLED L7_OK 3ms      2/2         2     0B/0B
  web2.internal:443     UNKNOWN  -              0/2         0     0B/0B
 Events   Connections 12   newest last · tab: connections
12:00:15 smtp/10.0.0.22:25          UP -> DOWN (probe: 3 consecutive failures: …
12:00:25 imaps/mail3.e…mple.net:993 drain by console
12:00:35 https/web1.internal:443    disable by ctl
12:00:45 -                          config reloaded: +listener https 0.0.0.0:443
12:01:04 smtp/10.0.0.21:25          probe L7_TIMEOUT 2000ms no greeting


imaps/mail2.example.net:993 UP since 11:01:05 · 2 consecutive passes
↑↓ select d drain x disable e enable c check K kill r reload ? help q quit`;

const trimEnd = (s: string): string => s.split('\n').map((l) => l.trimEnd()).join('\n');

test('80x24: the realistic frame, 23 lines, none wider than 80', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  const lines = r.lines();
  assert.equal(lines.length, 23);
  for (const l of lines) assert.ok(l.length <= 80, l);
  assert.equal(trimEnd(lines.join('\n')), FRAME_80x24);
});

test('header: watch state, then the refused reload in place of it', async (t) => {
  const actions = fakeActions();
  const r = await renderAt(<App actions={actions} onQuit={() => {}} intervalMs={20} />, 120, 30);
  t.after(() => r.unmount());
  assert.match(r.lines()[1]!, /^watching config\.json5 · loaded 12:00:05/);
  actions.current = fakeSnapshot({ config: { file: 'config.json5', watch: 'refused', loadedAt: NOW - 60_000, error: 'config.json5:14:7: unknown key "wieght" (did you mean "weight"?)' } });
  await until(() => r.lines()[1]!.startsWith('reload refused'), 'the refused reload');
  assert.equal(r.lines()[1]!.trimEnd(), 'reload refused: config.json5:14:7: unknown key "wieght" (did you mean "weight"?) — still serving the previous config');
  actions.current = fakeSnapshot({ config: { file: 'config.json5', watch: 'watching', loadedAt: NOW } });
  await until(() => r.lines()[1]!.includes('reloaded 12:01:05'), 'the reload time');
});

test('tables show every state word and the rise/fall progress', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 100, 30);
  t.after(() => r.unmount());
  const frame = r.lines().join('\n');
  for (const word of ['UP', 'DOWN', 'DRAINING', 'DISABLED', 'UNKNOWN', 'fail 1/3', '0/2', '2/2', 'L4_REFUSED', 'TOTAL']) assert.ok(frame.includes(word), word);
});

test('50 long backend names: no line over 80, selection scrolls into view and stays visible', async (t) => {
  const r = await renderAt(<App actions={fakeActions(manyBackends(50))} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  const check = (): void => {
    const lines = r.lines();
    assert.ok(lines.length <= 23, `${lines.length} lines`);
    for (const l of lines) assert.ok(l.length <= 80, `${l.length}: ${l}`);
  };
  check();
  assert.match(r.lines()[3]!, /BACKEND ↓\d+/);
  r.stdin.write('G'); // last backend
  await until(() => r.lines().some((l) => l.startsWith('› backend-49')), 'backend-49 selected and visible');
  check();
  assert.match(r.lines()[3]!, /BACKEND ↑\d+/);
  r.stdin.write('g');
  await until(() => r.lines().some((l) => l.startsWith('› backend-00')), 'backend-00 selected and visible');
  assert.match(r.lines()[4]!, /^big /, 'the upstream title scrolls back in with its first backend');
});

test('resize: re-laid out for the new size, wider shows more columns', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  assert.ok(!r.lines()[3]!.includes('REASON'));
  await r.resize(160, 40);
  assert.match(r.lines()[3]!, /TOTAL .* W CERT +REASON/);
  assert.equal(r.lines().length, 39);
  await r.resize(60, 20);
  assert.ok(r.lines().every((l) => l.length <= 60));
  assert.ok(r.lines().length <= 19);
});

test('? opens the help overlay; Esc and ? close it', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  r.stdin.write('?');
  await until(() => r.lines()[3]!.startsWith('Keys'), 'help');
  assert.ok(r.lines().some((l) => l.includes('drain: no new connections')));
  assert.ok(r.lines().every((l) => l.length <= 80));
  r.stdin.write('d'); // not handled while help is open
  r.stdin.write('\u001B');
  await until(() => r.lines()[3]!.includes('BACKEND'), 'tables again');
  r.stdin.write('?');
  await until(() => r.lines()[3]!.startsWith('Keys'), 'help again');
  r.stdin.write('?');
  await until(() => r.lines()[3]!.includes('BACKEND'), 'tables again');
});

test('/ filters backends and connections; Esc clears', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  r.stdin.write('/');
  await until(() => r.lines()[21]!.startsWith('/'), 'filter prompt');
  r.stdin.write('mail3');
  await until(() => r.lines()[21]!.startsWith('/mail3'), 'typed text');
  r.stdin.write('\r');
  await until(() => !r.lines().some((l) => /^[ ›] 10\.0\.0\.21:25/.test(l)), 'smtp rows gone');
  const frame = r.lines().join('\n');
  assert.ok(frame.includes('› mail3.example.net:993'), 'the only match is selected');
  assert.ok(!frame.includes('mail2.example.net:993 '));
  assert.match(r.lines()[22]!, /^filter "mail3" │/);
  r.stdin.write('\t');
  await until(() => r.lines().some((l) => l.includes('CLIENT')), 'connections panel');
  const conns = r.lines().filter((l) => l.includes(' → '));
  assert.equal(conns.length, 2);
  assert.ok(conns.every((l) => l.includes('mail3')));
  r.stdin.write('\u001B');
  await until(() => r.lines().some((l) => /^[ ›] 10\.0\.0\.21:25/.test(l)), 'filter cleared');
});

test('tab switches the bottom panel; s sorts connections; … and N more', async (t) => {
  const r = await renderAt(<App actions={fakeActions()} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  assert.ok(r.lines().some((l) => l.includes('drain by console')));
  r.stdin.write('\t');
  await until(() => r.lines().some((l) => l.includes('CLIENT')), 'connections panel');
  const body = (): string[] => r.lines().filter((l) => l.includes(' → '));
  assert.ok(!r.lines().some((l) => l.includes('drain by console')));
  assert.match(body()[0]!, /^203\.0\.113\.10:51000/, 'oldest first');
  assert.ok(r.lines().some((l) => /^… and \d+ more$/.test(l.trimEnd())));
  r.stdin.write('s');
  await until(() => r.lines().some((l) => l.includes('sort by bytes')), 'sorted by bytes');
  assert.match(body()[0]!, /^203\.0\.113\.15:51005/, 'largest first');
  r.stdin.write('\t');
  await until(() => r.lines().some((l) => l.includes('drain by console')), 'events again');
});

test('PgUp/PgDn scroll the event log back and forth', async (t) => {
  const events = Array.from({ length: 30 }, (_, i) => ({ time: NOW - (30 - i) * 1000, kind: 'probe' as const, backend: 'smtp/10.0.0.22:25', ok: false, text: `probe #${i}` }));
  const r = await renderAt(<App actions={fakeActions(fakeSnapshot({ events }))} onQuit={() => {}} />, 80, 24);
  t.after(() => r.unmount());
  const last = (): string => r.lines().filter((l) => l.includes('probe #')).at(-1)!;
  assert.match(last(), /probe #29$/);
  r.stdin.write('\u001B[5~'); // PgUp
  await until(() => last().endsWith('probe #24'), 'scrolled back 5');
  assert.ok(r.lines().some((l) => l.includes('5 newer below (PgDn)')));
  r.stdin.write('\u001B[6~'); // PgDn
  await until(() => last().endsWith('probe #29'), 'back at the newest');
});
