/**
 * What `ctl certs` reports (docs/control-protocol.md#certs): each TLS
 * listener's certificates with names, issuer and expiry, when each was first
 * served, and the result of the last reload that concerned them.
 *
 * The certificates themselves are in the running config (read and checked
 * by config/certificates.ts at each load); this book adds only what the
 * config cannot know: when a certificate (by fingerprint) came into service,
 * and why the last attempt to replace it failed. A reload refused for any
 * reason re-reads the listener's current certificate files: a pair that
 * fails now (certbot wrote a half pair, a mismatched key) is recorded
 * against the listeners that name it, while one refused for an unrelated
 * reason (a typo elsewhere in the config) leaves the listeners' records be.
 */
import { loadCertificatePair } from '../config/certificates.js';
import type { Config, ListenerConfig } from '../core/config.js';
import type { AcmeStatus } from './acme.js';

const DAY_MS = 86_400_000;

/** One certificate a listener serves. */
export interface CertView {
  readonly certFile: string;
  readonly keyFile: string;
  /** DNS names (SANs, or the CN of an old certificate), lower-case. */
  readonly names: readonly string[];
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  /** SHA-256 fingerprint, as `AB:CD:…`. */
  readonly fingerprint: string;
  /** Epoch ms of notAfter. */
  readonly notAfter: number;
  /** Whole days left (negative once expired). */
  readonly daysLeft: number;
  /** Epoch ms this certificate (this fingerprint on this listener) came into service. */
  readonly loadedAt: number;
  /** The first is the default (no SNI, or a name no certificate covers). */
  readonly default: boolean;
}

/** The last reload that concerned a listener's certificates. */
export interface CertReload {
  readonly at: number;
  readonly ok: boolean;
  /** Why the listener's files were refused (the old certificates keep serving). */
  readonly error?: string;
}

export interface ListenerCertsView {
  readonly listener: string;
  readonly listen: string;
  readonly certificates: readonly CertView[];
  readonly lastReload: CertReload;
  /** Where TLS is terminated, when the engine says (native: the relay threads or the embedded JS engine). */
  readonly terminatedBy?: 'native' | 'js';
}

export interface CertsReport {
  readonly time: number;
  readonly listeners: readonly ListenerCertsView[];
  /** The ACME client's state, when the config has `acme`. */
  readonly acme?: AcmeStatus;
}

/** The earliest notAfter (epoch ms) of a listener's certificates, or undefined for a plain listener. */
export function nearestExpiry(l: ListenerConfig): number | undefined {
  const all = l.tls?.certificates ?? [];
  return all.length === 0 ? undefined : Math.min(...all.map((c) => c.notAfter));
}

export class CertBook {
  /** `listener\0fingerprint` → epoch ms it came into service. */
  #since = new Map<string, number>();
  #last = new Map<string, CertReload>();

  constructor(config: Config, now: number = Date.now()) {
    this.applied(config, now);
  }

