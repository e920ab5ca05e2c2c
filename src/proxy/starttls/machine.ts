/**
 * The STARTTLS exchange between a client and one backend, as a pure state
 * machine: bytes in, actions out (driver.ts does the sockets and TLS).
 *
 * Until the client upgrades, lines are relayed both ways (each bounded to
 * MAX_LINE bytes). When the client asks to upgrade, the balancer does not
 * forward its command: it sends its own to the backend and waits for the
 * backend's reply to it, relaying replies to earlier commands. Everything
 * the client sent after its upgrade command, and everything the backend
 * sent after its reply, is discarded — never forwarded, never answered,
 * never fed into a TLS session (the CVE-2011-0411 command-injection class).
 *
 * A client that never upgrades: once it sends credentials or starts a mail
 * transaction in clear (which the protocols allow only before STARTTLS,
 * and which makes an upgrade pointless), the balancer stops reading and the
 * session becomes a plain relay. With requireTls those commands are
 * refused with the protocol's own error instead and never reach the backend.
 */
import type { ProtocolRules, StarttlsProtocol } from './rules.js';
import { imap } from './imap.js';
import { pop3 } from './pop3.js';
import { smtp } from './smtp.js';

/** The longest line (CRLF included) read before TLS; a longer one ends the session. */
export const MAX_LINE = 8192;

export const RULES: Readonly<Record<StarttlsProtocol, ProtocolRules>> = { imap, pop3, smtp };

export type Action =
  | { readonly type: 'toClient'; readonly data: Buffer }
  | { readonly type: 'toBackend'; readonly data: Buffer }
  /** The backend accepted the upgrade: TLS with it, then `ok` to the client and TLS with the client (`unavailable` if the backend's TLS fails). */
  | { readonly type: 'upgrade'; readonly ok: string; readonly unavailable: string }
  /** The backend refused the upgrade (`reply`): `answer` to the client, end the session. */
  | { readonly type: 'refused'; readonly answer: string; readonly reply: string }
  /** Stop reading: relay `toBackend` / `toClient` (bytes read but not yet relayed) first, then plain bytes. */
  | { readonly type: 'passthrough'; readonly toBackend: Buffer; readonly toClient: Buffer }
  /** A line over MAX_LINE before TLS: end the session. */
  | { readonly type: 'tooLong'; readonly side: 'client' | 'backend' };

/** A reply the client is owed, in order (POP3/SMTP): the backend's, or one the balancer makes. */
type Pending =
  | { readonly kind: 'backend'; readonly multiline: boolean }
  | { readonly kind: 'local'; readonly text: string }
  | { readonly kind: 'upgrade' };

