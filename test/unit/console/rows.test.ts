/** rows.ts and the pure helpers of the status line and help overlay: lines as data, no rendering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { segmentsText, textWidth } from '../../../src/console/format.js';
import { tableColumns } from '../../../src/console/layout.js';
import { acmeMark, backendLine, configLine, connLine, fleetLine, sortConnections, totalsLine, upstreamLine } from '../../../src/console/rows.js';
import { confirmText, footerSegments, statusSegments } from '../../../src/console/components/StatusLine.js';
import { helpLines } from '../../../src/console/components/HelpOverlay.js';
import { backend, fakeSnapshot, NOW } from '../../fixtures/snapshot.js';

test('config line: watching, reloaded, static, refused (red, says the old config still serves)', () => {
  const c = { file: 'config.json5', watch: 'watching' as const, loadedAt: NOW };
  assert.match(segmentsText(configLine(c, 80, NOW)), /^watching config\.json5 · loaded 12:01:05$/);
  assert.match(segmentsText(configLine(c, 80, NOW - 1000)), /reloaded 12:01:05/);
  assert.match(segmentsText(configLine({ ...c, watch: 'static' }, 80, NOW)), /config\.json5 \(not watched\)/);
  const refused = configLine({ ...c, watch: 'refused', error: 'config.json5:14:7: unknown key "wieght"' }, 200, NOW);
  assert.equal(segmentsText(refused), 'reload refused: config.json5:14:7: unknown key "wieght" — still serving the previous config');
  assert.equal(refused[0]!.color, 'red');
  const narrow = configLine({ ...c, watch: 'refused', error: 'config.json5:14:7: unknown key "wieght"' }, 80, NOW);
  assert.equal(segmentsText(narrow), 'reload refused, previous config kept: config.json5:14:7: unknown key "wieght"');
  assert.equal(textWidth(segmentsText(configLine({ ...c, watch: 'refused', error: 'x'.repeat(300) }, 80, NOW))), 80);
});

test('totals line: active, conn/s, bytes/s, listeners with ports', () => {
  assert.equal(segmentsText(totalsLine(fakeSnapshot(), 200)), '12 active · 3.4 conn/s · 1.2 MB/s · listen imaps *:993 smtp *:25 https *:443');
});

test('backend row: state colour, probe, progress, cert; selected row is inverse and full width', () => {
  const b = backend('imaps', 'mail2.example.net:993', { state: 'DRAINING', progress: 'fail 3/5', cert: { daysLeft: 9, trusted: true, subject: 'x' } });
  const cols = tableColumns(80, { hasCert: true, longest: 21 });
  const line = backendLine(b, cols, 80, false, false);
  const text = segmentsText(line);
  assert.match(text, /^ {2}mail2\.example\.net:993 DRAINING L7_OK 3ms +fail 3\/5 .* 9d/);
  assert.equal(line.find((s) => s.text.includes('DRAINING'))!.color, 'yellow');
  assert.equal(line.find((s) => s.text.includes('9d'))!.color, 'yellow');
  const sel = backendLine(b, cols, 80, true, true);
  assert.equal(textWidth(segmentsText(sel)), 80);
  assert.ok(sel.every((s) => s.inverse === true));
  assert.match(segmentsText(sel), /^› .*checking…/);
  // A long probe status keeps the status and drops the latency.
  const slow = backend('u', 'h:1', { lastProbe: { at: 0, ok: false, status: 'L7_BAD_RESPONSE', latencyMs: 1500, detail: '' } });
  assert.match(segmentsText(backendLine(slow, cols, 80, false, false)), / L7_BAD_RESPON… /);
  // Probe colour: passed green, failed red, LOCAL_ERROR (tcplb itself short of descriptors) yellow.
  const probeCell = (ok: boolean, status: 'L4_OK' | 'L4_REFUSED' | 'LOCAL_ERROR') =>
    backendLine(backend('u', 'h:1', { lastProbe: { at: 0, ok, status, latencyMs: 0, detail: '' } }), cols, 80, false, false).find((s) => s.text.trim().startsWith(status))!;
  assert.equal(probeCell(true, 'L4_OK').color, 'green');
  assert.equal(probeCell(false, 'L4_REFUSED').color, 'red');
  assert.equal(probeCell(false, 'LOCAL_ERROR').color, 'yellow');
  assert.match(segmentsText(upstreamLine(fakeSnapshot().upstreams[1]!, 80)), /^smtp {2}round_robin · smtp every 5s rise 2 fall 3 · 1\/2 up$/);
});

test('connections: client → listener → backend, age, bytes; sortable by age or bytes', () => {
  const s = fakeSnapshot();
  const c = s.connections.list[0]!;
  const text = segmentsText(connLine(c, NOW, 80));
  assert.ok(textWidth(text) <= 80);
  assert.match(text, /^203\.0\.113\.10:51000 +→ imaps +→ imaps\/mail2\.example\.net:993 +8m40s +1\.0K +0B$/);
  // Wide terminals show where TLS is terminated.
  const wide = segmentsText(connLine({ ...c, tls: 'client+backend' }, NOW, 120));
  assert.ok(textWidth(wide) <= 120);
  assert.match(wide, /8m40s +1\.0K +0B client\+backend *$/);
  assert.match(segmentsText(connLine(c, NOW, 120)), /0B - *$/);
  assert.deepEqual(sortConnections(s.connections.list, 'age').map((x) => x.id), [1, 2, 3, 4, 5, 6, 7, 8]);
  const byBytes = sortConnections(s.connections.list, 'bytes').map((x) => x.id);
  assert.deepEqual(byBytes.slice(0, 2), [6, 3]);
});

test('prompts and status line', () => {
  assert.equal(confirmText({ kind: 'confirm', confirm: { kind: 'kill', id: 'imap/10.0.0.2:143', count: 3 } }), 'Kill 3 open connections to imap/10.0.0.2:143? y/N');
  assert.equal(confirmText({ kind: 'confirm', confirm: { kind: 'quit', count: 1 } }), 'Quit? 1 open connection will be closed. y/N');
  assert.match(segmentsText(statusSegments({ kind: 'filter', draft: 'mail' }, undefined, undefined, 80)), /^\/mail▏ {2}Enter apply · Esc clear$/);
  const err = statusSegments({ kind: 'normal' }, { text: 'no backend "x"', tone: 'error' }, undefined, 80);
  assert.equal(err[0]!.color, 'red');
  const b = fakeSnapshot().upstreams[1]!.backends[1]!;
  assert.match(segmentsText(statusSegments({ kind: 'normal' }, undefined, b, 200)), /^smtp\/10\.0\.0\.22:25 DOWN since \d\d:\d\d:\d\d · 3 consecutive failures/);
});

test('footer: quit and help survive narrow terminals; never wider than the terminal', () => {
  for (const w of [20, 40, 80, 120]) {
    const text = segmentsText(footerSegments(w, ''));
    assert.ok(textWidth(text) <= w, `${w}: ${text}`);
    assert.match(text, /q quit/);
    if (w >= 40) assert.match(text, /\? help/);
  }
  assert.match(segmentsText(footerSegments(80, 'mail')), /^filter "mail" │ /);
  for (const l of helpLines(60)) assert.ok(textWidth(segmentsText(l)) <= 60);
});

test('fleet row: each instance\'s state under its name at 80 columns, `!` when probes disagree, `?` unreachable; a compact `2/3 up` when they do not fit', () => {
  const names = ['lb1', 'lb2', 'lb3'];
  const b = backend('imaps', 'mail2.example.net:993', {
    state: 'DOWN',
    instances: [
      { name: 'lb1', state: 'UP' },
      { name: 'lb2', state: 'DOWN' },
      { name: 'lb3', state: 'UNREACHABLE' },
    ],
  });
  const cols = tableColumns(80, { hasCert: false, longest: 21, fleet: names });
  const state = cols.find((c) => c.key === 'state')!;
  assert.equal(state.title, ' lb1  lb2  lb3');
  const line = backendLine(b, cols, 80, false, false);
  assert.match(segmentsText(line), /^ {2}mail2\.example\.net:993 +!UP   DOWN \? /);
  assert.equal(line.find((s) => s.text.trim() === '!')!.color, 'yellow');
  assert.equal(line.find((s) => s.text.includes('DOWN'))!.color, 'red');
  assert.equal(line.find((s) => s.text.trim() === '?')!.color, 'magenta');
  const agree = backend('imaps', 'mail1.example.net:993', { instances: names.map((name) => ({ name, state: 'DRAINING' as const })) });
  assert.match(segmentsText(backendLine(agree, cols, 80, false, false)), / DRN  DRN  DRN /, 'short codes in 4-cell columns');

  // Eight instances do not fit beside the other columns at 80: the compact summary.
  const eight = Array.from({ length: 8 }, (_, i) => `lb${i + 1}`);
  const narrow = tableColumns(80, { hasCert: false, longest: 21, fleet: eight });
  assert.equal(narrow.find((c) => c.key === 'state')!.title, 'FLEET');
  const mixed = backend('imaps', 'mail2.example.net:993', { instances: eight.map((name, i) => ({ name, state: i === 0 ? ('DOWN' as const) : ('UP' as const) })) });
  const summary = backendLine(mixed, narrow, 80, false, false);
  assert.match(segmentsText(summary), / !7\/8 up /);
  for (const w of [80, 100, 160]) {
    const c = tableColumns(w, { hasCert: true, longest: 30, fleet: names });
    assert.ok(textWidth(segmentsText(backendLine(b, c, w, true, false))) <= w, `fits ${w} columns`);
  }
});

test('fleet header: every instance with its pid, the unreachable ones in red with why', () => {
  const line = fleetLine(
    [
      { name: 'lb1', link: { pid: 10, started: 0, config: 'c', socket: 's' } },
      { name: 'lb2', lost: 'cannot reach tcplb at /x: ECONNREFUSED' },
    ],
    120,
  );
  assert.equal(segmentsText(line), 'fleet of 2 (1 unreachable): lb1 pid 10 · lb2 unreachable: cannot reach tcplb at /x: ECONNREFUSED');
  assert.equal(line.find((s) => s.text.startsWith('lb2'))!.color, 'red');
  assert.equal(line.find((s) => s.text.startsWith('lb1'))!.color, 'green');
  assert.equal(textWidth(segmentsText(fleetLine([{ name: 'x'.repeat(50), lost: 'y'.repeat(100) }], 80))), 80);
});

test('header line 2 carries the ACME mark: ordering, FAILING with the error (certificate kept), or the next renewal', () => {
  const text = (a: Parameters<typeof acmeMark>[0]): string => acmeMark(a).map((s) => s.text).join('');
  const base = { ordering: false, failures: 0, lastError: null, nextAttempt: Date.UTC(2027, 0, 30), hasCertificate: true };
  assert.equal(text(undefined), '');
  assert.equal(text(base), ' · acme next 2027-01-30');
  assert.equal(text({ ...base, ordering: true }), ' · acme ordering');
  assert.equal(text({ ...base, failures: 3, lastError: 'cannot reach the ACME directory: ECONNREFUSED' }), ' · acme FAILING ×3: cannot reach the ACME directory: ECONNREFUSED');
  assert.equal(acmeMark({ ...base, failures: 1, lastError: 'x' })[0]!.color, 'red');
  assert.match(text({ ...base, failures: 1, lastError: 'x', hasCertificate: false }), /no certificate yet/);
});
