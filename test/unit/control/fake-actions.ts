/** A fake Actions for control tests: records calls, answers canned results. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Actions, ActionResult, Actor, ReloadResult } from '../../../src/runtime/actions-types.js';
import type { EventView, Snapshot } from '../../../src/runtime/snapshot.js';
import type { ProbeResult } from '../../../src/core/types.js';

export const KNOWN = 'imap/10.0.0.2:143';

export const SNAPSHOT = {
  time: 1,
  version: '0.1.0',
  pid: 42,
  engine: 'js',
  config: { file: 'config.json5', watch: 'static', loadedAt: 1 },
  listeners: [{ name: 'imap', listen: '0.0.0.0:143', upstream: 'imap' }],
  totals: { active: 0, accepted: 3, connPerSec: 0, bytesPerSec: 0 },
  upstreams: [],
  events: [],
  connections: { total: 0, list: [] },
} as unknown as Snapshot;

export const PROBE: ProbeResult = { ok: true, status: 'L7_OK', latencyMs: 3, detail: '* OK ready' };

export interface FakeActions extends Actions {
  calls: string[];
  /** Make `check` wait this long (ms). */
  checkDelay: number;
  probe: ProbeResult;
  reloadResult: ReloadResult;
  /** What snapshot() returns (default SNAPSHOT). */
  snap: Snapshot;
  /** Record an event: every onEvent listener gets it. */
  emit(e: EventView): void;
  /** onEvent listeners subscribed now. */
  listeners: Set<(e: EventView) => void>;
  /** Standby as the fake's `standby` set it. */
  standbyOn: boolean;
}

/** Every backend command succeeds for KNOWN and fails like the runtime for anything else. */
export function fakeActions(): FakeActions {
  const calls: string[] = [];
  const unknown = (id: string): ActionResult => ({ ok: false, message: `no backend "${id}"; name it as upstream/host:port` });
  const act =
    (verb: string, text: string) =>
    (id: string, by: Actor): ActionResult => {
      calls.push(`${verb} ${id} ${by}`);
      return id === KNOWN ? { ok: true, message: `${id} ${text}` } : unknown(id);
    };
  const listeners = new Set<(e: EventView) => void>();
  const fake: FakeActions = {
    calls,
    listeners,
    snap: SNAPSHOT,
    standbyOn: false,
    emit(e) {
      for (const fn of listeners) fn(e);
    },
    onEvent(fn) {
      const own = (e: EventView): void => fn(e);
      listeners.add(own);
      return () => listeners.delete(own);
    },
    checkDelay: 0,
    probe: PROBE,
    reloadResult: { ok: true, message: 'reloaded config.json5: 2 changes', changes: ['+listener smtps 0.0.0.0:465', '-backend imap/10.0.0.3:143'] },
    drain: act('drain', 'draining'),
    disable: act('disable', 'disabled'),
    enable: act('enable', 'enabled'),
    kill: act('kill', 'closed 0 open connections'),
    async check(id, by) {
      calls.push(`check ${id} ${by}`);
      if (id !== KNOWN) return unknown(id);
      await new Promise((r) => setTimeout(r, fake.checkDelay));
      return { ok: true, message: `${id}: ${fake.probe.ok ? 'pass' : 'FAIL'} ${fake.probe.status}`, result: fake.probe };
    },
    async reload(by) {
      calls.push(`reload ${by}`);
      return fake.reloadResult;
    },
    standby(on, by) {
      calls.push(`standby ${on ? 'on' : 'off'} ${by}`);
      fake.standbyOn = on;
      return { ok: true, message: on ? 'standby: not ready' : 'standby off: ready' };
    },
    readiness() {
      return fake.standbyOn ? { ready: false, why: 'not ready: standby' } : { ready: true, why: 'ready: imap 1/1 usable' };
    },
    explain(client, listener) {
      calls.push(`explain ${client} ${listener ?? '-'}`);
      if (client !== '203.0.113.7') return { error: `"${client}" is not an IP address` };
      return { client, listener: listener ?? 'imap', upstream: 'imap', balance: 'ip_hash', chosen: KNOWN, digest: '0badcafe', ranking: [{ id: KNOWN, weight: 1, backup: false, usable: true, state: 'UP' }] };
    },
    snapshot(connLimit?: number) {
      calls.push(connLimit === undefined ? 'snapshot' : `snapshot ${connLimit}`);
      return fake.snap;
    },
  };
  return fake;
}

/** A fresh short temp folder (unix socket paths are limited to 107 bytes). */
export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-'));
}

/** A text sink for runCtl's out/err. */
export function capture(): { text: string; write(s: string): boolean } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

/**
 * Connect, send `payload` raw (then half-close unless `keepOpen`), and collect
 * reply lines until `want` lines arrived or the server closed.
 */
export function raw(sockPath: string, payload: string | Buffer, opts: { want?: number; keepOpen?: boolean } = {}): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(sockPath);
    let buf = '';
    let settled = false;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve({ lines: buf.split('\n').filter((l) => l !== ''), closed });
    };
    sock.on('connect', () => {
      sock.write(payload);
      if (opts.keepOpen !== true) sock.end();
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (opts.want !== undefined && buf.split('\n').length - 1 >= opts.want) done(false);
    });
    sock.on('close', () => done(true));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // A server that drops a writer mid-stream may reset us after its reply: keep what came.
      if (buf !== '') done(true);
      else if (!settled) {
        settled = true;
        reject(e);
      }
    });
  });
}
