/**
 * Command-line parsing (node:util parseArgs). Pure: returns what to do, or a
 * usage error; main.ts acts on it.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';
import { parseDuration } from '../config/duration.js';
import { routePrefix } from './health.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'check'; config: string }
  /** `socket`: attach to the tcplb there if it answers (else run with the config). */
  | { kind: 'run'; config: string; headless: boolean; socket?: string }
  | { kind: 'demo'; headless: boolean }
  | { kind: 'import-nginx'; file: string }
  /** `targets`: --socket values (paths or ssh:// addresses), in order; empty: the config's control socket. */
  | { kind: 'ctl'; args: string[]; targets: string[]; fleet: string | undefined; config: string }
  /** `targets`: positional TARGETs and --socket values; `fleet`: --fleet FILE. Both empty: the config's socket. */
  | { kind: 'attach'; targets: string[]; fleet: string | undefined; config: string }
  /** Readiness of one instance: `socket` (or the config's control socket). */
  /** `follow`: stay running and report changes (`--exabgp PREFIX` or `--file PATH`), asking every `intervalMs`. */
  | { kind: 'health'; socket: string | undefined; config: string; follow?: { to: { exabgp: string } | { file: string }; intervalMs: number } };

export const USAGE = `Usage:
  tcplb-console [--config PATH] [--headless]   run the load balancer (console on a TTY;
                                               attaches instead if the config's control
                                               socket answers: that tcplb is running)
  tcplb-console attach [TARGET...]             attach the console to running tcplb(s)
                [--socket TARGET] [--fleet F]  (q detaches; never starts a proxy); several
                                               targets: one console steers the fleet
  tcplb-console health [--socket TARGET]       readiness for keepalived/ExaBGP: exit 0 ready,
                                               1 not (one line says why)
  tcplb-console health --socket S --exabgp P   an ExaBGP process: announce/withdraw route P
                [--interval 200ms]             as readiness changes (asked every interval)
  tcplb-console health --socket S --file F     keepalived track_file: 0 while ready, 1 not
  tcplb-console --check [--config PATH]        validate a config and print a summary
  tcplb-console --demo                         start demo backends and the balancer on them
  tcplb-console import-nginx FILE              translate an nginx tcp{}/stream{} config
  tcplb-console ctl CMD [U/S]                  talk to a running instance (or several:
                                               --socket A --socket B, or --fleet F)
        (status | drain | disable | enable | check | kill U/S | reload
         | health | standby on|off | explain CLIENT [LISTENER]
         | certs [--json]: each TLS listener's certificates, expiry, last reload
         | acme renew [DOMAIN]: order the ACME certificate now (docs/tls.md#acme)
         | watch [--json]: print events as they happen until interrupted
         | bridge: relay stdin/stdout to the socket, the far end of ssh://)

Options:
  -c, --config PATH   config file (default ./config.json5)
      --headless      no console; log to stderr (for systemd)
      --check         validate only: exit 0 with a summary, 1 with errors
      --socket TARGET control socket for ctl and attach (default: control.socket of the
                      config): a path, or ssh://[user@]host[:port][/path] (default path
                      /run/tcplb/tcplb.sock); repeat it to act on several instances
      --fleet FILE    ctl and attach: the instances listed in FILE (JSON5: { fleet: [...] })
      --json          ctl watch: print the raw JSON stream lines; ctl certs: the report as JSON
      --demo          run the demo
  -h, --help          this text
  -v, --version       print the version

Exit codes: 0 success, 1 invalid config or failed command, 2 usage error.
`;


export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        headless: { type: 'boolean' },
        check: { type: 'boolean' },
        demo: { type: 'boolean' },
        socket: { type: 'string', multiple: true },
        fleet: { type: 'string' },
        exabgp: { type: 'string' },
        file: { type: 'string' },
        interval: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals: pos } = parsed;
  const config = v.config ?? 'config.json5';
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const [verb, ...rest] = pos;
  const sockets = v.socket ?? [];
  if (v.fleet !== undefined && verb !== 'ctl' && verb !== 'attach') throw new UsageError('--fleet goes with ctl and attach');
  if (sockets.length > 1 && verb !== 'ctl' && verb !== 'attach' && verb !== 'health') throw new UsageError('several --socket go with ctl and attach only');
  if ((v.exabgp !== undefined || v.file !== undefined || v.interval !== undefined) && verb !== 'health') throw new UsageError('--exabgp, --file and --interval go with health');
  if (v.json && verb !== 'ctl') throw new UsageError('--json goes with ctl watch or ctl certs');
  if (verb === 'import-nginx') {
    if (rest.length !== 1) throw new UsageError('import-nginx needs exactly one FILE');
    return { kind: 'import-nginx', file: rest[0]! };
  }
  if (verb === 'ctl') {
    if (rest.length === 0) throw new UsageError('ctl needs a command: status, drain, disable, enable, check, kill, reload, watch');
    if (v.json && rest[0] !== 'watch' && rest[0] !== 'certs') throw new UsageError('--json goes with ctl watch or ctl certs');
    return { kind: 'ctl', args: v.json ? [...rest, '--json'] : rest, targets: sockets, fleet: v.fleet, config };
  }
  if (verb === 'health') {
    if (rest.length > 0) throw new UsageError(`health takes no arguments (got "${rest[0]}"); name the instance with --socket PATH or -c CONFIG`);
    if (sockets.length > 1) throw new UsageError('health asks one instance: one --socket');
    if (v.exabgp === undefined && v.file === undefined) {
      if (v.interval !== undefined) throw new UsageError('--interval goes with health --exabgp or --file');
      return { kind: 'health', socket: sockets[0], config };
    }
    if (v.exabgp !== undefined && v.file !== undefined) throw new UsageError('health takes --exabgp or --file, not both');
    let to: { exabgp: string } | { file: string };
    if (v.exabgp !== undefined) {
      const prefix = routePrefix(v.exabgp);
      if (prefix === undefined) throw new UsageError(`--exabgp needs the service prefix to announce, like 10.96.100.1/32 (got "${v.exabgp}")`);
      to = { exabgp: prefix };
    } else {
      if (v.file === '') throw new UsageError('--file needs a path (keepalived track_file)');
      to = { file: v.file! };
    }
    const intervalMs = v.interval === undefined ? 200 : parseDuration(v.interval);
    if (intervalMs === undefined || intervalMs < 50 || intervalMs > 60_000) throw new UsageError(`--interval must be a duration from 50ms to 60s, like 200ms (got "${v.interval}")`);
    return { kind: 'health', socket: sockets[0], config, follow: { to, intervalMs } };
  }
  if (verb === 'attach') {
    if (v.headless || v.check || v.demo) throw new UsageError('attach cannot be combined with --headless, --check or --demo');
    return { kind: 'attach', targets: [...rest, ...sockets], fleet: v.fleet, config };
  }
  if (verb !== undefined) throw new UsageError(`unknown command "${verb}"`);
  if (v.check && v.demo) throw new UsageError('--check and --demo cannot be combined');
  if (v.check) return { kind: 'check', config };
  if (v.demo) return { kind: 'demo', headless: v.headless ?? false };
  return { kind: 'run', config, headless: v.headless ?? false, ...(sockets[0] === undefined ? {} : { socket: sockets[0] }) };
}
