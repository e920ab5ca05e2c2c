/**
 * IMAP STARTTLS (RFC 3501 6.2.1, RFC 2595). Commands carry a tag; the
 * balancer's own STARTTLS on the backend leg uses TAG, and only the reply
 * carrying TAG is the backend's answer (untagged lines before it are relayed).
 */
import type { ClientLine, ProtocolRules } from './rules.js';
import { word } from './rules.js';

/** The tag of the balancer's STARTTLS on the backend leg. */
export const TAG = 'tcplb.starttls';

/** `{123}` or `{123+}` (LITERAL+) at the end of a line: that many raw bytes follow. */
export function literalAt(line: string): number {
  const m = /\{(\d{1,10})\+?\}$/.exec(line);
  return m === null ? 0 : Number(m[1]);
}

export const imap: ProtocolRules = {
  name: 'imap',
  tagged: true,
  parseClient(line: string): ClientLine {
    const tag = word(line, 0) === '' ? '' : line.split(' ')[0]!;
    const cmd = word(line, 1);
    const literal = literalAt(line);
    // A line without a tag and command (a SASL response, IDLE's DONE) is relayed.
    const verb = cmd === 'STARTTLS' ? 'upgrade' : cmd === 'LOGIN' || cmd === 'AUTHENTICATE' ? 'auth' : 'other';
    return { verb, tag, literal, multiline: false };
  },
  backendLiteral: literalAt,
  upgradeCommand: `${TAG} STARTTLS\r\n`,
  isUpgradeReply: (line) => line.toLowerCase().startsWith(`${TAG} `),
  endsReply: () => true,
  accepted: (first) => /^\S+ OK\b/i.test(first),
  ok: (tag) => `${tag} OK Begin TLS negotiation now\r\n`,
  unavailable: (tag) => `${tag} NO [UNAVAILABLE] TLS not available at the moment\r\n`,
  refused: (tag) => `${tag} NO [PRIVACYREQUIRED] TLS required: use STARTTLS first\r\n`,
};
