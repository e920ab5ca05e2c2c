/**
 * `imap`: the greeting is `* OK` or `* PREAUTH` (RFC 9051 s7.1); `* BYE` means
 * the server refuses. Then `a1 LOGOUT`, whose answer the polite close reads.
 */
import { quote, runProbe } from '../expect.js';
import type { Probe } from '../types.js';

// IMAP atoms are case-insensitive; `\b` keeps `* OKAY` from passing.
const GOOD = /^\* (OK|PREAUTH)\b/i;
const BYE = /^\* BYE\b/i;

/** Read the untagged greeting, judge it, log out when it was good. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    const greeting = await session.readLine('greeting');
    if (GOOD.test(greeting)) {
      session.write('a1 LOGOUT\r\n');
      return { status: 'L7_OK', detail: quote(greeting) };
    }
    if (BYE.test(greeting)) return { status: 'L7_BAD_STATUS', detail: `expected * OK, got ${quote(greeting)}` };
    return { status: 'L7_BAD_RESPONSE', detail: `expected * OK, got ${quote(greeting)}`, polite: false };
  });
