/**
 * What the balancer must know of a mail protocol to do its STARTTLS
 * (docs/tls.md#starttls-at-the-balancer): which client line asks for the
 * upgrade, which ones authenticate, how the backend's replies are framed,
 * and the protocol's own answers. One small module per protocol implements
 * it (imap.ts, pop3.ts, smtp.ts); machine.ts drives them. Pure: strings in,
 * strings out.
 */

import type { StarttlsProtocol } from '../../core/config.js';

export type { StarttlsProtocol };

/** A client line, as far as the balancer cares. */
export interface ClientLine {
  /**
   * `upgrade`: the STARTTLS / STLS command. `auth`: a command that would
   * send credentials (refused in clear under requireTls). `final`: after it
   * the protocol no longer upgrades (a mail transaction): refused under
   * requireTls, else the session becomes a plain relay. `other`: relayed.
   */
  readonly verb: 'upgrade' | 'auth' | 'final' | 'other';
  /** IMAP's tag ('' for the others): the answer to the client carries it. */
  readonly tag: string;
  /** Bytes of an IMAP literal (`{n}` at the end of the line) that follow raw. */
  readonly literal: number;
  /** POP3: whether a positive reply to it is multi-line (ends with a `.` line). */
  readonly multiline: boolean;
}

export interface ProtocolRules {
  readonly name: StarttlsProtocol;
  /** IMAP: replies are matched by tag; POP3/SMTP: replies come in command order. */
  readonly tagged: boolean;
  parseClient(line: string): ClientLine;
  /** A backend line's literal (IMAP `{n}` at the end), 0 when none. */
  backendLiteral(line: string): number;
  /** The command the balancer sends to the backend to upgrade its own leg. */
  readonly upgradeCommand: string;
  /** IMAP: whether a backend line is the tagged reply to upgradeCommand. */
  isUpgradeReply(line: string): boolean;
  /**
   * POP3/SMTP: whether `line` ends the reply it belongs to; `first` is the
   * reply's first line, `multiline` what the command it answers said.
   */
  endsReply(line: string, first: string, multiline: boolean): boolean;
  /** Whether the backend's (complete) reply to upgradeCommand accepts it. */
  accepted(first: string, last: string): boolean;
  /** To the client: go ahead with the TLS handshake now. */
  ok(tag: string): string;
  /** To the client: the upgrade is not possible now (backend refused, or its TLS failed). */
  unavailable(tag: string): string;
  /** To the client (requireTls): no credentials nor mail before TLS. */
  refused(tag: string): string;
}

/** The first word of a line, upper-cased ('' for none). */
export function word(line: string, index: number): string {
  return (line.split(' ')[index] ?? '').toUpperCase();
}
