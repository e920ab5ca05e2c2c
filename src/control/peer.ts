/**
 * Who is at the other end of a control socket connection, as the actor the
 * event log shows: `ctl (user alice, pid 4242)`. The kernel recorded the
 * client's pid and uid when it connected (SO_PEERCRED); the client has no say
 * in it, so a request never names its own sender. Node cannot read that
 * record: the native addon's `peerCredentials(fd)` does, and is injected
 * (cli/app.ts wires it; control/ may not import proxy/). Without the addon
 * the actor is `ctl (peer unknown)`: /proc lists Unix sockets but not their
 * peers, so there is no reliable way to find the client from JavaScript.
 */
import fs from 'node:fs';
import type net from 'node:net';
import type { Actor } from '../runtime/actions-types.js';

/** The kernel's record of the peer process (native/API.md, peerCredentials). */
export interface PeerCredentials {
  /** 0 when the peer runs in a pid namespace this process cannot see. */
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The addon's `peerCredentials`: null when the fd carries no credentials. */
export type PeerLookup = (fd: number) => PeerCredentials | null;

export const UNKNOWN_PEER: Actor = 'ctl (peer unknown)';

/**
 * The actor for a client just accepted on the control socket: plain `ctl`
 * when the caller asked for no names (`lookup` undefined), `ctl (peer
 * unknown)` when there is no lookup (null) or it has no answer. Never throws.
 */
export function peerActor(sock: net.Socket, lookup: PeerLookup | null | undefined, passwd = '/etc/passwd'): Actor {
  if (lookup === undefined) return 'ctl';
  if (lookup === null) return UNKNOWN_PEER;
  // The accepted socket's file descriptor: libuv's handle has it on Unix.
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return UNKNOWN_PEER;
  let cred: PeerCredentials | null;
  try {
    cred = lookup(fd);
  } catch {
    return UNKNOWN_PEER;
  }
  if (cred === null) return UNKNOWN_PEER;
  const who = userName(cred.uid, passwd);
  return cred.pid > 0 ? `ctl (${who}, pid ${cred.pid})` : `ctl (${who})`;
}

const names = new Map<string, string>();

/**
 * `user alice` from the passwd file, or `uid 1000` when it has no (sane)
 * entry. Read once per uid: a connection costs no file read after the first.
 */
export function userName(uid: number, passwd = '/etc/passwd'): string {
  const key = `${passwd}\0${uid}`;
  let name = names.get(key);
  if (name === undefined) {
    name = `uid ${uid}`;
    try {
      for (const line of fs.readFileSync(passwd, 'utf8').split('\n')) {
        const f = line.split(':');
        // name:password:uid:...; a name that would garble the log line is not used.
        if (f.length >= 3 && f[2] === String(uid) && /^[A-Za-z0-9._-][A-Za-z0-9._$-]*$/.test(f[0]!)) {
          name = `user ${f[0]}`;
          break;
        }
      }
    } catch {
      // no passwd file (a minimal container): the uid alone
    }
    names.set(key, name);
  }
  return name;
}
