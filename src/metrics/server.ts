/**
 * Prometheus metrics at `metrics.listen` /metrics (prom-client). Values are
 * read from the runtime when scraped; the data path only bumps a few plain
 * counters per finished connection, so metrics cost nothing between scrapes.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ListenAddress } from '../core/config.js';
import type { EndReason } from '../core/types.js';
import type { Runtime } from '../runtime/store.js';
import { displayState, type DisplayState } from '../runtime/backend.js';
import type { Engine } from '../core/dataplane.js';

const STATES: readonly DisplayState[] = ['UP', 'DOWN', 'UNKNOWN', 'DRAINING', 'DISABLED'];

interface ListenerCounts {
  accepted: number;
  bytesIn: number;
  bytesOut: number;
  refused: Map<EndReason, number>;
}

/** Build the registry for one running instance. */
export function createMetrics(runtime: Runtime, engine: Engine): { registry: Registry; reloaded(ok: boolean): void } {
  const registry = new Registry();
  const per = new Map<string, ListenerCounts>();
  const counts = (l: string): ListenerCounts => {
    let c = per.get(l);
    if (c === undefined) per.set(l, (c = { accepted: 0, bytesIn: 0, bytesOut: 0, refused: new Map() }));
    return c;
  };
  runtime.bus.on('session', (r) => {
    const c = counts(r.listener);
    c.accepted++;
    c.bytesIn += r.bytesIn;
    c.bytesOut += r.bytesOut;
    if (r.reason === 'denied' || r.reason === 'limit' || r.reason === 'no_backend' || r.reason === 'connect_failed') {
      c.refused.set(r.reason, (c.refused.get(r.reason) ?? 0) + 1);
    }
  });
  const reloads = { ok: 0, failed: 0 };

  /** A counter whose value is copied from our own tallies at scrape time. */
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
    for (const [l, c] of per) set({ listener: l }, c.accepted);
  });
  mirror('tcplb_listener_refused_total', 'Client connections refused, by reason', ['listener', 'reason'], (set) => {
    for (const [l, c] of per) for (const [reason, n] of c.refused) set({ listener: l, reason }, n);
  });
  mirror('tcplb_listener_bytes_total', 'Bytes relayed by finished connections (in = client to backend)', ['listener', 'direction'], (set) => {
    for (const [l, c] of per) {
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
      for (const b of runtime.backends()) this.set({ backend: b.id }, b.active);
    },
  });
  mirror('tcplb_backend_connections_total', 'Connections made to each backend', ['backend'], (set) => {
    for (const b of runtime.backends()) set({ backend: b.id }, b.total);
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
  const latency = new Histogram({
    name: 'tcplb_probe_duration_seconds', help: 'Health probe duration', labelNames: ['backend', 'result'], registers: [registry],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  });
  runtime.bus.on('probe', (e) => latency.observe({ backend: e.backend, result: e.result.ok ? 'pass' : 'fail' }, e.result.latencyMs / 1000));
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

/** Serve the registry at http://listen/metrics. */
export async function startMetricsServer(listen: ListenAddress, registry: Registry): Promise<{ close(): Promise<void>; port: number }> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics' && req.url !== '/metrics/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`metrics: cannot listen on ${listen.host}:${listen.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
