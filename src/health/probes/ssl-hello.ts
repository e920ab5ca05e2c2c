/**
 * `ssl_hello`: send a hand-built TLS ClientHello on a plain socket and pass on a
 * ServerHello record. Cheaper than a full handshake (no certificate checks, no
 * keys derived) and it sees servers that answer TLS but fail later.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { quote, runProbe } from '../expect.js';
import type { Probe } from '../types.js';

const HANDSHAKE = 22;
const ALERT = 21;
const SERVER_HELLO = 2;

/** TLS 1.3 suites, then ECDHE AEAD and CBC, then plain RSA for old servers. */
const CIPHERS = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
const GROUPS = [0x001d, 0x0017, 0x0018]; // x25519, secp256r1, secp384r1
const SIG_ALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807, 0x0201];

const u8 = (...bytes: number[]): Buffer => Buffer.from(bytes);
const u16 = (n: number): Buffer => u8(n >> 8, n & 0xff);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const list16 = (ns: number[]): Buffer => Buffer.concat(ns.map(u16));
const ext = (type: number, body: Buffer): Buffer => Buffer.concat([u16(type), vec16(body)]);

/** A ClientHello record offering TLS 1.3 and 1.2, with SNI unless `servername` is '' or an IP. */
export function clientHello(servername: string): Buffer {
  // A real x25519 share saves a HelloRetryRequest round trip with TLS 1.3 servers.
  const share = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const sni = servername && !net.isIP(servername) ? [ext(0, vec16(Buffer.concat([u8(0), vec16(Buffer.from(servername, 'ascii'))])))] : [];
  const extensions = Buffer.concat([
    ...sni,
    ext(10, vec16(list16(GROUPS))),
    ext(11, vec8(u8(0))), // ec_point_formats: uncompressed
    ext(13, vec16(list16(SIG_ALGS))),
    ext(23, Buffer.alloc(0)), // extended_master_secret
    ext(43, vec8(list16([0x0304, 0x0303]))), // supported_versions
    ext(51, vec16(Buffer.concat([u16(0x001d), vec16(share)]))), // key_share
    ext(0xff01, vec8(Buffer.alloc(0))), // renegotiation_info
  ]);
  const body = Buffer.concat([u16(0x0303), randomBytes(32), vec8(randomBytes(32)), vec16(list16(CIPHERS)), vec8(u8(0)), vec16(extensions)]);
  const handshake = Buffer.concat([u8(1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff), body]);
  return Buffer.concat([u8(HANDSHAKE, 3, 3), vec16(handshake)]);
}

const ALERTS: Record<number, string> = {
  0: 'close_notify', 10: 'unexpected_message', 20: 'bad_record_mac', 40: 'handshake_failure', 42: 'bad_certificate',
  47: 'illegal_parameter', 50: 'decode_error', 51: 'decrypt_error', 70: 'protocol_version', 71: 'insufficient_security',
  80: 'internal_error', 86: 'inappropriate_fallback', 90: 'user_canceled', 109: 'missing_extension', 112: 'unrecognized_name',
};

/** Say what came back instead of a ServerHello (`isTls`: it is a TLS record header). */
function describe(data: Buffer, isTls: boolean): string {
  if (isTls && data[0] === ALERT) return `alert ${ALERTS[data[6]] ?? `#${data[6]}`}`;
  if (isTls) return `handshake message type ${data[5]}`;
  const head = data.subarray(0, 8);
  const text = head.every((b) => (b >= 0x20 && b < 0x7f) || b === 13 || b === 10 || b === 9);
  return text ? `plain text ${quote(data)}` : quote(data);
}

/** Write the ClientHello, read the first record's header and handshake type. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect(false); // the hello is ours: never wrapped in Node's TLS
    session.phase = 'L6';
    session.write(clientHello(options.servername));
    const first = await session.need(1, 'ServerHello');
    // A TLS record is worth waiting for until its type is known; anything else is judged at once.
    const looksTls = first[0] === HANDSHAKE || first[0] === ALERT;
    const data = looksTls ? await session.need(first[0] === ALERT ? 7 : 6, 'ServerHello') : first;
    const isTls = looksTls && data[1] === 3;
    if (isTls && data[0] === HANDSHAKE && data[5] === SERVER_HELLO) return { status: 'L6_OK', detail: 'ServerHello received' };
    return { status: 'L6_BAD', detail: `expected ServerHello, got ${describe(data, isTls)}`, polite: isTls };
  });
