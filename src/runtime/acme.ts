/**
 * The balancer's own certificate by ACME (docs/tls.md#acme): order it when
 * storage holds none, renew it at two thirds of its lifetime (or
 * `renewBefore`), retry a failed order with jittered exponential backoff,
 * and never touch the certificate in service until a new one is stored.
 *
 * The protocol is acme-client's; this file decides when to order, writes the
 * challenge answers where the listeners read them (config/acme-store.ts),
 * stores the result atomically and asks for a reload (injected `issued`),
 * which reads the new certificate like any changed certificate file.
 */
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import https from 'node:https';
import acme from 'acme-client';
import os from 'node:os';
import { acmePaths, alpnChallengeFile, ensurePrivateDir, httpChallengeFile, storedCertificate, takeOrderLock, writeFileAtomic } from '../config/acme-store.js';
import { readPem } from '../config/certificates.js';
import type { AcmeConfig } from '../core/config.js';

/** A setTimeout longer than this overflows (24.8 days); later wake-ups are re-armed. */
const MAX_TIMER_MS = 2_000_000_000;

/**
 * When to renew a certificate valid from `notBefore` to `notAfter` (epoch
 * ms): `renewBeforeMs` before expiry, or at two thirds of the lifetime when
 * that is null (Let's Encrypt's advice; 60 of 90 days, 30 of 45).
 */
export function renewalTime(notBefore: number, notAfter: number, renewBeforeMs: number | null): number {
  if (renewBeforeMs !== null) return notAfter - renewBeforeMs;
  return notBefore + Math.round((notAfter - notBefore) * 2 / 3);
}

/**
 * The wait before retry number `failures` (1 = after the first failure):
 * `minMs` doubled per failure up to `maxMs`, then jittered to 50-100% so a
 * fleet that failed together does not retry together.
 */
export function retryDelay(failures: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(40, Math.max(0, failures - 1)));
  return Math.round(base * (0.5 + 0.5 * random()));
}

/** What `ctl certs`, the console header, the log and the metrics show of ACME. */
export interface AcmeStatus {
  readonly domains: readonly string[];
  readonly challenge: string;
  readonly directory: string;
  /** false: the peer orders (shared storage); this instance serves and answers. */
  readonly order: boolean;
  readonly ordering: boolean;
  /** The stored certificate, if any. */
  readonly certificate: { readonly notAfter: number; readonly issuer: string; readonly serial: string; readonly renewAt: number } | null;
  /** Epoch ms of the next order attempt (renewal or retry); null when none is planned. */
  readonly nextAttempt: number | null;
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  /** Failed attempts since the last success. */
  readonly failures: number;
  readonly failuresTotal: number;
  readonly lastIssued: number | null;
}

export interface AcmeDeps {
  readonly log: { info(m: string): void; warn(m: string): void; error(m: string): void };
  /** A new certificate is stored: reload so the listeners serve it (resolves when applied). */
  issued(): Promise<void>;
  /** A failed attempt (the metrics count them). */
  failed?(): void;
  now?(): number;
  random?(): number;
}

export class AcmeManager {
  #cfg: AcmeConfig;
  readonly #deps: AcmeDeps;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #next: number | null = null;
  #running: Promise<{ ok: boolean; message: string }> | undefined;
  #failures = 0;
  #failuresTotal = 0;
  #lastError: string | null = null;
  #lastErrorAt: number | null = null;
  #lastIssued: number | null = null;
  #closed = false;

