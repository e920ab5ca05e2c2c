/**
 * Ports for tcplb listeners that must be written into a config before tcplb
 * starts (tcplb's config takes ports 1-65535 only, so it cannot be told to bind
 * port 0 and report back), and for "nothing listens here" addresses.
 *
 * The old way (bind port 0, read it, close, hand the number on) raced twice:
 * the number came from the kernel's ephemeral range, so any outgoing
 * connection of a concurrent test (or of the load a fault test makes) could
 * take it as its local port before tcplb bound it; and a concurrent test
 * process could be handed the same number by the kernel.
 *
 * A reservation here cannot race with its peers:
 * - ports come from a range below the ephemeral range (net.ipv4.ip_local_port_range
 *   starts at 32768), which the kernel never hands out to connect() or bind(0);
 * - a port is claimed by creating /tmp/tcplb-test-ports/<port> exclusively
 *   (O_EXCL), holding our pid, so no two test processes (or two tests in one
 *   process) get the same port; the claim lasts until this process exits;
 * - a claimed port is checked bindable on the given host before it is handed out.
 *
 * Residual risk: a process outside this scheme binding the very port between
 * the check and tcplb's bind (nothing on a test machine binds fixed ports in
 * 12000-19999 that we know of), and the sweep of a claim left by a killed
 * test process racing another sweep (two processes would have to reclaim the
 * same stale file within microseconds).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** One file per claimed port, holding the claimant's pid. */
export const CLAIMS_DIR = path.join(os.tmpdir(), 'tcplb-test-ports');
const DIR = CLAIMS_DIR;

/** The default range: below the ephemeral ports, and clear of the bench's 21000-31999. */
export const TEST_PORTS = { min: 12000, max: 19999 } as const;

const held = new Set<string>();
process.on('exit', () => {
  for (const f of held) {
    try {
      fs.unlinkSync(f);
    } catch {
      /* already gone */
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Create the claim file exclusively; true when it is ours now. */
function create(file: string): boolean {
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
    held.add(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Claim `port` for this process; a claim left by a dead process (older than a minute) is swept first. */
function claim(port: number): boolean {
  const file = path.join(DIR, String(port));
  if (create(file)) return true;
  try {
    const st = fs.statSync(file);
    const owner = Number(fs.readFileSync(file, 'utf8').trim());
    // An empty file is a claim being written right now: leave it.
    if (!(owner > 0) || alive(owner) || Date.now() - st.mtimeMs < 60_000) return false;
    fs.unlinkSync(file);
  } catch {
    return false;
  }
  return create(file);
}

/** True when `host:port` can be bound (and is released again) right now. */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * A port reserved for this process until it exits, bindable on every one of
 * `hosts` (default 127.0.0.1) right now. `preferred` is tried first.
 */
export async function reservePort(
  hosts: string | readonly string[] = '127.0.0.1',
  opts: { range?: { min: number; max: number }; preferred?: number } = {},
): Promise<number> {
  const list = typeof hosts === 'string' ? [hosts] : hosts;
  const { min, max } = opts.range ?? TEST_PORTS;
  fs.mkdirSync(DIR, { recursive: true });
  const tryPort = async (p: number): Promise<boolean> => {
    if (!claim(p)) return false;
    for (const h of list) if (!(await canBind(h, p))) return false; // taken by something else: keep the claim, skip it
    return true;
  };
  if (opts.preferred !== undefined && (await tryPort(opts.preferred))) return opts.preferred;
  for (let i = 0; i < 500; i++) {
    const p = min + Math.floor(Math.random() * (max - min + 1));
    if (await tryPort(p)) return p;
  }
  throw new Error(`no port free and unclaimed in ${min}-${max} on ${list.join(', ')} (claims in ${DIR})`);
}
