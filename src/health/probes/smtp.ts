/**
 * `smtp`: greeting 2xx, `EHLO <instance>` answered 2xx (falling back to `HELO`
 * when EHLO gets a 5xx, RFC 5321 s3.2), then `QUIT`. Replies may be multi-line.
 */
import { ProbeFailure } from '../../core/errors.js';
import { quote, runProbe, type Session } from '../expect.js';
import type { Probe } from '../types.js';

/** A reply longer than this is a broken (or hostile) server, not a capability list. */
const MAX_LINES = 100;
const REPLY_LINE = /^(\d{3})([ -]|$)/;

interface Reply {
  code: string;
  /** The first line, for details. */
  text: string;
}

/** Read one reply, following `250-` continuation lines to the final `250 ` line. */
async function readReply(session: Session, what: string): Promise<Reply> {
  let text = '';
  for (let i = 0; i < MAX_LINES; i++) {
    const line = await session.readLine(what);
    const m = REPLY_LINE.exec(line);
    if (!m) throw new ProbeFailure('L7_BAD_RESPONSE', `expected SMTP ${what}, got ${quote(line)}`);
    if (i === 0) text = line;
    if (m[2] !== '-') return { code: m[1], text };
  }
  throw new ProbeFailure('L7_BAD_RESPONSE', `${what} longer than ${MAX_LINES} lines`);
}

/** Greeting, EHLO (or HELO), QUIT. A refusing server is told QUIT too, as RFC 5321 s3.1 asks. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    const greeting = await readReply(session, 'greeting');
    if (greeting.code[0] !== '2') {
      session.write('QUIT\r\n');
      return { status: 'L7_BAD_STATUS', detail: `expected 2xx greeting, got ${quote(greeting.text)}` };
    }
    let verb = 'EHLO';
    const name = options.helo ?? 'tcplb-check';
    session.write(`EHLO ${name}\r\n`);
    let reply = await readReply(session, 'EHLO reply');
    if (reply.code[0] === '5') {
      verb = 'HELO';
      session.write(`HELO ${name}\r\n`);
      reply = await readReply(session, 'HELO reply');
    }
    session.write('QUIT\r\n');
    if (reply.code[0] !== '2') return { status: 'L7_BAD_STATUS', detail: `expected 2xx to ${verb}, got ${quote(reply.text)}` };
    return { status: 'L7_OK', detail: quote(greeting.text) };
  });
