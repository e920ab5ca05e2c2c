/**
 * `pop3`: the greeting starts with `+OK` (RFC 1939 s4); then `QUIT`, whose
 * `+OK` the polite close reads before the connection ends.
 */
import { quote, runProbe } from '../expect.js';
import type { Probe } from '../types.js';

/** Read the greeting, judge it, say QUIT when it was +OK. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    const greeting = await session.readLine('greeting');
    if (greeting.startsWith('+OK')) {
      session.write('QUIT\r\n');
      return { status: 'L7_OK', detail: quote(greeting) };
    }
    // -ERR is POP3 speaking and saying no; anything else is not POP3 at all.
    if (greeting.startsWith('-ERR')) return { status: 'L7_BAD_STATUS', detail: `expected +OK, got ${quote(greeting)}` };
    return { status: 'L7_BAD_RESPONSE', detail: `expected +OK, got ${quote(greeting)}`, polite: false };
  });
