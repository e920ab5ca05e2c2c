/**
 * What the console reads and acts through. Two things satisfy it: the
 * in-process `Actions` (the console runs inside the proxy) and the remote
 * client of the control socket (control/remote.ts: the console attached to a
 * tcplb running elsewhere, e.g. under systemd). It lives here, below both
 * console/ and control/, so neither imports the other; cli/ wires them.
 */
import type { BackendId, ProbeResult } from '../core/types.js';
import type { ActionResult, Actor, AdminResult, ReloadResult } from './actions-types.js';
import type { Snapshot } from './snapshot.js';

/**
 * The operator actions and the snapshot, as the console uses them. A remote
 * source answers actions asynchronously (a request over the socket); the
 * in-process `Actions` answers most at once, so both shapes are allowed.
 * Like `Actions`, nothing here throws.
 */
export interface ConsoleSource {
  drain(id: BackendId, by: Actor): AdminResult | Promise<AdminResult>;
  disable(id: BackendId, by: Actor): AdminResult | Promise<AdminResult>;
  enable(id: BackendId, by: Actor): AdminResult | Promise<AdminResult>;
  check(id: BackendId, by: Actor): Promise<ActionResult & { result?: ProbeResult }>;
  kill(id: BackendId, by: Actor): ActionResult | Promise<ActionResult>;
  reload(by: Actor): Promise<ReloadResult>;
  /** Standby on/off (absent on a source that cannot: an older remote tcplb answers it with an error anyway). */
  standby?(on: boolean, by: Actor): AdminResult | Promise<AdminResult>;
  /** The newest snapshot (remote: the last one streamed, with the events streamed since). */
  snapshot(connLimit?: number): Snapshot;
  /** Set when the console is attached to a tcplb in another process. */
  readonly attachment?: Attachment;
}

/** A console attached over the control socket: the link to the instance. */
export interface Attachment {
  /** The link as it is now (read at every frame). */
  link(): AttachLink;
  /** Drop the link (detach); the instance runs on. Idempotent. */
  close(): void;
  /** A fleet (several instances): each one's link, in fleet order. */
  members?(): readonly MemberLink[];
}

/** One instance of a fleet, as the header lists it. */
export interface MemberLink {
  readonly name: string;
  /** Undefined until the instance was reached once. */
  readonly link?: AttachLink;
  /** Why it cannot be asked now (never reached, or the link is lost); undefined while it is up. */
  readonly lost?: string;
}

/** Facts about the attached instance and the link to it. */
export interface AttachLink {
  readonly pid: number;
  /** Epoch ms the instance started. */
  readonly started: number;
  /** Its config file. */
  readonly config: string;
  readonly socket: string;
  /** Why the link is down (the console retries), or undefined while it is up. */
  readonly lost?: string;
}
