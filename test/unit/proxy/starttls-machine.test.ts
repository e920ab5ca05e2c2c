/**
 * The STARTTLS state machine (src/proxy/starttls/machine.ts) fed byte
 * sequences as clients and servers send them, per protocol: what it relays,
 * what it answers itself, what it discards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StarttlsMachine, type Action } from '../../../src/proxy/starttls/machine.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Actions as short strings: `>b` to backend, `>c` to client, or the action type. */
function show(actions: Action[]): string[] {
  return actions.map((a) => {
    switch (a.type) {
      case 'toBackend':
        return `>b ${a.data.toString('latin1')}`;
      case 'toClient':
        return `>c ${a.data.toString('latin1')}`;
      case 'upgrade':
        return `upgrade ok=${a.ok} unavailable=${a.unavailable}`;
      case 'refused':
        return `refused ${a.answer}| ${a.reply}`;
      case 'passthrough':
        return `passthrough >b ${a.toBackend.toString('latin1')} >c ${a.toClient.toString('latin1')}`;
      case 'tooLong':
        return `tooLong ${a.side}`;
    }
  });
}

test('imap: greeting and CAPABILITY relayed; the client\'s tag STARTTLS becomes the balancer\'s own, the tagged OK means upgrade', () => {
  const m = new StarttlsMachine('imap', { requireTls: false });
  assert.deepEqual(show(m.backend(b('* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n'))), ['>c * OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n']);
  assert.deepEqual(show(m.client(b('a1 CAPABILITY\r\n'))), ['>b a1 CAPABILITY\r\n']);
  assert.deepEqual(show(m.backend(b('* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\n'))), ['>c * CAPABILITY IMAP4rev1 STARTTLS\r\n', '>c a1 OK done\r\n']);
  assert.deepEqual(show(m.client(b('a2 starttls\r\n'))), ['>b tcplb.starttls STARTTLS\r\n']);
  assert.equal(m.phase, 'upgrading');
  assert.deepEqual(show(m.backend(b('tcplb.starttls OK Begin TLS negotiation now\r\n'))), [
    'upgrade ok=a2 OK Begin TLS negotiation now\r\n unavailable=a2 NO [UNAVAILABLE] TLS not available at the moment\r\n',
  ]);
  assert.equal(m.phase, 'done');
});

test('imap: lines split across reads are joined; a partial line waits', () => {
  const m = new StarttlsMachine('imap', { requireTls: false });
  assert.deepEqual(show(m.backend(b('* OK re'))), []);
  assert.deepEqual(show(m.backend(b('ady\r\n'))), ['>c * OK ready\r\n']);
  assert.deepEqual(show(m.client(b('a STAR'))), []);
  assert.deepEqual(show(m.client(b('TTLS\r\n'))), ['>b tcplb.starttls STARTTLS\r\n']);
});

test('injection (CVE-2011-0411 class): bytes after the upgrade command, in the same read or later, are discarded, never relayed', () => {
  for (const [p, up, injected, ok] of [
    ['imap', 'a STARTTLS', 'b LOGIN user pass', 'tcplb.starttls OK go'],
    ['pop3', 'STLS', 'USER user', '+OK go'],
    ['smtp', 'STARTTLS', 'MAIL FROM:<a@b>', '220 go'],
  ] as const) {
    const m = new StarttlsMachine(p, { requireTls: false });
    m.backend(b(p === 'imap' ? '* OK hi\r\n' : p === 'pop3' ? '+OK hi\r\n' : '220 hi\r\n'));
    const out = show(m.client(b(`${up}\r\n${injected}\r\n`)));
    assert.deepEqual(out.filter((a) => a.includes(injected)), [], `${p}: ${out.join('|')}`);
    assert.equal(out.length, 1);
    assert.equal(m.discardedClient, injected.length + 2);
    assert.deepEqual(show(m.client(b('more\r\n'))), []);
    // The backend's bytes after its reply: discarded too.
    const after = show(m.backend(b(`${ok}\r\n* INJECTED\r\n`)));
    assert.equal(after.length, 1, `${p}: ${after.join('|')}`);
    assert.match(after[0]!, /^upgrade /);
    assert.equal(m.discardedBackend, '* INJECTED\r\n'.length);
    assert.deepEqual(show(m.backend(b('later\r\n'))), []);
  }
});

test('imap: a NO to the balancer\'s STARTTLS is a refusal with the client\'s tag; untagged lines before it are relayed', () => {
  const m = new StarttlsMachine('imap', { requireTls: false });
  m.backend(b('* OK hi\r\n'));
  m.client(b('x7 STARTTLS\r\n'));
  assert.deepEqual(show(m.backend(b('* BYE not yet\r\ntcplb.starttls NO not now\r\n'))), [
    '>c * BYE not yet\r\n',
    'refused x7 NO [UNAVAILABLE] TLS not available at the moment\r\n| tcplb.starttls NO not now',
  ]);
});

test('imap: a literal\'s bytes are relayed raw, never read as a command', () => {
  const m = new StarttlsMachine('imap', { requireTls: false });
  m.backend(b('* OK hi\r\n'));
  assert.deepEqual(show(m.client(b('a ID ({11}\r\n'))), ['>b a ID ({11}\r\n']);
  // 11 raw bytes that look like a command, then the rest of the ID line.
  assert.deepEqual(show(m.client(b('x STARTTLS\n)\r\n'))), ['>b x STARTTLS\n', '>b )\r\n']);
  assert.equal(m.phase, 'inspect');
});