  /** A config was applied (start or an accepted reload): its files read fine, new fingerprints start their service now. */
  applied(config: Config, now: number = Date.now()): void {
    const keep = new Map<string, number>();
    for (const l of config.listeners) {
      if (l.tls === undefined) continue;
      for (const c of l.tls.certificates) {
        const k = `${l.name}\0${c.fingerprint}`;
        keep.set(k, this.#since.get(k) ?? now);
      }
      this.#last.set(l.name, { at: now, ok: true });
    }
    this.#since = keep;
    for (const name of [...this.#last.keys()]) if (!config.listeners.some((l) => l.name === name && l.tls !== undefined)) this.#last.delete(name);
  }

  /** A reload was refused: record it against each listener whose certificate files fail now. */
  refused(config: Config, now: number = Date.now()): void {
    for (const l of config.listeners) {
      if (l.tls === undefined) continue;
      for (const c of l.tls.certificates) {
        const r = loadCertificatePair(c.certFile, c.keyFile, now);
        if (!r.ok) {
          this.#last.set(l.name, { at: now, ok: false, error: r.problem.message });
          break;
        }
      }
    }
  }

  report(config: Config, now: number = Date.now(), engines?: ReadonlyMap<string, 'native' | 'js'>, acme?: AcmeStatus): CertsReport {
    const listeners = config.listeners.flatMap((l): ListenerCertsView[] => {
      if (l.tls === undefined) return [];
      const by = engines?.get(l.name);
      return [{
        ...(by === undefined ? {} : { terminatedBy: by }),
        listener: l.name,
        listen: l.listenText,
        certificates: l.tls.certificates.map((c, i) => ({
          certFile: c.certFile, keyFile: c.keyFile, names: c.names, subject: c.subject, issuer: c.issuer, serial: c.serial,
          fingerprint: c.fingerprint, notAfter: c.notAfter, daysLeft: Math.floor((c.notAfter - now) / DAY_MS),
          loadedAt: this.#since.get(`${l.name}\0${c.fingerprint}`) ?? now, default: i === 0,
        })),
        lastReload: this.#last.get(l.name) ?? { at: now, ok: true },
      }];
    });
    return { time: now, listeners, ...(acme === undefined ? {} : { acme }) };
  }
}

/** `2025-03-01 12:00` in local time. */
function when(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

function daysText(days: number): string {
  if (days < 0) return `EXPIRED ${-days} day${days === -1 ? '' : 's'} ago`;
  return `${days} day${days === 1 ? '' : 's'} left`;
}

/**
 * `ctl certs` as text: per listener a title with the last reload, then one
 * block per certificate.
 *
 *     imaps 0.0.0.0:993 · last reload 2025-01-02 03:04 ok
 *       mail.example.net, *.example.net (default)
 *         issuer R11 · expires 2025-03-01 12:00 (27 days left) · serving since 2025-01-02 03:04
 *         serial 04A1… · /etc/letsencrypt/live/mail.example.net/fullchain.pem
 */
export function formatCerts(r: CertsReport): string[] {
  if (r.listeners.length === 0 && r.acme === undefined) return ['no listener has tls'];
  const out: string[] = r.acme === undefined ? [] : formatAcme(r.acme);
  for (const l of r.listeners) {
    const last = l.lastReload.ok ? 'ok' : `REFUSED: ${l.lastReload.error ?? ''} (the certificates below keep serving)`;
    out.push(`${l.listener} ${l.listen} · last reload ${when(l.lastReload.at)} ${last}`);
    // Only an engine with two data paths (native) says which one terminates this listener's TLS.
    if (l.terminatedBy !== undefined) out.push(`  TLS in the ${l.terminatedBy === 'native' ? 'native relay threads' : 'JavaScript engine'}`);
    for (const c of l.certificates) {
      out.push(`  ${c.names.join(', ') || c.subject}${c.default ? ' (default)' : ''}`);
      out.push(`    issuer ${c.issuer} · expires ${when(c.notAfter)} (${daysText(c.daysLeft)}) · serving since ${when(c.loadedAt)}`);
      out.push(`    serial ${c.serial} · ${c.certFile}`);
    }
  }
  return out;
}

/**
 * The ACME lines of `ctl certs`:
 *
 *     acme www.example.net, example.net · tls-alpn-01 · https://acme-v02.api.letsencrypt.org/directory
 *       certificate expires 2025-03-01 12:00, renewal due 2025-01-30 12:00 · next attempt 2025-01-30 12:00
 *       LAST ORDER FAILED 2025-01-30 12:00 (3 in a row, 5 in all): connect ECONNREFUSED … (the certificate keeps serving)
 */
export function formatAcme(a: AcmeStatus): string[] {
  const out = [`acme ${a.domains.join(', ')} · ${a.challenge} · ${a.directory}${a.order ? '' : ' · order: false (the peer orders)'}`];
  const cert = a.certificate === null ? 'no certificate yet' : `certificate expires ${when(a.certificate.notAfter)}, renewal due ${when(a.certificate.renewAt)}`;
  const next = a.ordering ? 'ordering now' : a.nextAttempt === null ? 'no attempt planned' : `next attempt ${when(a.nextAttempt)}`;
  out.push(`  ${cert} · ${next}`);
  if (a.failures > 0 && a.lastError !== null) {
    const keeps = a.certificate === null ? 'no certificate to serve yet' : 'the certificate keeps serving';
    out.push(`  LAST ORDER FAILED ${when(a.lastErrorAt ?? 0)} (${a.failures} in a row, ${a.failuresTotal} in all): ${a.lastError} (${keeps})`);
  } else if (a.lastIssued !== null) out.push(`  last issued ${when(a.lastIssued)}`);
  return out;
}

/** Whether a report needs attention (ctl certs exits 1): an expired certificate, a listener whose last reload was refused, a failing ACME order. */
export function certsTrouble(r: CertsReport): boolean {
  return r.listeners.some((l) => !l.lastReload.ok || l.certificates.some((c) => c.notAfter <= r.time)) || (r.acme?.failures ?? 0) > 0;
}