  constructor(cfg: AcmeConfig, deps: AcmeDeps) {
    this.#cfg = cfg;
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  get config(): AcmeConfig {
    return this.#cfg;
  }

  /** Plan the first attempt from the stored certificate: none, or due, = now. */
  start(): void {
    this.#plan(this.#dueFromStorage());
  }

  /** The config changed (a reload): other names, directory or challenge order at once; else the plan stands. */
  update(cfg: AcmeConfig): void {
    const before = this.#cfg;
    this.#cfg = cfg;
    const same = before.directory === cfg.directory && before.challenge === cfg.challenge && JSON.stringify(before.domains) === JSON.stringify(cfg.domains)
      && before.storage === cfg.storage && before.renewBeforeMs === cfg.renewBeforeMs && before.order === cfg.order;
    if (!same && this.#running === undefined) {
      this.#failures = 0;
      this.#plan(this.#dueFromStorage());
    }
  }

  /** `ctl acme renew`: order now, whatever the schedule; resolves with the outcome. */
  renew(domain?: string): Promise<{ ok: boolean; message: string }> {
    if (domain !== undefined && !this.#cfg.domains.includes(domain.toLowerCase())) {
      return Promise.resolve({ ok: false, message: `no ACME certificate for ${JSON.stringify(domain)} (acme.domains: ${this.#cfg.domains.join(', ')})` });
    }
    if (!this.#cfg.order) return Promise.resolve({ ok: false, message: 'acme.order is false on this instance: its peer orders the certificate (shared storage)' });
    return this.#attempt('forced by ctl');
  }

  status(): AcmeStatus {
    const stored = this.#stored();
    return {
      domains: this.#cfg.domains, challenge: this.#cfg.challenge, directory: this.#cfg.directory, order: this.#cfg.order,
      ordering: this.#running !== undefined,
      certificate: stored === undefined ? null : { notAfter: stored.notAfter, issuer: stored.issuer, serial: stored.serial, renewAt: stored.renewAt },
      nextAttempt: this.#next, lastError: this.#lastError, lastErrorAt: this.#lastErrorAt,
      failures: this.#failures, failuresTotal: this.#failuresTotal, lastIssued: this.#lastIssued,
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#next = null;
  }

  /** The stored certificate's facts, or undefined (none, unreadable, expired, or for other names). */
  #stored(): { notAfter: number; issuer: string; serial: string; renewAt: number; names: readonly string[] } | undefined {
    const r = storedCertificate(this.#cfg.storage, this.#now());
    if (r === undefined || !r.ok) return undefined;
    const c = r.certificate;
    const x = new X509Certificate(c.cert);
    const notBefore = Date.parse(x.validFrom);
    return { notAfter: c.notAfter, issuer: c.issuer, serial: c.serial, names: c.names, renewAt: renewalTime(notBefore, c.notAfter, this.#cfg.renewBeforeMs) };
  }

  /** When the stored certificate is due: now when there is none or it lacks a configured name. */
  #dueFromStorage(): number {
    const s = this.#stored();
    if (s === undefined || this.#cfg.domains.some((d) => !s.names.includes(d))) return this.#now();
    return s.renewAt;
  }

  #plan(at: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#next = at;
    const wait = Math.max(0, at - this.#now());
    this.#timer = setTimeout(() => {
      if (this.#now() < at) return this.#plan(at); // a wait longer than a timer allows
      void this.#attempt('scheduled');
    }, Math.min(wait, MAX_TIMER_MS));
    this.#timer.unref();
  }

  /** One attempt at a time: a second caller shares the running one. */
  #attempt(why: string): Promise<{ ok: boolean; message: string }> {
    this.#running ??= this.#order(why).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #order(why: string): Promise<{ ok: boolean; message: string }> {
    const cfg = this.#cfg;
    clearTimeout(this.#timer);
    this.#next = null;
    // With shared storage the peer may have renewed meanwhile: take its certificate instead of ordering another.
    const due = this.#dueFromStorage();
    // (A retry after a failure is still wanted: the operator forced it, or the certificate was due.)
    if (why === 'scheduled' && this.#failures === 0 && due > this.#now()) {
      this.#deps.log.info(`acme: the certificate in ${cfg.storage} is not due (a peer renewed it): serving it, next renewal ${new Date(due).toISOString()}`);
      await this.#deps.issued();
      this.#plan(due);
      return { ok: true, message: 'not due' };
    }
    if (!cfg.order) {
      // The peer orders; look again in a while for what it stored.
      this.#plan(this.#now() + cfg.retryMinMs);
      return { ok: false, message: 'acme.order is false' };
    }
    const names = cfg.domains.join(', ');
    // Two members sharing storage, both ordering: one at a time; the other looks again later and finds the certificate.
    let lock: { release(): void } | false;
    try {
      lock = takeOrderLock(cfg.storage, `${os.hostname()} pid ${process.pid}`, this.#now());
    } catch (e) {
      lock = false;
      this.#deps.log.warn(`acme: cannot write the order lock in ${cfg.storage}: ${oneLine(e)}`);
    }
    if (lock === false) {
      this.#deps.log.info(`acme: another member orders for ${names} (${acmePaths(cfg.storage).lock}): looking again in ${inText(cfg.retryMinMs)}`);
      this.#plan(this.#now() + cfg.retryMinMs);
      return { ok: false, message: `another member of the pair is ordering (lock ${acmePaths(cfg.storage).lock}); looking again in ${inText(cfg.retryMinMs)}` };
    }
    try {
      return await this.#orderLocked(cfg, names, why);
    } finally {
      lock.release();
    }
  }

  async #orderLocked(cfg: AcmeConfig, names: string, why: string): Promise<{ ok: boolean; message: string }> {
    this.#deps.log.info(`acme: ordering a certificate for ${names} from ${cfg.directory} (${cfg.challenge}, ${why})`);
    try {
      const cert = await this.#obtain(cfg);
      if (this.#closed) return { ok: false, message: 'stopped' };
      writeFileAtomic(acmePaths(cfg.storage).cert, cert);
      this.#failures = 0;
      this.#lastIssued = this.#now();
      await this.#deps.issued();
      const s = this.#stored();
      this.#deps.log.info(`acme: certificate for ${names} stored and in service (issuer ${s?.issuer ?? '?'}, expires ${s === undefined ? '?' : new Date(s.notAfter).toISOString()})`);
      this.#plan(s?.renewAt ?? this.#now() + cfg.retryMaxMs);
      return { ok: true, message: `certificate for ${names} issued by ${s?.issuer ?? '?'}, renewal planned ${s === undefined ? '?' : new Date(s.renewAt).toISOString()}` };
    } catch (e) {
      const msg = oneLine(e);
      this.#failures += 1;
      this.#failuresTotal += 1;
      this.#lastError = msg;
      this.#lastErrorAt = this.#now();
      this.#deps.failed?.();
      const delay = retryDelay(this.#failures, cfg.retryMinMs, cfg.retryMaxMs, this.#deps.random);
      const keeps = this.#stored() === undefined ? 'no certificate yet' : 'the current certificate keeps serving';
      this.#deps.log.warn(`acme: order for ${names} failed (attempt ${this.#failures}): ${msg}; ${keeps}; next attempt in ${inText(delay)}`);
      if (!this.#closed) this.#plan(this.#now() + delay);
      return { ok: false, message: `order failed: ${msg} (${keeps}; next attempt in ${inText(delay)})` };
    }
  }

  /** The ACME exchange (acme-client): account, order, challenges published in storage, certificate. */
  async #obtain(cfg: AcmeConfig): Promise<string> {
    const p = acmePaths(cfg.storage);
    ensurePrivateDir(p.dir);
    // acme-client retries an unreachable CA for a minute and then reports an
    // unrelated TypeError: ask once first, so a CA that is down fails fast, by name.
    await reachable(cfg.directory);
    const stored = readPem(p.accountKey, 'ACME account key');
    let accountKey: string;
    if ('text' in stored) accountKey = stored.text;
    else {
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      writeFileAtomic(p.accountKey, accountKey);
    }
    // Polls for the CA's verdict start at 250 ms (a CA validates in about a second), doubling up to 4 s, 10 polls (~25 s).
    const client = new acme.Client({ directoryUrl: cfg.directory, accountKey, backoffAttempts: 10, backoffMin: 250, backoffMax: 4000 });
    const [key, csr] = await acme.crypto.createCsr({ commonName: cfg.domains[0]!, altNames: [...cfg.domains] }, await acme.crypto.createPrivateEcdsaKey());
    const written: string[] = [];
    const cert = await client.auto({
      csr,
      email: cfg.email,
      termsOfServiceAgreed: true,
      challengePriority: [cfg.challenge],
      // acme-client's own pre-check resolves the name and connects to it from here: the CA's check is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const type = challenge.type as string; // acme-client's types know http-01 and dns-01 only
        if (type === 'http-01') {
          const f = httpChallengeFile(cfg.storage, challenge.token);
          writeFileAtomic(f, keyAuthorization);
          written.push(f);
        } else if (type === 'tls-alpn-01') {
          const [k, c] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
          const f = alpnChallengeFile(cfg.storage, authz.identifier.value);
          writeFileAtomic(f, `${c.toString()}\n${k.toString()}`);
          written.push(f);
        } else throw new Error(`challenge ${type} is not answered by tcplb`);
      },
      challengeRemoveFn: async (authz, challenge) => {
        const f = challenge.type === 'http-01' ? httpChallengeFile(cfg.storage, challenge.token) : alpnChallengeFile(cfg.storage, authz.identifier.value);
        rmSync(f, { force: true });
      },
    }).finally(() => {
      for (const f of written) rmSync(f, { force: true });
    });
    return `${cert.trim()}\n${key.toString().trim()}\n`;
  }
}

/** Resolves when the directory URL answers at all (any HTTP status); rejects naming why not. */
function reachable(url: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve();
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot reach the ACME directory ${url}: ${e.code ?? e.message}`)));
  });
}

/** `850 ms`, `12 s`, `3 min`, `2 h`. */
function inText(ms: number): string {
  if (ms < 10_000) return `${ms} ms`;
  if (ms < 600_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 36_000_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

function oneLine(e: unknown): string {
  const err = e as Error & { code?: string };
  const m = (err?.message ?? String(e)).replace(/\s+/g, ' ').trim();
  return (err?.code !== undefined && !m.includes(err.code) ? `${err.code}: ${m}` : m).slice(0, 300);
}