test('pop3: CAPA\'s multi-line reply is relayed whole; STLS waits for replies owed first', () => {
  const m = new StarttlsMachine('pop3', { requireTls: false });
  assert.deepEqual(show(m.backend(b('+OK ready\r\n'))), ['>c +OK ready\r\n']);
  // Pipelined: CAPA then STLS before any reply.
  assert.deepEqual(show(m.client(b('CAPA\r\nSTLS\r\n'))), ['>b CAPA\r\n', '>b STLS\r\n']);
  // A "+OK" line inside CAPA's list is not the STLS reply.
  assert.deepEqual(show(m.backend(b('+OK capa\r\nSTLS\r\n+OK\r\n.\r\n'))), ['>c +OK capa\r\n', '>c STLS\r\n', '>c +OK\r\n', '>c .\r\n']);
  assert.deepEqual(show(m.backend(b('-ERR no\r\n'))), ['refused -ERR [SYS/TEMP] TLS not available at the moment\r\n| -ERR no']);
});

test('smtp: multi-line EHLO relayed; STARTTLS accepted on 220, refused on anything else', () => {
  const m = new StarttlsMachine('smtp', { requireTls: false });
  assert.deepEqual(show(m.backend(b('220-mx ESMTP\r\n220 mx\r\n'))), ['>c 220-mx ESMTP\r\n', '>c 220 mx\r\n']);
  m.client(b('EHLO c\r\n'));
  assert.deepEqual(show(m.backend(b('250-mx\r\n250 STARTTLS\r\n'))), ['>c 250-mx\r\n', '>c 250 STARTTLS\r\n']);
  assert.deepEqual(show(m.client(b('STARTTLS\r\n'))), ['>b STARTTLS\r\n']);
  assert.deepEqual(show(m.backend(b('220 2.0.0 Ready\r\n'))), ['upgrade ok=220 2.0.0 Ready to start TLS\r\n unavailable=454 4.7.0 TLS not available due to temporary reason\r\n']);
  const r = new StarttlsMachine('smtp', { requireTls: false });
  r.backend(b('220 mx\r\n'));
  r.client(b('STARTTLS\r\n'));
  assert.deepEqual(show(r.backend(b('502 5.5.1 no\r\n'))), ['refused 454 4.7.0 TLS not available due to temporary reason\r\n| 502 5.5.1 no']);
});

test('requireTls: credentials (and SMTP mail) before TLS get the protocol\'s refusal, in order, and never reach the backend', () => {
  const i = new StarttlsMachine('imap', { requireTls: true });
  i.backend(b('* OK hi\r\n'));
  assert.deepEqual(show(i.client(b('a LOGIN u p\r\nb AUTHENTICATE PLAIN\r\n'))), [
    '>c a NO [PRIVACYREQUIRED] TLS required: use STARTTLS first\r\n',
    '>c b NO [PRIVACYREQUIRED] TLS required: use STARTTLS first\r\n',
  ]);
  const p = new StarttlsMachine('pop3', { requireTls: true });
  p.backend(b('+OK hi\r\n'));
  // CAPA's reply is owed first: the refusal of USER waits for it.
  assert.deepEqual(show(p.client(b('CAPA\r\nUSER u\r\nAPOP u d\r\n'))), ['>b CAPA\r\n']);
  assert.deepEqual(show(p.backend(b('+OK\r\nSTLS\r\n.\r\n'))), ['>c +OK\r\n', '>c STLS\r\n', '>c .\r\n', '>c -ERR [AUTH] TLS required: use STLS first\r\n', '>c -ERR [AUTH] TLS required: use STLS first\r\n']);
  const s = new StarttlsMachine('smtp', { requireTls: true });
  s.backend(b('220 hi\r\n'));
  assert.deepEqual(show(s.client(b('AUTH PLAIN AGEAYg==\r\nMAIL FROM:<a@b>\r\n'))), [
    '>c 530 5.7.0 Must issue a STARTTLS command first\r\n',
    '>c 530 5.7.0 Must issue a STARTTLS command first\r\n',
  ]);
  assert.equal(s.phase, 'inspect');
});

test('without requireTls, credentials or a mail transaction in clear end the inspection: a plain relay from there', () => {
  const m = new StarttlsMachine('imap', { requireTls: false });
  m.backend(b('* OK hi\r\n* partial'));
  assert.deepEqual(show(m.client(b('a LOGIN {4}\r\nuser'))), ['passthrough >b a LOGIN {4}\r\nuser >c * partial']);
  assert.equal(m.phase, 'done');
  const s = new StarttlsMachine('smtp', { requireTls: false });
  s.backend(b('220 hi\r\n'));
  assert.deepEqual(show(s.client(b('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n'))), ['passthrough >b MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n >c ']);
});

test('lines are bounded before TLS on both sides', () => {
  const m = new StarttlsMachine('smtp', { requireTls: false, maxLine: 16 });
  assert.deepEqual(show(m.client(b('x'.repeat(15)))), []);
  assert.deepEqual(show(m.client(b('x'))), ['tooLong client']);
  const n = new StarttlsMachine('imap', { requireTls: false, maxLine: 16 });
  assert.deepEqual(show(n.backend(b(`* OK ${'y'.repeat(20)}\r\n`))), ['tooLong backend']);
  const ok = new StarttlsMachine('imap', { requireTls: false, maxLine: 16 });
  assert.deepEqual(show(ok.backend(b(`* OK ${'y'.repeat(9)}\r\n`))), [`>c * OK ${'y'.repeat(9)}\r\n`]);
});
