/**
 * tcplb-console, the full command line (main.ts is the entry). Parses the command line, loads the config,
 * starts the app (headless for now, or the console on a TTY once it exists),
 * and maps signals: SIGTERM/SIGINT graceful stop (a second one: at once),
 * SIGUSR1 reopen the access log.
 */
import fs from 'node:fs';
import path from 'node:path';
import JSON5 from 'json5';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../config/load.js';
import { summarize } from '../config/summary.js';
import { formatIssue, type Config } from '../core/config.js';
import { startApp, type App } from './app.js';
import { parseCommand, USAGE, type Command } from './args.js';
import { ERR_IMPORT, ERR_STARTUP, ERR_USAGE, isLbError } from '../core/errors.js';
import { watchConfig } from './watch.js';
import { tlsFiles } from '../config/certificates.js';
import { createLogger, type Level } from '../log/logger.js';
import type { ConsoleHandle } from '../console/run.js';
import { chooseRun, instanceAnswers, runAttached } from './attach.js';
import { unixTarget, type Target } from '../control/target.js';

/**
 * Load Ink only when the console runs. Ink reads CI/CONTINUOUS_INTEGRATION
 * when it is imported and, if set, draws nothing until exit, and its colour
 * detection (supports-color) turns colours off when `CI` merely exists; the
 * console only runs on a real terminal, so neither is right for it: the
 * variables go (this process only) before Ink loads.
 */
async function openConsole(): Promise<typeof import('../console/run.js')> {
  for (const k of ['CI', 'CONTINUOUS_INTEGRATION']) delete process.env[k];
  // React's development build (the default without NODE_ENV) checks and
  // times every render: about half of an attached console's CPU per frame.
  process.env.NODE_ENV ??= 'production';
  return import('../console/run.js');
}

