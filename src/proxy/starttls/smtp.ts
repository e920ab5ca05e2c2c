/**
 * SMTP STARTTLS (RFC 3207). Replies come in command order; a reply's lines
 * read `250-…` until the last one, `250 …`. After TLS the client starts over
 * with EHLO, which the balancer relays as is (it no longer reads the bytes).
 */
import type { ClientLine, ProtocolRules } from './rules.js';
import { word } from './rules.js';

/** A mail transaction: an SMTP client does not upgrade after one has started. */
const FINAL = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT']);

export const smtp: ProtocolRules = {
  name: 'smtp',
  tagged: false,
  parseClient(line: string): ClientLine {
    const cmd = word(line, 0);
    const verb = cmd === 'STARTTLS' ? 'upgrade' : cmd === 'AUTH' ? 'auth' : FINAL.has(cmd) ? 'final' : 'other';
    return { verb, tag: '', literal: 0, multiline: false };
  },
  backendLiteral: () => 0,
  upgradeCommand: 'STARTTLS\r\n',
  isUpgradeReply: () => false,
  endsReply: (line) => !/^\d{3}-/.test(line),
  accepted: (_first, last) => last.startsWith('220'),
  ok: () => '220 2.0.0 Ready to start TLS\r\n',
  unavailable: () => '454 4.7.0 TLS not available due to temporary reason\r\n',
  refused: () => '530 5.7.0 Must issue a STARTTLS command first\r\n',
};
