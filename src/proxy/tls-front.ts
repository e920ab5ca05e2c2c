/**
 * TLS terminated at the balancer for one listener (`listeners[].tls`,
 * docs/tls.md): a SecureContext per certificate, the pick by SNI, the
 * handshake with its timeout, and a rate-limited log of failed handshakes.
 *
 * Certificate choice: the client's SNI name is matched against each
 * certificate's names (exact, then one-label wildcard), in config order; no
 * SNI or a name no certificate covers gets the first certificate (many mail
 * clients and MTAs send no SNI), unless `strictSni`, where the default
 * context holds no certificate at all so OpenSSL fails the handshake.
 *
 * A reload that changes the certificates builds a new TlsFront; sessions
 * already established keep the TLSSocket (and context) they were made with,
 * new handshakes get the new one.
 */
import crypto from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { ListenerTlsConfig } from '../core/config.js';
import { nameCovers } from '../config/certificates.js';
import type { TlsSession } from '../core/proxy-header.js';

/** How the primary hands its session-ticket keys to its relay workers (worker-engine.ts). */
export const TICKET_KEYS_ENV = 'TCPLB_TLS_TICKET_KEYS';
let ticketKeysOfProcess: Buffer | undefined;

/**
 * The session-ticket keys (48 bytes: name, HMAC and AES keys) every TLS
 * listener of this tcplb instance uses. Without them each SecureContext
 * draws its own, so a ticket only resumed on the context that issued it:
 * with `workers: 2` a client's next connection, accepted by the other
 * worker half the time, fell back to a full handshake (bench/tls.ts: 1
 * resumption in 4), and every reload that rebuilt a TlsFront voided every
 * ticket. Random per instance (the primary's, inherited by its workers
 * through the environment, which only the same user can read), never
 * written anywhere: as HAProxy's and nginx's defaults, a restart voids them.
 */
export function ticketKeys(): Buffer {
  if (ticketKeysOfProcess !== undefined) return ticketKeysOfProcess;
  const inherited = process.env[TICKET_KEYS_ENV];
  delete process.env[TICKET_KEYS_ENV]; // not passed on to anything this process starts
  ticketKeysOfProcess = inherited !== undefined && /^[0-9a-f]{96}$/.test(inherited) ? Buffer.from(inherited, 'hex') : crypto.randomBytes(48);
  return ticketKeysOfProcess;
}


/** Why a handshake failed, in a few words that group alike failures for the log. */
export function handshakeFailureKind(err: (Error & { code?: string }) | undefined, timedOut: boolean): string {
  if (timedOut) return 'handshake timeout';
  if (err === undefined) return 'client closed during the handshake';
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'client reset during the handshake';
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE|UNEXPECTED_RECORD|BAD_RECORD|RECORD_TOO|LENGTH_MISMATCH/.test(code)) return 'not a TLS ClientHello';
  if (/VERSION_TOO_LOW|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE/.test(code)) return 'TLS version refused (below minVersion)';
  if (/NO_SHARED_CIPHER/.test(code)) return 'no shared cipher';
  // PASSED_A_NULL_PARAMETER: OpenSSL's words when the SNI callback hands it strictSni's certificate-less context.
  if (/NO_SUITABLE|NO_CERTIFICATE|CERTIFICATE_REQUIRED|MISSING_|PASSED_A_NULL_PARAMETER/.test(code)) return 'no certificate for the name (strictSni)';
  if (/NO_APPLICATION_PROTOCOL/.test(code)) return 'no common ALPN protocol';
  return code !== '' ? code : err.message;
}

export class TlsFront {
  readonly cfg: ListenerTlsConfig;
  readonly #certs: ReadonlyArray<{ readonly names: readonly string[]; readonly ctx: tls.SecureContext }>;
  readonly #default: tls.SecureContext;
  readonly #alpn: string[] | undefined;

  constructor(cfg: ListenerTlsConfig) {
    this.cfg = cfg;
    const opts = { minVersion: cfg.minVersion, ticketKeys: ticketKeys() } as const;
    this.#certs = cfg.certificates.map((c) => ({ names: c.names, ctx: tls.createSecureContext({ ...opts, cert: c.cert, key: c.key }) }));
    // No certificate at all: an `acme` listener before its first certificate arrives; handshakes fail until then.
    this.#default = cfg.strictSni || this.#certs.length === 0 ? tls.createSecureContext(opts) : this.#certs[0]!.ctx;
    this.#alpn = cfg.alpn.length > 0 ? [...cfg.alpn] : undefined;
  }

  /** The context for an SNI name: an exact name first, then a wildcard; undefined = the default. */
  contextFor(servername: string): tls.SecureContext | undefined {
    const host = servername.toLowerCase();
    for (const c of this.#certs) if (c.names.includes(host)) return c.ctx;
    for (const c of this.#certs) if (c.names.some((n) => n.startsWith('*.') && nameCovers(n, host))) return c.ctx;
    return undefined;
  }

  readonly #sni = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.contextFor(servername) ?? this.#default);
  };

  /** Start the server side of a handshake on an accepted socket. */
  wrap(raw: net.Socket): tls.TLSSocket {
    return new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.#default,
      SNICallback: this.#sni,
      ...(this.#alpn === undefined ? {} : { ALPNProtocols: this.#alpn }),
    });
  }

  /** The facts of an established session. */
  static facts(t: tls.TLSSocket): TlsSession {
    const sn = (t as tls.TLSSocket & { servername?: string | false }).servername;
    return {
      version: t.getProtocol() ?? '',
      cipher: t.getCipher()?.name ?? '',
      servername: typeof sn === 'string' ? sn : '',
      alpn: typeof t.alpnProtocol === 'string' ? t.alpnProtocol : '',
    };
  }
}

