/**
 * POP3 STLS (RFC 2595 4, RFC 2449). Replies come in command order: `+OK` or
 * `-ERR` on one line, a `+ ` SASL challenge, and for CAPA, RETR, TOP, and
 * LIST/UIDL without argument, a positive reply continues up to a `.` line.
 */
import type { ClientLine, ProtocolRules } from './rules.js';
import { word } from './rules.js';

const AUTH = new Set(['USER', 'PASS', 'APOP', 'AUTH']);

export const pop3: ProtocolRules = {
  name: 'pop3',
  tagged: false,
  parseClient(line: string): ClientLine {
    const cmd = word(line, 0);
    const args = line.trim().split(/\s+/).length - 1;
    const multiline = cmd === 'CAPA' || cmd === 'RETR' || cmd === 'TOP' || ((cmd === 'LIST' || cmd === 'UIDL' || cmd === 'AUTH') && args === 0);
    const verb = cmd === 'STLS' ? 'upgrade' : AUTH.has(cmd) && !(cmd === 'AUTH' && args === 0) ? 'auth' : 'other';
    return { verb, tag: '', literal: 0, multiline };
  },
  backendLiteral: () => 0,
  upgradeCommand: 'STLS\r\n',
  isUpgradeReply: () => false,
  endsReply: (line, first, multiline) => !(multiline && first.startsWith('+OK')) || line === '.',
  accepted: (first) => first.startsWith('+OK'),
  ok: () => '+OK Begin TLS negotiation\r\n',
  unavailable: () => '-ERR [SYS/TEMP] TLS not available at the moment\r\n',
  refused: () => '-ERR [AUTH] TLS required: use STLS first\r\n',
};
