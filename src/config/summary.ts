/**
 * The one-screen summary `tcplb-console --check` prints for a valid config.
 * About 15 lines for a config like DESIGN.md's; long lists are cut with
 * "… and N more" so it always fits a terminal.
 */
import { isIP } from 'node:net';
import type { CheckConfig, Config, ListenerConfig, ServerConfig, UpstreamConfig } from '../core/config.js';
import { formatListen, parseHostPort } from './address.js';
import { formatDuration as d } from './duration.js';

/** How many listeners / upstreams / servers per upstream are listed before "… and N more". */
interface Limits {
  readonly listeners: number;
  readonly upstreams: number;
  readonly servers: number;
}

/** Tried in order until the summary fits SCREEN_LINES; the last one is used regardless. */
const LEVELS: readonly Limits[] = [
  { listeners: 6, upstreams: 4, servers: 4 },
  { listeners: 4, upstreams: 4, servers: 2 },
  { listeners: 3, upstreams: 3, servers: 1 },
];

/** One terminal screen. */
const SCREEN_LINES = 24;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function more(total: number, shown: number, indent: string): string[] {
  return total > shown ? [`${indent}… and ${total - shown} more`] : [];
}

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

function serverLine(s: ServerConfig, width: number): string {
  const flags = [`weight ${s.weight}`];
  if (s.backup) flags.push('backup');
  if (s.down) flags.push('down');
  if (s.maxConns > 0) flags.push(`maxConns ${s.maxConns}`);
  flags.push(s.maxFails === 0 ? 'no passive checks' : `maxFails ${s.maxFails}/${d(s.failTimeoutMs)}`);
  return `    ${pad(s.address, width)}  ${flags.join(', ')}`;
}

function checkLine(c: CheckConfig | undefined): string {
  if (c === undefined) return '    check: none (passive only)';
  const parts = [`check ${c.type} every ${d(c.intervalMs)}`, `rise ${c.rise}`, `fall ${c.fall}`, `timeout ${d(c.timeoutMs)}`];
  if (c.tls) parts.push(`tls${c.verify ? ' verify' : ''}`);
  if (c.servername !== '') parts.push(`servername ${c.servername}`);
  if (c.port !== 0) parts.push(`port ${c.port}`);
  if (c.type === 'http') parts.push(`expect ${c.expect.join('/')}`);
  if (c.proxyProtocol) parts.push(`proxy ${c.proxyProtocol}`);
  return `    ${parts.join(', ')}`;
}

function upstreamLines(u: UpstreamConfig, maxServers: number): string[] {
  const shown = u.servers.slice(0, maxServers);
  const width = Math.min(40, Math.max(0, ...shown.map((s) => s.address.length)));
  return [
    `  ${u.name}: ${u.balance}, onMarkedDown ${u.onMarkedDown}, ${plural(u.servers.length, 'server')}`,
    ...shown.map((s) => serverLine(s, width)),
    ...more(u.servers.length, maxServers, '    '),
    checkLine(u.check),
  ];
}

/** ` (127.0.0.1)` when the listener was written with a host name (resolved at load), else ''. */
function resolvedTo(l: ListenerConfig): string {
  const written = parseHostPort(l.listenText)?.host ?? '';
  return written !== '' && isIP(written) === 0 && written !== l.listen.host ? ` (${l.listen.host})` : '';
}

function render(config: Config, max: Limits): string[] {
  const ups = Object.values(config.upstreams);
  const servers = ups.reduce((n, u) => n + u.servers.length, 0);
  const shownListeners = config.listeners.slice(0, max.listeners);
  const nameWidth = Math.min(24, Math.max(0, ...shownListeners.map((l) => l.name.length)));
  return [
    `${config.file || 'config'}: OK, ${plural(config.listeners.length, 'listener')}, ${plural(ups.length, 'upstream')}, ${plural(servers, 'server')}`,
    'listeners:',
    ...shownListeners.map((l) => {
      const extra = [`connect ${d(l.connectTimeoutMs)}`, `idle ${d(l.idleTimeoutMs)}`, `max ${l.maxConnections || 'unlimited'}`];
      if (l.maxConnectionsPerClient > 0) extra.push(`${l.maxConnectionsPerClient}/client`);
      if (l.proxyProtocol) extra.push(`proxy ${l.proxyProtocol}`);
      if (l.allow.length + l.deny.length > 0) extra.push(`allow ${l.allow.length}/deny ${l.deny.length}`);
      const mode = l.starttls === undefined ? 'tls' : `starttls ${l.starttls}${l.requireTls ? ' required' : ''}`;
      if (l.tls !== undefined && l.tls.certificates.length === 0) extra.push(`${mode} acme (no certificate yet: ordered at start)`);
      else if (l.tls !== undefined) {
        const first = l.tls.certificates[0]!;
        const days = Math.floor((first.notAfter - Date.now()) / 86_400_000);
        extra.push(`${mode} ${first.names[0] ?? first.subject} (${days} days)${l.tls.certificates.length > 1 ? ` +${l.tls.certificates.length - 1} cert${l.tls.certificates.length > 2 ? 's' : ''}` : ''}`);
      }
      if (l.acme?.challenge === 'http-01') extra.push('answers acme http-01');
      if (l.upstreamTls !== undefined) extra.push(`${l.starttls === undefined ? 'tls' : 'starttls'} to backends${l.upstreamTls.verify ? '' : ' (no verify)'}`);
      return `  ${pad(l.name, nameWidth)}  ${l.listenText}${resolvedTo(l)} -> ${l.upstream}  (${extra.join(', ')})`;
    }),
    ...more(config.listeners.length, max.listeners, '  '),
    'upstreams:',
    ...ups.slice(0, max.upstreams).flatMap((u) => upstreamLines(u, max.servers)),
    ...more(ups.length, max.upstreams, '  '),
    `log:      access ${config.log.access ?? 'off'} (${config.log.format}), level ${config.log.level}`,
    `control:  ${config.control.socket ?? 'none'}`,
    `metrics:  ${config.metrics.listen ? `http://${formatListen(config.metrics.listen)}/metrics` : 'none'}`,
    `state:    ${config.stateFile ?? 'none'}${config.health.require === null ? '' : `; health requires ${config.health.require.join(', ')}`}`,
    ...(config.acme === undefined ? [] : [
      `acme:     ${config.acme.domains.join(', ')} by ${config.acme.challenge} from ${config.acme.directory} (not contacted by --check); storage ${config.acme.storage}${config.acme.order ? '' : ', order: false'}`,
    ]),
    `process:  instance ${config.instance}, shutdownTimeout ${d(config.shutdownTimeoutMs)}${config.leaveDelayMs > 0 ? `, leaveDelay ${d(config.leaveDelayMs)}` : ''}, workers ${config.workers}, engine ${config.engine}`,
  ];
}

/**
 * A short human summary of a valid config: listeners with address ->
 * upstream, each upstream with its balance, servers (weight, backup, down)
 * and check, then log, control, metrics, state file and process settings.
 * Lists are shortened step by step until it fits one 24-line screen.
 */
export function summarize(config: Config): string {
  let lines: string[] = [];
  for (const limits of LEVELS) {
    lines = render(config, limits);
    if (lines.length <= SCREEN_LINES) break;
  }
  return lines.join('\n');
}