/** Splits bytes into CRLF/LF-terminated lines, with raw stretches (IMAP literals) in between. */
class Lines {
  #buf: Buffer = Buffer.alloc(0);
  /** Raw bytes still to pass before the next line. */
  raw = 0;
  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
  }
  /** The next raw stretch, line (with its terminator), 'tooLong', or undefined for "need more". */
  next(max: number): { raw: Buffer } | { line: Buffer } | 'tooLong' | undefined {
    if (this.#buf.length === 0) return undefined;
    if (this.raw > 0) {
      const n = Math.min(this.raw, this.#buf.length);
      this.raw -= n;
      return { raw: this.#take(n) };
    }
    const nl = this.#buf.indexOf(10);
    if (nl < 0) return this.#buf.length >= max ? 'tooLong' : undefined;
    if (nl + 1 > max) return 'tooLong';
    return { line: this.#take(nl + 1) };
  }
  /** Whatever is buffered (for a passthrough), emptying the buffer. */
  rest(): Buffer {
    return this.#take(this.#buf.length);
  }
  #take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }
}

function text(line: Buffer): string {
  return line.toString('latin1').replace(/\r?\n$/, '');
}

export interface MachineOptions {
  readonly requireTls: boolean;
  readonly maxLine?: number;
}

export class StarttlsMachine {
  readonly rules: ProtocolRules;
  /** `inspect`: relaying lines; `upgrading`: waiting for the backend's reply; `done`: the machine is out of the way. */
  phase: 'inspect' | 'upgrading' | 'done' = 'inspect';
  /** Bytes thrown away: the client's after its upgrade command, the backend's after its reply to ours. */
  discardedClient = 0;
  discardedBackend = 0;
  /** Longest line accepted before TLS. */
  readonly maxLine: number;
  readonly #requireTls: boolean;
  readonly #client = new Lines();
  readonly #backend = new Lines();
  /** POP3/SMTP: replies owed, oldest first; the greeting comes first. */
  readonly #pending: Pending[] = [{ kind: 'backend', multiline: false }];
  /** The current reply's first line (POP3/SMTP framing). */
  #first: string | undefined;
  /** The client's tag on its upgrade command (IMAP). */
  #tag = '';

  constructor(protocol: StarttlsProtocol, opts: MachineOptions) {
    this.rules = RULES[protocol];
    this.#requireTls = opts.requireTls;
    this.maxLine = opts.maxLine ?? MAX_LINE;
  }

  /** The protocol's "not now" to the client's upgrade command (its tag included). */
  unavailable(): string {
    return this.rules.unavailable(this.#tag);
  }

  /** Bytes from the client (before TLS). */
  client(chunk: Buffer): Action[] {
    if (this.phase !== 'inspect') {
      this.discardedClient += chunk.length;
      return [];
    }
    this.#client.push(chunk);
    const out: Action[] = [];
    for (;;) {
      const n = this.#client.next(this.maxLine);
      if (n === undefined) return out;
      if (n === 'tooLong') return this.#end(out, { type: 'tooLong', side: 'client' });
      if ('raw' in n) {
        out.push({ type: 'toBackend', data: n.raw });
        continue;
      }
      const l = this.rules.parseClient(text(n.line));
      if (l.verb === 'upgrade') {
        this.phase = 'upgrading';
        this.#tag = l.tag;
        this.discardedClient += this.#client.rest().length;
        if (!this.rules.tagged) this.#pending.push({ kind: 'upgrade' });
        out.push({ type: 'toBackend', data: Buffer.from(this.rules.upgradeCommand) });
        return out;
      }
      if (l.verb !== 'other' && this.#requireTls) {
        this.#local(out, this.rules.refused(l.tag));
        continue;
      }
      if (l.verb !== 'other') {
        this.phase = 'done';
        out.push({ type: 'passthrough', toBackend: Buffer.concat([n.line, this.#client.rest()]), toClient: this.#backend.rest() });
        return out;
      }
      out.push({ type: 'toBackend', data: n.line });
      this.#client.raw = l.literal;
      if (!this.rules.tagged) this.#pending.push({ kind: 'backend', multiline: l.multiline });
    }
  }

  /** Bytes from the backend (before TLS). */
  backend(chunk: Buffer): Action[] {
    if (this.phase === 'done') {
      this.discardedBackend += chunk.length;
      return [];
    }
    this.#backend.push(chunk);
    const out: Action[] = [];
    for (;;) {
      const n = this.#backend.next(this.maxLine);
      if (n === undefined) return out;
      if (n === 'tooLong') return this.#end(out, { type: 'tooLong', side: 'backend' });
      if ('raw' in n) {
        out.push({ type: 'toClient', data: n.raw });
        continue;
      }
      const line = text(n.line);
      const verdict = this.rules.tagged ? this.#tagged(line) : this.#ordered(line);
      if (verdict === 'relay') {
        out.push({ type: 'toClient', data: n.line });
        this.#backend.raw = this.rules.backendLiteral(line);
        this.#flushLocal(out);
      } else if (verdict !== 'wait') {
        this.phase = 'done';
        this.discardedBackend += this.#backend.rest().length;
        out.push(verdict);
        return out;
      }
    }
  }

  /** IMAP: the tagged reply to our STARTTLS decides; any other line is relayed. */
  #tagged(line: string): 'relay' | Action {
    if (this.phase !== 'upgrading' || !this.rules.isUpgradeReply(line)) return 'relay';
    return this.#decide(line, line);
  }

  /** POP3/SMTP: the reply owed first gets the line. */
  #ordered(line: string): 'relay' | 'wait' | Action {
    const head = this.#pending[0];
    // A line nobody asked for (a server's 421 before closing): the client sees it.
    if (head === undefined || head.kind === 'local') return 'relay';
    const first = this.#first ?? line;
    const ends = this.rules.endsReply(line, first, head.kind === 'backend' && head.multiline);
    this.#first = ends ? undefined : first;
    if (ends) this.#pending.shift();
    if (head.kind === 'backend') return 'relay';
    return ends ? this.#decide(first, line) : 'wait';
  }

  #decide(first: string, last: string): Action {
    return this.rules.accepted(first, last)
      ? { type: 'upgrade', ok: this.rules.ok(this.#tag), unavailable: this.rules.unavailable(this.#tag) }
      : { type: 'refused', answer: this.rules.unavailable(this.#tag), reply: last };
  }

  /** A reply the balancer makes: at once (IMAP, tagged), or when the replies before it have gone out. */
  #local(out: Action[], text: string): void {
    if (this.rules.tagged || this.#pending.length === 0) out.push({ type: 'toClient', data: Buffer.from(text) });
    else this.#pending.push({ kind: 'local', text });
  }

  #flushLocal(out: Action[]): void {
    while (this.#pending[0]?.kind === 'local' && this.#first === undefined) {
      out.push({ type: 'toClient', data: Buffer.from((this.#pending.shift() as { text: string }).text) });
    }
  }

  #end(out: Action[], a: Action): Action[] {
    this.phase = 'done';
    out.push(a);
    return out;
  }
}