/** The console runs on a terminal unless --headless; without a TTY we are headless anyway (DESIGN). */
function wantConsole(headless: boolean): boolean {
  return !headless && process.stdout.isTTY === true && process.stdin.isTTY === true;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function load(file: string): Promise<Config | undefined> {
  const res = await loadConfigFile(file);
  if (res.ok) {
    for (const w of res.warnings ?? []) process.stderr.write(`warning: ${formatIssue(w)}\n`);
    return res.config;
  }
  for (const i of res.issues) process.stderr.write(formatIssue(i) + '\n');
  process.stderr.write(`${res.issues.length} error${res.issues.length === 1 ? '' : 's'} in ${file}\n`);
  return undefined;
}

async function run(config: Config, label: string, useConsole: boolean): Promise<number> {
  let app: App;
  // With the console on the terminal, log lines go to its event panel (a
  // stray write to stderr would tear the screen); the access log to stdout
  // is off then: point log.access at a file to keep one.
  const early: { level: Level; msg: string }[] = [];
  let toPanel: ((level: Level, msg: string) => void) | undefined;
  const panelLogger = createLogger(config.log.level, (line) => {
    const m = /^\S+ (\w+)\s+(.*)\n$/s.exec(line);
    const level = (m?.[1] ?? 'info') as Level;
    const msg = m?.[2] ?? line;
    if (toPanel !== undefined) toPanel(level, msg);
    else early.push({ level, msg });
  });
  const runConfig = useConsole && config.log.access === '-' ? { ...config, log: { ...config.log, access: null } } : config;
  try {
    app = await startApp(runConfig, { version: version(), ...(useConsole ? { logger: panelLogger } : {}) });
  } catch (err) {
    if (isLbError(err, ERR_STARTUP)) {
      for (const p of err.message.split('\n')) process.stderr.write(`tcplb: ${p}\n`);
      return 1;
    }
    throw err;
  }
  if (useConsole) {
    const a = app;
    toPanel = (level, msg) => {
      // State changes are in the panel already (from the bus), not twice.
      if (/^\S+ [A-Z]+ -> [A-Z]+ \(/.test(msg)) return;
      if (level === 'warn' || level === 'error') a.events.push({ time: Date.now(), kind: 'error', ok: false, text: msg });
    };
    for (const e of early) toPanel(e.level, e.msg);
    if (runConfig !== config) {
      a.events.push({ time: Date.now(), kind: 'error', text: 'access log to stdout is off while the console owns the terminal; set log.access to a file' });
    }
  }
  const watcher = config.file === '' ? undefined : watchConfig(config.file, () => void app.actions.reload('watcher'));
  // Certificate and key files are watched like the config: a renewed certificate reloads it (docs/tls.md).
  watcher?.follow(tlsFiles(config));
  app.events.subscribe((e) => {
    if (e.kind === 'reload' && e.ok === true) watcher?.follow(tlsFiles(app.runtime.config));
  });
  app.setWatching(watcher !== undefined);
  return new Promise<number>((resolve) => {
    let stopping = false;
    let ui: ConsoleHandle | undefined;
    const done = (): void => {
      ui?.unmount();
      ui = undefined;
      void watcher?.close();
      resolve(0);
    };
    const leaving = new AbortController();
    const onStop = (sig: string): void => {
      if (stopping) {
        app.logger.warn(`${sig} again: closing every connection now`);
        leaving.abort();
        app.stopNow();
        done();
        return;
      }
      stopping = true;
      const delay = app.runtime.config.leaveDelayMs;
      // A graceful leave: not ready first (keepalived/BGP move the address), accepting stops after the delay.
      if (delay > 0) app.logger.info(`${sig}: leaving: reporting not ready now; accepting stops in ${delay} ms`);
      void (delay > 0 ? app.leave(delay, leaving.signal) : Promise.resolve()).then(() => {
        if (leaving.signal.aborted) return;
        app.logger.info(`${sig}: stopped accepting; waiting up to ${app.runtime.config.shutdownTimeoutMs} ms for open connections`);
        return app.stop().then(() => {
          app.logger.info('stopped');
          done();
        });
      });
    };
    process.on('SIGTERM', () => onStop('SIGTERM'));
    process.on('SIGINT', () => onStop('SIGINT'));
    process.on('SIGUSR1', () => {
      const log = app.accessLog();
      // A failed reopen is reported by the access log itself (it keeps the old file and retries).
      if (log === undefined) app.logger.info('SIGUSR1: no access log to reopen');
      else if (log.reopen()) app.logger.info('SIGUSR1: access log reopened');
    });
    process.on('SIGHUP', () => {
      app.logger.info('SIGHUP: reloading the config');
      void app.actions.reload('signal');
    });
    // Only now, with every signal handled, say we serve: a supervisor (or a
    // test) may send SIGTERM the moment it reads this line.
    const addrs = [...app.engine.boundAddresses()].map(([n, a]) => `${n}=${a.address}:${a.port}`).join(' ');
    app.logger.info(`tcplb ${version()} serving ${label}: ${addrs} (instance ${app.runtime.config.instance}, pid ${process.pid})`);
    if (useConsole) {
      // The terminal went away (ssh dropped, tmux killed): writes fail with
      // EIO/EPIPE. Take the console down and keep serving headless rather
      // than buffer frames for a screen nobody sees; SIGTERM or ctl still work.
      process.stdout.on('error', () => {
        ui?.unmount();
        ui = undefined;
      });
      void openConsole().then(({ runConsole }) => {
        // `q` (confirmed with the count of open connections): close them and exit.
        ui = runConsole(app.actions, {
          version: version(),
          // An engine relaying on this thread gets more of it with a frame a second.
          intervalMs: app.engine.relaysOnMainThread ? 1000 : 500,
          onQuit: () => {
            app.stopNow();
            done();
          },
        });
      });
    }
  });
}

/**
 * The control socket named by a config that does not validate: a running
 * tcplb refused a reload (a renewed certificate with the wrong key, a typo)
 * and the operator asks it why (`ctl certs`, `ctl status`). Only
 * `control.socket` is read, resolved against the config's folder as the
 * full load does.
 */
function socketOfInvalid(file: string): string | undefined {
  try {
    const v = JSON5.parse(fs.readFileSync(file, 'utf8')) as { control?: { socket?: unknown } | null };
    const s = v?.control?.socket;
    return typeof s === 'string' && s !== '' ? path.resolve(path.dirname(path.resolve(file)), s) : undefined;
  } catch {
    return undefined;
  }
}

/** The control socket of a config file, or undefined (said on stderr) when it cannot be read or sets none. */
async function socketOf(file: string): Promise<string | undefined> {
  const config = await load(file);
  if (config === undefined) {
    const s = socketOfInvalid(file);
    if (s !== undefined) process.stderr.write(`tcplb: asking the running tcplb at ${s} anyway (it serves its previous config)\n`);
    return s;
  }
  if (config.control.socket === null) {
    process.stderr.write(`tcplb: ${file} sets no control.socket; add control: { socket: "tcplb.sock" } or pass --socket PATH\n`);
    return undefined;
  }
  return config.control.socket;
}

/** The console attached to the tcplb(s) at `targets` (`q` detaches; the proxies run on). */
async function attach(targets: readonly Target[]): Promise<number> {
  const { runConsole } = await openConsole();
  return runAttached(targets, runConsole, { version: version() });
}

/**
 * The instances a ctl or attach names: its TARGETs and --socket values, then
 * the --fleet file's; none: the config's control socket. Undefined (said on
 * stderr) when an address or the fleet file is wrong.
 */
async function targetsOf(cmd: { targets: readonly string[]; fleet: string | undefined; config: string }): Promise<Target[] | undefined> {
  const { targetsFrom, loadFleetFile } = await import('../control/fleet-file.js');
  try {
    const list = [...targetsFrom(cmd.targets), ...(cmd.fleet === undefined ? [] : await loadFleetFile(cmd.fleet))];
    if (list.length > 0) return list;
  } catch (e) {
    process.stderr.write(`tcplb: ${(e as Error).message}\n`);
    return undefined;
  }
  const socket = await socketOf(cmd.config);
  return socket === undefined ? undefined : [unixTarget(socket)];
}

async function main(cmd: Command): Promise<number> {
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`tcplb-console ${version()}\n`);
      return 0;
    case 'check': {
      const config = await load(cmd.config);
      if (config === undefined) return 1;
      // The engine is part of the verdict: `engine: "native"` without the addon would not start.
      const { chooseEngine } = await import('../proxy/create-engine.js');
      let engine: string;
      try {
        engine = chooseEngine(config).why;
      } catch (err) {
        process.stderr.write(`${path.relative(process.cwd(), config.file) || config.file}: ${(err as Error).message}\n`);
        return 1;
      }
      process.stdout.write(`${summarize(config)}\nengine:   would run ${engine}\n`);
      return 0;
    }
    case 'run': {
      // `--socket PATH` names a running instance to attach to; the config is only read when none answers there.
      if (cmd.socket !== undefined && (await chooseRun({ console: wantConsole(cmd.headless), socket: cmd.socket, answers: instanceAnswers })) === 'attach') {
        return attach([unixTarget(cmd.socket)]);
      }
      const config = await load(cmd.config);
      if (config === undefined) return 1;
      // A tcplb already serves this config (under systemd, say): attach to it rather than start a second one.
      if (cmd.socket === undefined && (await chooseRun({ console: wantConsole(cmd.headless), socket: config.control.socket, answers: instanceAnswers })) === 'attach') {
        return attach([unixTarget(config.control.socket!)]);
      }
      return run(config, path.relative(process.cwd(), config.file) || config.file, wantConsole(cmd.headless));
    }
    case 'demo': {
      const { startDemoBackends } = await import('../demo/backends.js');
      const file = path.join(ROOT, 'demo', 'config.json5');
      const config = await load(file);
      if (config === undefined) return 1;
      const backends = await startDemoBackends();
      const useConsole = wantConsole(cmd.headless);
      process.stdout.write(backends.banner(config));
      if (useConsole) {
        process.stdout.write('Opening the console in 3 seconds (q quits, ? shows the keys)...\n');
        await new Promise((r) => setTimeout(r, 3000));
      }
      const code = await run(config, 'demo/config.json5', useConsole);
      await backends.stop();
      return code;
    }
    case 'import-nginx': {
      const { importNginx } = await import('../import/index.js');
      try {
        const { json5, warnings } = await importNginx(cmd.file);
        process.stdout.write(json5);
        for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
        if (warnings.length > 0) {
          process.stderr.write(`import-nginx: ${warnings.length} directive${warnings.length === 1 ? '' : 's'} not translated (see the "// not translated" comments)\n`);
        }
        return 0;
      } catch (err) {
        if (isLbError(err, ERR_IMPORT)) {
          process.stderr.write(`tcplb: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    }
    case 'attach': {
      if (!wantConsole(false)) {
        process.stderr.write('tcplb: attach needs a terminal (without one: ctl status, ctl watch)\n');
        return 1;
      }
      const targets = await targetsOf(cmd);
      return targets === undefined ? 1 : attach(targets);
    }
    case 'health': {
      // `health --socket PATH` takes the fast path in main.ts; this is `health -c CONFIG`.
      const socket = cmd.socket ?? (await socketOf(cmd.config));
      if (socket === undefined) return 1;
      const { exabgpSink, fileSink, followReadiness, healthCheck } = await import('./health.js');
      if (cmd.follow !== undefined) {
        const stop = new AbortController();
        for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
        const to = cmd.follow.to;
        // ExaBGP closes our stdin when it stops; a track_file writer runs as a service and ends by signal.
        if ('exabgp' in to) return followReadiness(socket, cmd.follow.intervalMs, exabgpSink(to.exabgp, process.stdout), { err: process.stderr, stdin: process.stdin, stop: stop.signal });
        return followReadiness(socket, cmd.follow.intervalMs, fileSink(to.file, process.stderr), { err: process.stderr, stop: stop.signal });
      }
      return healthCheck(socket);
    }
    case 'ctl': {
      const targets = await targetsOf(cmd);
      if (targets === undefined) return 1;
      if (targets.length === 1) {
        const { runCtl } = await import('../control/client.js');
        return runCtl(cmd.args, targets[0]!);
      }
      const { runFanout } = await import('../control/fanout.js');
      return runFanout(cmd.args, targets);
    }
  }
}

let cmd: Command;
try {
  cmd = parseCommand(process.argv.slice(2));
} catch (err) {
  if (!isLbError(err, ERR_USAGE)) throw err;
  process.stderr.write(`tcplb: ${err.message}\n\n${USAGE}`);
  process.exit(2);
}
main(cmd).then(
  (code) => {
    process.exitCode = code;
    // Leftover handles (a stuck socket) must not keep a stopped process alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err) => {
    process.stderr.write(`tcplb: internal error: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
