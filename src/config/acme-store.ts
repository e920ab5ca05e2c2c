/**
 * The files of `acme.storage` (docs/tls.md#acme): the account key, the
 * certificate and its key, and the challenges being validated. The ACME
 * client (runtime/acme.ts) writes them, the config load reads the
 * certificate (a restart with a valid one orders nothing), and the data
 * plane reads the challenges on demand: a member of an HA pair sharing the
 * folder answers a challenge its peer ordered, and relay processes need no
 * channel to the control plane.
 *
 * Layout (folder 0700, files 0600, each written to a temporary name and
 * renamed over the old one, so a reader sees the old file or the new, never
 * half of one):
 *
 *     account.key                  the ACME account's private key (PEM)
 *     certificate.pem              the certificate, its chain and its key in one
 *                                  file: one rename replaces the pair, so no
 *                                  reader (the peer of a pair) ever sees a new
 *                                  certificate with the old key
 *     order.lock                   held while one member of a pair orders
 *     challenges/http-01/TOKEN     the key authorization for TOKEN
 *     challenges/tls-alpn-01/NAME.pem  key + certificate to answer for NAME
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadCertificatePair, type PairResult } from './certificates.js';

export interface AcmePaths {
  readonly dir: string;
  readonly accountKey: string;
  readonly cert: string;
  readonly lock: string;
  readonly http: string;
  readonly alpn: string;
}

export function acmePaths(storage: string): AcmePaths {
  return {
    dir: storage,
    accountKey: join(storage, 'account.key'),
    cert: join(storage, 'certificate.pem'),
    lock: join(storage, 'order.lock'),
    http: join(storage, 'challenges', 'http-01'),
    alpn: join(storage, 'challenges', 'tls-alpn-01'),
  };
}

/** An ACME token: base64url (RFC 8555 §8.1), bounded. Anything else is never looked up (no `../`). */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
/** A DNS name as a file name: letters, digits, `-`, `.`, no leading dot. */
const NAME = /^[a-z0-9][a-z0-9.-]{0,252}$/;

export function isAcmeToken(s: string): boolean {
  return TOKEN.test(s);
}

/** Create `dir` (and parents) and make it 0700: it holds private keys. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Write `file` (0600) atomically: a temporary file in the same folder, synced, renamed over it. */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  ensurePrivateDir(dirname(file));
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** A lock older than this was left by a member that died mid-order: taken over. */
export const ORDER_LOCK_STALE_MS = 10 * 60_000;

/**
 * Take the order lock of a shared storage (O_EXCL create); false while
 * another member holds a fresh one. `release` removes it.
 */
export function takeOrderLock(storage: string, who: string, now: number): { release(): void } | false {
  const file = acmePaths(storage).lock;
  ensurePrivateDir(storage);
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${who} ${new Date(now).toISOString()}\n`);
      closeSync(fd);
      return { release: () => rmSync(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = now - statSync(file).mtimeMs;
      } catch {
        continue; // released meanwhile: try again
      }
      if (age < ORDER_LOCK_STALE_MS) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function readSmall(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The key authorization for an http-01 token, if this instance or its peer published one. */
export function readHttpChallenge(storage: string, token: string): string | undefined {
  if (!isAcmeToken(token)) return undefined;
  return readSmall(join(acmePaths(storage).http, token));
}

/** Key and certificate (one PEM text) answering tls-alpn-01 for `name`, if a challenge for it runs. */
export function readAlpnChallenge(storage: string, name: string): string | undefined {
  const n = name.toLowerCase();
  if (!NAME.test(n) || n.includes('..')) return undefined;
  return readSmall(join(acmePaths(storage).alpn, `${n}.pem`));
}

export function alpnChallengeFile(storage: string, name: string): string {
  return join(acmePaths(storage).alpn, `${name.toLowerCase()}.pem`);
}

export function httpChallengeFile(storage: string, token: string): string {
  if (!isAcmeToken(token)) throw new Error(`invalid ACME token ${JSON.stringify(token.slice(0, 40))}`);
  return join(acmePaths(storage).http, token);
}

/**
 * The stored certificate, read and checked like a configured one; undefined
 * when there is none yet (the first start orders one).
 */
export function storedCertificate(storage: string, now: number): PairResult | undefined {
  const p = acmePaths(storage);
  const r = loadCertificatePair(p.cert, p.cert, now);
  if (!r.ok) return /ENOENT/.test(r.problem.message) ? undefined : r;
  // The engines get the certificates and the key apart, as from two files.
  const blocks = (re: RegExp): string => (r.certificate.cert.match(re) ?? []).join('\n') + '\n';
  return {
    ...r,
    certificate: {
      ...r.certificate,
      cert: blocks(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g),
      key: blocks(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g),
    },
  };
}
