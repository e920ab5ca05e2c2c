/**
 * Certificate and key files named by the config (`listeners[].tls`,
 * `upstreams.X.tls`), read and checked when the config is loaded: at start,
 * by `--check` and at every reload, so a bad pair is refused before anything
 * changes and the old one keeps serving. Checks: the file is a readable
 * regular file of at most MAX_PEM_BYTES, it holds a PEM certificate / key,
 * the key belongs to the certificate, the certificate has not expired (an
 * error) and does not expire within EXPIRY_WARNING_DAYS (a warning).
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { constants, closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config, TlsCertificate } from '../core/config.js';
import { fileKind } from '../core/file-kind.js';
import { quote } from './suggest.js';

/** A certificate that expires within this many days is reported (as certbot renews at 30, nginx users at 14). */
export const EXPIRY_WARNING_DAYS = 14;

/** A PEM file larger than this is not a certificate or key (a chain is a few KiB). */
export const MAX_PEM_BYTES = 1024 * 1024;

const DAY_MS = 86_400_000;

/** A problem with one of the two files; `which` says at which key to report it. */
export interface PairProblem {
  readonly which: 'cert' | 'key';
  readonly message: string;
}

export type PairResult =
  | { readonly ok: true; readonly certificate: TlsCertificate; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problem: PairProblem };

/**
 * The file's text, or why not. Only a regular file is read (a FIFO would
 * block the load); opened non-blocking and checked again on the descriptor.
 */
export function readPem(file: string, what: string): { text: string } | { error: string } {
  try {
    const before = statSync(file);
    if (!before.isFile()) return { error: `cannot read ${what} ${quote(file)}: it is ${fileKind(before)}, not a regular file` };
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return { error: `cannot read ${what} ${quote(file)}: it is ${fileKind(st)}, not a regular file` };
      if (st.size > MAX_PEM_BYTES) return { error: `${what} ${quote(file)} is too large (${st.size} bytes, at most ${MAX_PEM_BYTES})` };
      return { text: readFileSync(fd, 'utf8') };
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: `cannot read ${what} ${quote(file)}: ${err.code ?? err.message}` };
  }
}

/** DNS names a certificate serves, lower-case: its SAN DNS entries, or its CN when it has none (old certificates). */
export function certificateNames(x: X509Certificate): string[] {
  const san = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).trim().toLowerCase())
    .filter((n) => n !== '');
  if (san.length > 0) return san;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn === undefined ? [] : [cn.trim().toLowerCase()];
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/^CN=/, '');
}

function short(file: string): string {
  return quote(file.length > 80 ? `…${file.slice(-79)}` : file);
}

/** Parse the first certificate of a PEM text, or say why not. */
export function parseCertificate(pem: string, file: string): X509Certificate | string {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return `${short(file)} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`;
  try {
    return new X509Certificate(pem);
  } catch (e) {
    return `${short(file)}: not a valid certificate (${(e as Error).message})`;
  }
}

function parseKey(pem: string, file: string): KeyObject | string {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return `${short(file)} holds no PEM private key ("-----BEGIN PRIVATE KEY-----")`;
  if (pem.includes('ENCRYPTED')) return `${short(file)}: the key is encrypted; tcplb needs it without a passphrase (readable by tcplb only)`;
  try {
    return createPrivateKey(pem);
  } catch (e) {
    return `${short(file)}: not a valid private key (${(e as Error).message})`;
  }
}

/** Read and check one certificate + key pair. `now` is epoch ms. */
export function loadCertificatePair(certFile: string, keyFile: string, now: number): PairResult {
  const fail = (which: 'cert' | 'key', message: string): PairResult => ({ ok: false, problem: { which, message } });
  const c = readPem(certFile, 'certificate');
  if ('error' in c) return fail('cert', c.error);
  const k = readPem(keyFile, 'key');
  if ('error' in k) return fail('key', k.error);
  const x = parseCertificate(c.text, certFile);
  if (typeof x === 'string') return fail('cert', x);
  const key = parseKey(k.text, keyFile);
  if (typeof key === 'string') return fail('key', key);
  if (!x.checkPrivateKey(key)) return fail('key', `the key in ${short(keyFile)} does not match the certificate in ${short(certFile)} (${firstLine(x.subject)})`);
  const notAfter = Date.parse(x.validTo);
  const names = certificateNames(x);
  const label = `certificate ${short(certFile)} (${names.join(', ') || firstLine(x.subject)})`;
  if (notAfter <= now) return fail('cert', `${label} expired on ${new Date(notAfter).toISOString().slice(0, 10)}`);
  try {
    // What the engines will do with it: a chain OpenSSL refuses is refused here, not at the first client.
    createSecureContext({ cert: c.text, key: k.text });
  } catch (e) {
    return fail('cert', `${label}: OpenSSL refuses the pair: ${(e as Error).message}`);
  }
  const warnings: string[] = [];
  const days = Math.floor((notAfter - now) / DAY_MS);
  if (notAfter - now < EXPIRY_WARNING_DAYS * DAY_MS) warnings.push(`${label} expires in ${days} day${days === 1 ? '' : 's'} (${new Date(notAfter).toISOString().slice(0, 10)})`);
  if (Date.parse(x.validFrom) > now) warnings.push(`${label} is not valid before ${new Date(Date.parse(x.validFrom)).toISOString()}`);
  return {
    ok: true,
    warnings,
    certificate: {
      certFile, keyFile, cert: c.text, key: k.text, names,
      serial: x.serialNumber, fingerprint: x.fingerprint256, subject: firstLine(x.subject), issuer: firstLine(x.issuer), notAfter,
    },
  };
}

/**
 * Whether a certificate name covers a host name: equal (case-insensitive),
 * or a wildcard `*.example.net` covering exactly one more label
 * (`mail.example.net`, not `example.net` nor `a.b.example.net`), as RFC 6125.
 */
export function nameCovers(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase().replace(/\.$/, '');
  if (p === h) return true;
  if (!p.startsWith('*.')) return false;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === p.slice(2);
}

/** Every certificate, key and CA file a config names (what a reload re-reads). */
export function tlsFiles(config: Config): string[] {
  const out = new Set<string>();
  for (const l of config.listeners) for (const c of l.tls?.certificates ?? []) out.add(c.certFile).add(c.keyFile);
  for (const u of Object.values(config.upstreams)) {
    for (const f of [u.tls?.caFile, u.tls?.certFile, u.tls?.keyFile]) if (f !== undefined && f !== null) out.add(f);
  }
  return [...out];
}
