/**
 * Command-line parsing (node:util parseArgs). Pure: returns what to do, or a
 * usage error; main.ts acts on it.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'check'; config: string }
  /** `socket`: attach to the tcplb there if it answers (else run with the config). */
  | { kind: 'run'; config: string; headless: boolean; socket?: string }
  | { kind: 'demo'; headless: boolean }
  | { kind: 'import-nginx'; file: string }
  | { kind: 'ctl'; args: string[]; socket: string | undefined; config: string }
  | { kind: 'attach'; socket: string | undefined; config: string };

export const USAGE = `Usage:
  tcplb-console [--config PATH] [--headless]   run the load balancer (console on a TTY;
                                               attaches instead if the config's control
                                               socket answers: that tcplb is running)
  tcplb-console attach [--socket PATH]         attach the console to a running tcplb
                                               (q detaches; never starts a proxy)
  tcplb-console --check [--config PATH]        validate a config and print a summary
  tcplb-console --demo                         start demo backends and the balancer on them
  tcplb-console import-nginx FILE              translate an nginx tcp{}/stream{} config
  tcplb-console ctl CMD [U/S]                  talk to a running instance
        (status | drain | disable | enable | check | kill U/S | reload
         | watch [--json]: print events as they happen until interrupted)

Options:
  -c, --config PATH   config file (default ./config.json5)
      --headless      no console; log to stderr (for systemd)
      --check         validate only: exit 0 with a summary, 1 with errors
      --socket PATH   control socket for ctl and attach (default: control.socket of the config)
      --json          ctl watch: print the raw JSON stream lines
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
        socket: { type: 'string' },
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
  if (v.json && verb !== 'ctl') throw new UsageError('--json goes with ctl watch');
  if (verb === 'import-nginx') {
    if (rest.length !== 1) throw new UsageError('import-nginx needs exactly one FILE');
    return { kind: 'import-nginx', file: rest[0]! };
  }
  if (verb === 'ctl') {
    if (rest.length === 0) throw new UsageError('ctl needs a command: status, drain, disable, enable, check, kill, reload, watch');
    if (v.json && rest[0] !== 'watch') throw new UsageError('--json goes with ctl watch');
    return { kind: 'ctl', args: v.json ? [...rest, '--json'] : rest, socket: v.socket, config };
  }
  if (verb === 'attach') {
    if (rest.length > 0) throw new UsageError(`attach takes no arguments (got "${rest[0]}"); name the instance with --socket PATH or -c CONFIG`);
    if (v.headless || v.check || v.demo) throw new UsageError('attach cannot be combined with --headless, --check or --demo');
    return { kind: 'attach', socket: v.socket, config };
  }
  if (verb !== undefined) throw new UsageError(`unknown command "${verb}"`);
  if (v.check && v.demo) throw new UsageError('--check and --demo cannot be combined');
  if (v.check) return { kind: 'check', config };
  if (v.demo) return { kind: 'demo', headless: v.headless ?? false };
  return { kind: 'run', config, headless: v.headless ?? false, ...(v.socket === undefined ? {} : { socket: v.socket }) };
}
