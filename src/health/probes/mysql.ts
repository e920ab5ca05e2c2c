/**
 * `mysql`: the server speaks first; its first packet (3-byte length, 1-byte
 * sequence) must be a protocol-10 handshake. An error packet (0xff: too many
 * connections, host not allowed) fails with the server's message.
 */
import { READ_CAP, quote, runProbe } from '../expect.js';
import type { Probe } from '../types.js';

const HANDSHAKE_V10 = 0x0a;
const ERR_PACKET = 0xff;

/** Read the first packet and judge it; nothing is sent, the polite close just ends. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    const head = await session.need(4, 'handshake packet');
    const length = head[0] | (head[1] << 8) | (head[2] << 16);
    // Real greetings are ~100 bytes with sequence 0; anything else is some other protocol.
    if (length === 0 || length > READ_CAP - 4 || head[3] !== 0) {
      return { status: 'L7_BAD_RESPONSE', detail: `expected MySQL handshake, got ${quote(head)}`, polite: false };
    }
    const payload = (await session.need(4 + length, 'handshake packet')).subarray(4, 4 + length);
    if (payload[0] === ERR_PACKET) return { status: 'L7_BAD_STATUS', detail: errorText(payload) };
    if (payload[0] !== HANDSHAKE_V10) {
      return { status: 'L7_BAD_RESPONSE', detail: `expected MySQL protocol 10, got ${payload[0]}`, polite: false };
    }
    const end = payload.indexOf(0, 1);
    const version = payload.subarray(1, end === -1 ? undefined : end).toString('latin1');
    // MariaDB prefixes its version with "5.5.5-" for old replication clients.
    const shown = version.replace(/^5\.5\.5-(?=\d+\.\d+.*MariaDB)/, '');
    return { status: 'L7_OK', detail: `MySQL ${shown.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}` };
  });

/** `MySQL error 1040: Too many connections` from an ERR packet (with or without `#SQLSTATE`). */
function errorText(payload: Buffer): string {
  const code = payload.length >= 3 ? payload.readUInt16LE(1) : 0;
  const rest = payload.subarray(3);
  const message = rest[0] === 0x23 ? rest.subarray(6) : rest; // '#' + 5-char SQLSTATE
  return `MySQL error ${code}: ${quote(message, 60).slice(1, -1)}`;
}
