/**
 * The TypeScript half of TLS termination in the native relay threads
 * (native/src/tls.cc, native/API.md "TLS listeners"): what a listener's
 * `tls` settings become for the addon's `setTls`, and how the addon's
 * TLS_FAILED event becomes the same failure kind the JS path logs
 * (tls-front.ts), so both engines log and count failed handshakes alike.
 */
import tls from 'node:tls';
import type { ListenerTlsConfig } from '../core/config.js';
import { handshakeFailureKind } from './tls-front.js';
import type { NativeTlsSettings } from './native-binding.js';

/** TLS_FAILED `what` codes (native/src/tls.h). */
const FAIL_TIMEOUT = 1;
const FAIL_CLOSED = 2;
const FAIL_STRICT_SNI = 4;

/** Node's default cipher list split as OpenSSL takes it: TLS 1.3 suites apart from the rest. */
function nodeCiphers(): { ciphers: string; ciphersuites: string } {
  const all = tls.DEFAULT_CIPHERS.split(':');
  return {
    ciphersuites: all.filter((c) => c.startsWith('TLS_')).join(':'),
    ciphers: all.filter((c) => !c.startsWith('TLS_')).join(':'),
  };
}

/** A listener's `tls` as the addon's setTls takes it: the same certificates, names, versions and ciphers the JS path uses. */
export function nativeTlsSettings(cfg: ListenerTlsConfig): NativeTlsSettings {
  return {
    certificates: cfg.certificates.map((c) => ({ cert: c.cert, key: c.key, names: [...c.names] })),
    minVersion: cfg.minVersion,
    alpn: [...cfg.alpn],
    strictSni: cfg.strictSni,
    handshakeTimeoutMs: cfg.handshakeTimeoutMs,
    ...nodeCiphers(),
  };
}

/** The failure kind of a TLS_FAILED event, in handshakeFailureKind's words. */
export function nativeFailureKind(what: number, errnoName: string | undefined, code: string): string {
  if (what === FAIL_TIMEOUT) return handshakeFailureKind(undefined, true);
  if (what === FAIL_CLOSED) return handshakeFailureKind(undefined, false);
  if (what === FAIL_STRICT_SNI) return 'no certificate for the name (strictSni)';
  const c = errnoName ?? code;
  return handshakeFailureKind(Object.assign(new Error(c), { code: c }), false);
}
