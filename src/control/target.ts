/**
 * Where a control-socket client connects: a tcplb instance named the way an
 * operator writes it on the command line or in a fleet file.
 *
 * - a path (`/run/tcplb/tcplb.sock`, `tcplb.sock`): the Unix socket on this
 *   machine;
 * - `ssh://[user@]host[:port][/path/to.sock]`: the control socket on another
 *   machine, reached through the operator's own ssh (`ssh -T host
 *   tcplb-console ctl --socket PATH bridge`, the remote end relaying its
 *   stdin/stdout to the socket). Authentication is ssh's (keys, agent,
 *   ~/.ssh/config); tcplb opens no network port for control. ssh runs with
 *   BatchMode: a password prompt would tear the console's screen, so a host
 *   without key access fails with ssh's own message instead.
 *
 * Every connection is a fresh byte stream (a Duplex); requests are written at
 * once (a Unix socket buffers them until it connects, ssh's stdin until the
 * remote end reads). Failures surface as an 'error' whose message names the
 * target and says why, ready for the operator.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';

/** The remote control socket when an ssh target names none: the path packaging/tcplb.service uses. */
export const DEFAULT_REMOTE_SOCKET = '/run/tcplb/tcplb.sock';

export interface Target {
  /** As the operator wrote it (shown in messages and headers). */
  readonly label: string;
  /** A short name for tables: the ssh host, or the socket's file name. */
  readonly name: string;
  readonly kind: 'unix' | 'ssh';
  /**
   * Open a byte stream to the instance's control socket. A Unix socket
   * emits 'connect' once connected; an ssh stream never does (its errors
   * say what failed).
   */
  connect(): Duplex;
  /** The operator's message for a stream error; `connected`: the stream had connected before it. */
  failure(err: NodeJS.ErrnoException, connected: boolean): string;
}

/** A Unix socket on this machine. */
export function unixTarget(socketPath: string, name?: string): Target {
  return {
    label: socketPath,
    name: name ?? socketPath,
    kind: 'unix',
    connect: () => net.connect(socketPath),
    failure(e, connected) {
      // Say which side failed: a socket nobody listens on is "cannot reach", a cut link is not.
      const why = e.code ?? e.message;
      return connected
        ? `connection to tcplb at ${socketPath} failed: ${why}`
        : `cannot reach tcplb at ${socketPath}: ${why} (is it running? is control.socket set in the config?)`;
    },
  };
}

export interface SshParts {
  readonly user?: string;
  readonly host: string;
  readonly port?: number;
  readonly socket: string;
}

/** `ssh://[user@]host[:port][/path]` to its parts, or a message saying what is wrong. */
export function parseSshUrl(text: string): SshParts | string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `"${text}" is not a valid ssh:// address (ssh://[user@]host[:port][/path/to/tcplb.sock])`;
  }
  if (u.protocol !== 'ssh:') return `"${text}": only ssh:// is supported for remote instances`;
  if (u.hostname === '') return `"${text}" names no host (ssh://[user@]host[:port][/path/to/tcplb.sock])`;
  if (u.password !== '') return `"${text}": a password in the address is not supported (ssh keys or the agent authenticate)`;
  if (u.search !== '' || u.hash !== '') return `"${text}": no ?query or #fragment is allowed`;
  const socket = u.pathname === '' || u.pathname === '/' ? DEFAULT_REMOTE_SOCKET : decodeURIComponent(u.pathname);
  // URL keeps IPv6 hosts in brackets; ssh wants them bare.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    socket,
    ...(u.username === '' ? {} : { user: decodeURIComponent(u.username) }),
    ...(u.port === '' ? {} : { port: Number(u.port) }),
  };
}

/** Quote one word for the remote shell ssh hands the command to. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Split an environment override (`ssh -F /tmp/cfg`) into words. */
function words(s: string): string[] {
  return s.split(/\s+/).filter((w) => w !== '');
}

export interface SshOptions {
  /** The ssh program and its first arguments. @default $TCPLB_SSH or `ssh` */
  readonly ssh?: readonly string[];
  /** The remote tcplb-console command. @default $TCPLB_REMOTE_CONSOLE or `tcplb-console` */
  readonly remoteConsole?: readonly string[];
}

/**
 * An instance behind ssh. `$TCPLB_SSH` replaces the ssh program (e.g. `ssh
 * -F ~/.ssh/tcplb_config`), `$TCPLB_REMOTE_CONSOLE` the command run on the
 * far side when tcplb-console is not on its PATH (e.g. `npx tcplb-console`).
 */
export function sshTarget(url: string, parts: SshParts, opts: SshOptions = {}, name?: string): Target {
  const ssh = opts.ssh ?? words(process.env.TCPLB_SSH ?? 'ssh');
  const remote = opts.remoteConsole ?? words(process.env.TCPLB_REMOTE_CONSOLE ?? 'tcplb-console');
  const dest = parts.user === undefined ? parts.host : `${parts.user}@${parts.host}`;
  const args = [
    ...ssh.slice(1),
    '-T',
    '-o',
    'BatchMode=yes',
    ...(parts.port === undefined ? [] : ['-p', String(parts.port)]),
    '--',
    dest,
    [...remote, 'ctl', '--socket', parts.socket, 'bridge'].map(shellQuote).join(' '),
  ];
  return {
    label: url,
    name: name ?? parts.host,
    kind: 'ssh',
    connect: () => new SshStream(ssh[0] ?? 'ssh', args, url),
    failure: (e) => e.message,
  };
}

/** A path or an ssh:// address to a Target; a message when the address is malformed. */
export function parseTarget(text: string, name?: string): Target | string {
  if (text.trim() === '') return 'an empty instance address';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const parts = parseSshUrl(text);
    return typeof parts === 'string' ? parts : sshTarget(text, parts, {}, name);
  }
  return unixTarget(text, name);
}

/** The most ssh's stderr kept for an error message. */
const STDERR_KEEP = 4096;

/**
 * The stdin/stdout of an `ssh … ctl bridge` child as one Duplex. The stream
 * ends when ssh exits; an exit with a failure status (ssh could not connect
 * or authenticate, the remote tcplb-console is missing, the bridge could not
 * reach the socket) is an 'error' carrying the last line ssh or the remote
 * end wrote on stderr.
 */
class SshStream extends Duplex {
  readonly #child;
  #stderr = '';
  #exited = false;

  constructor(cmd: string, args: string[], label: string) {
    super();
    this.#child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const child = this.#child;
    child.stdout.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout.pause();
    });
    child.stderr.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString('utf8')).slice(-STDERR_KEEP);
    });
    // Writes after the far side went away are the exit's business, not a crash.
    child.stdin.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      this.#exited = true;
      this.destroy(new Error(`cannot run ${cmd} to reach ${label}: ${e.code ?? e.message}`));
    });
    child.on('close', (code, signal) => {
      this.#exited = true;
      if (this.destroyed) return;
      if (code === 0) {
        this.push(null);
        return;
      }
      const last = this.#stderr.trim().split('\n').filter((l) => l.trim() !== '').pop();
      const status = code === null ? `killed by ${signal}` : code === 255 ? 'ssh failed' : `exit ${code}`;
      this.destroy(new Error(`${label}: ${last ?? status}${last === undefined ? '' : ` (${status})`}`));
    });
  }

  override _read(): void {
    this.#child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#child.stdin.destroyed) return cb();
    this.#child.stdin.write(chunk, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#child.stdin.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#exited) this.#child.kill('SIGTERM');
    this.#child.stdout.destroy();
    cb(err);
  }
}
