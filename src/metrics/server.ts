/**
 * Prometheus metrics at `metrics.listen` /metrics (prom-client). Values are
 * read when scraped, from the same sources the console and `ctl status` read:
 * open connections from the engine, cumulative figures from the runtime's
 * tally, states from the runtime. Nothing is counted here, so nothing here
 * can drift from them, and metrics cost nothing between scrapes.
 */
import fs from 'node:fs';
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ListenAddress } from '../core/config.js';
import type { Runtime } from '../runtime/store.js';
import { displayState, type DisplayState } from '../runtime/backend.js';
import type { Engine } from '../core/dataplane.js';
import type { AcmeStatus } from '../runtime/acme.js';

const STATES: readonly DisplayState[] = ['UP', 'DOWN', 'UNKNOWN', 'DRAINING', 'DISABLED'];

/** Build the registry for one running instance. */
export function createMetrics(runtime: Runtime, engine: Engine, opts: { ready?: () => boolean; acme?: () => AcmeStatus | undefined } = {}): { registry: Registry; reloaded(ok: boolean): void } {
  const registry = new Registry();
  // Which balancer this is (`instance` in the config, or the host name): the
  // label is `name`, since Prometheus sets `instance` to the scrape target.
  new Gauge({
    name: 'tcplb_instance_info', help: 'This balancer: its name (config instance or host name); always 1', labelNames: ['name'], registers: [registry],
    collect() {
      this.reset();
      this.set({ name: runtime.config.instance }, 1);
    },
  });
  if (opts.ready !== undefined) {
    const ready = opts.ready;
    new Gauge({
      name: 'tcplb_ready', help: 'Readiness as tcplb-console health reports it (keepalived/ExaBGP): 1 ready, 0 not (standby, leaving, a required upstream without a usable backend)', registers: [registry],
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
  }
  const { tally } = runtime;
  const reloads = { ok: 0, failed: 0 };

  /** A counter whose value is copied from the runtime's tally at scrape time. */
  const mirror = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string>, v: number) => void) => void) =>
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        fill((labels, v) => this.inc(labels, v));
      },
    });

  new Gauge({
    name: 'tcplb_listener_active_connections', help: 'Open client connections per listener', labelNames: ['listener'], registers: [registry],
    collect() {
      this.reset();
      const byListener = engine.activeByListener();
      for (const l of runtime.config.listeners) this.set({ listener: l.name }, byListener.get(l.name) ?? 0);
    },
  });
  mirror('tcplb_listener_connections_total', 'Finished client connections per listener', ['listener'], (set) => {
    for (const [l, c] of tally.listeners()) set({ listener: l }, c.finished);
  });
  mirror('tcplb_listener_refused_total', 'Client connections refused, by reason', ['listener', 'reason'], (set) => {
    for (const [l, c] of tally.listeners()) for (const [reason, n] of c.refused) set({ listener: l, reason }, n);
  });
  mirror('tcplb_listener_bytes_total', 'Bytes relayed by finished connections (in = client to backend)', ['listener', 'direction'], (set) => {
    for (const [l, c] of tally.listeners()) {
      set({ listener: l, direction: 'in' }, c.bytesIn);
      set({ listener: l, direction: 'out' }, c.bytesOut);
    }
  });
  new Gauge({
    name: 'tcplb_backend_state', help: 'Backend state: 1 for the current state, 0 for the others', labelNames: ['backend', 'state'], registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const b of runtime.backends()) {
        const st = displayState(b, now);
        for (const s of STATES) this.set({ backend: b.id, state: s }, s === st ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'tcplb_backend_active_connections', help: 'Open connections per backend', labelNames: ['backend'], registers: [registry],
    collect() {
      this.reset();
      // The engine's count: what balancing, maxConns, the console and `ctl status` see.
      const open = engine.activeByBackend();
      for (const b of runtime.backends()) this.set({ backend: b.id }, open.get(b.id) ?? 0);
    },
  });
  mirror('tcplb_backend_connections_total', 'Connections made to each backend', ['backend'], (set) => {
    for (const b of runtime.backends()) set({ backend: b.id }, tally.backend(b.id).total);
  });
  mirror('tcplb_backend_connect_failures_total', 'Failed connects to each backend', ['backend'], (set) => {
    for (const b of runtime.backends()) set({ backend: b.id }, b.connectFailures);
  });
  new Gauge({
    name: 'tcplb_backend_certificate_days_left', help: 'Days until the certificate seen by the TLS probe expires', labelNames: ['backend'], registers: [registry],
    collect() {
      this.reset();
      for (const b of runtime.backends()) if (b.lastProbe?.cert !== undefined) this.set({ backend: b.id }, b.lastProbe.cert.daysLeft);
    },
  });
  new Gauge({
    name: 'tcplb_cert_expiry_timestamp_seconds',
    help: 'Expiry (notAfter, Unix seconds) of each certificate a TLS listener serves; the earliest when two share a subject',
    labelNames: ['listener', 'subject'], registers: [registry],
    collect() {
      this.reset();
      for (const l of runtime.config.listeners) {
        const bySubject = new Map<string, number>();
        for (const c of l.tls?.certificates ?? []) bySubject.set(c.subject, Math.min(bySubject.get(c.subject) ?? Infinity, c.notAfter));
        for (const [subject, notAfter] of bySubject) this.set({ listener: l.name, subject }, Math.floor(notAfter / 1000));
      }
    },
  });
  const acme = opts.acme;
  if (acme !== undefined) {
    // Counted by the ACME client since start; absent (no series) without `acme`.
    mirror('tcplb_acme_renewal_failures_total', 'Failed ACME orders (issuance or renewal) since start; the certificate in service keeps serving', ['domain'], (set) => {
      const a = acme();
      if (a !== undefined) set({ domain: a.domains[0] ?? '' }, a.failuresTotal);
    });
    new Gauge({
      name: 'tcplb_acme_next_attempt_timestamp_seconds', help: 'When the ACME client next orders (renewal or retry), Unix seconds', labelNames: ['domain'], registers: [registry],
      collect() {
        this.reset();
        const a = acme();
        if (a?.nextAttempt != null) this.set({ domain: a.domains[0] ?? '' }, Math.floor(a.nextAttempt / 1000));
      },
    });
  }
  const latency = new Histogram({
    name: 'tcplb_probe_duration_seconds', help: 'Health probe duration', labelNames: ['backend', 'result'], registers: [registry],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  });
  runtime.bus.on('probe', (e) => latency.observe({ backend: e.backend, result: e.result.ok ? 'pass' : e.result.status === 'LOCAL_ERROR' ? 'local_error' : 'fail' }, e.result.latencyMs / 1000));
  mirror('tcplb_reloads_total', 'Config reloads, by result', ['result'], (set) => {
    set({ result: 'ok' }, reloads.ok);
    set({ result: 'failed' }, reloads.failed);
  });
  return {
    registry,
    reloaded(ok) {
      if (ok) reloads.ok++;
      else reloads.failed++;
    },
  };
}

/**
 * Bounds of the metrics endpoint. A scraper needs one short connection every
 * few seconds; anything beyond that is an accident or an attack, and every
 * connection held costs a descriptor the data plane (client and backend
 * sockets, health probes) shares with it. Node's defaults would let an idle
 * connection live 60-90 s (headersTimeout 60 s, checked every 30 s) and
 * accept connections until the process runs out of descriptors.
 */
export const METRICS_BOUNDS = {
  /** Concurrent connections; an excess one is closed as soon as it is accepted (never queued holding a descriptor). */
  maxConnections: 16,
  /** ...and never more than this share of the process's descriptor limit, so a low `ulimit -n` keeps its reserve for the data plane. */
  descriptorShare: 1 / 16,
  /** Whole request head (also a connection that never sends a byte, and one that trickles). */
  headersTimeoutMs: 5000,
  /** Whole request, body included (scrapes have none). */
  requestTimeoutMs: 5000,
  /** Between requests on a kept-alive connection. */
  keepAliveTimeoutMs: 5000,
  /** No byte moved either way (e.g. a client that never reads the answer). */
  idleTimeoutMs: 10000,
  /** How often Node checks the header and request timeouts (its default, 30 s, would add up to 30 s to each). */
  checkIntervalMs: 1000,
  /** Request head size (Node's default is 16 KiB). */
  maxHeaderSize: 8192,
} as const;

/** The soft descriptor limit of this process (Linux /proc), or undefined when unknown or unlimited. */
export function descriptorLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The connection cap: `maxConnections`, lowered to a share of a small descriptor limit (at least 2: a scraper and a person). */
export function metricsConnectionCap(limit: number | undefined): number {
  const b = METRICS_BOUNDS;
  if (limit === undefined) return b.maxConnections;
  return Math.max(2, Math.min(b.maxConnections, Math.floor(limit * b.descriptorShare)));
}

/**
 * Serve the registry at http://listen/metrics (GET or HEAD, any query string),
 * within METRICS_BOUNDS. `warn` hears, at most once a second, how many
 * connections were closed for being beyond the cap.
 */
export async function startMetricsServer(
  listen: ListenAddress,
  registry: Registry,
  warn: (msg: string) => void = () => {},
): Promise<{ close(): Promise<void>; port: number }> {
  const bounds = METRICS_BOUNDS;
  const server = http.createServer({ connectionsCheckingInterval: bounds.checkIntervalMs, maxHeaderSize: bounds.maxHeaderSize }, (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET and HEAD\n');
      return;
    }
    // Scrapers add query strings (`?name[]=...`, cache busters); the path alone decides.
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics' && path !== '/metrics/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  // net.Server closes a connection beyond maxConnections right after accept ('drop'): it never waits in a queue.
  const maxConnections = metricsConnectionCap(descriptorLimit());
  server.maxConnections = maxConnections;
  // One line a second with a count, not one per connection: a flood must not become a log flood.
  let dropped = 0;
  let dropTimer: NodeJS.Timeout | undefined;
  server.on('drop', () => {
    dropped++;
    dropTimer ??= setTimeout(() => {
      warn(`metrics: closed ${dropped} connection${dropped === 1 ? '' : 's'} beyond the cap of ${maxConnections} (scrapes may fail until the open ones time out)`);
      dropped = 0;
      dropTimer = undefined;
    }, 1000).unref();
  });
  server.headersTimeout = bounds.headersTimeoutMs;
  server.requestTimeout = bounds.requestTimeoutMs;
  server.keepAliveTimeout = bounds.keepAliveTimeoutMs;
  // With no 'timeout' listener, Node destroys a socket idle this long.
  server.timeout = bounds.idleTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`metrics: cannot listen on ${listen.host}:${listen.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  // Later errors are failed accepts (EMFILE while the data plane holds every descriptor): transient, and the
  // endpoint serves again once descriptors free up; the data plane already logs the shortage.
  server.removeAllListeners('error').on('error', () => {});
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => new Promise<void>((r) => { clearTimeout(dropTimer); server.closeAllConnections(); server.close(() => r()); }),
  };
}
