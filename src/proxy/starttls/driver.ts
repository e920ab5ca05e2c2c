/**
 * STARTTLS on a session's two sockets (docs/tls.md#starttls-at-the-balancer):
 * feeds StarttlsMachine, writes what it says, and on an accepted upgrade
 * does TLS with the backend (the upstream's `tls` settings), then answers
 * the client and does TLS with it (the listener's certificates). The
 * session gets the sockets back to relay (TLS both sides, or plain when the
 * client never upgrades), or is told how it ended.
 *
 * Bytes read but not consumed when a leg turns TLS are dropped on purpose:
 * what the client sent after its upgrade command, or the backend after its
 * reply, must never reach the other side nor the TLS engine.
 */
import type net from 'node:net';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { StarttlsProtocol } from './rules.js';
import { StarttlsMachine, type Action } from './machine.js';
import { handshakeFailureKind, type TlsFront } from '../tls-front.js';

/** How the balancer upgrades its leg to a backend: the upstream's `tls` (or its defaults). */
export interface BackendTls {
  readonly context: tls.SecureContext;
  /** SNI and the name checked; '' = the backend's host when it is a name. */
  readonly servername: string;
  readonly verify: boolean;
}

export interface StarttlsSetup {
  readonly protocol: StarttlsProtocol;
  readonly requireTls: boolean;
  readonly front: TlsFront;
  readonly backendTls: BackendTls;
  /** From the client's upgrade command to both handshakes done. */
  readonly timeoutMs: number;
  readonly maxLine?: number;
}

/** How a session that did not reach the relay ended. */
export interface NegotiationEnd {
  readonly reason: 'closed' | 'tls_failed' | 'error';
  readonly detail: string;
  /** An error of the backend's (refusal, TLS, timeout): counted against it (passive checks). */
  readonly blame?: string;
  /** The client's TLS handshake failed: the kind, for the rate-limited log. */
  readonly clientTls?: string;
  /** A line for the operational log (rate-limited by kind). */
  readonly log?: string;
}

export interface NegotiationHooks {
  /** Plain bytes relayed: client -> backend, backend -> client. */
  counted(toBackend: number, toClient: number): void;
  /** Relay from now on with these sockets; `upgraded`: both are TLS. */
  relay(client: net.Socket, backend: net.Socket, upgraded: boolean): void;
  /** The session is over (both sockets closed or closing). */
  ended(end: NegotiationEnd): void;
  /** Describe a backend socket error (`L6_VERIFY …`). */
  describe(err: NodeJS.ErrnoException): string;
}

/** Discard what a paused socket has read but nobody consumed. */
function drop(s: net.Socket): number {
  let n = 0;
  for (let b = s.read() as Buffer | null; b !== null; b = s.read() as Buffer | null) n += b.length;
  return n;
}

const noop = (): void => {};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- event listeners of any signature
type Listener = (...args: any[]) => void;

/** Listeners we put on sockets, so they come off again without touching Node's own. */
class Hooked {
  readonly #list: Array<[net.Socket, string, Listener]> = [];
  on(s: net.Socket, ev: string, fn: Listener): void {
    s.on(ev, fn);
    this.#list.push([s, ev, fn]);
  }
  /** Take our `ev` listeners off `s`. */
  off(s: net.Socket, ev: string): void {
    for (const [sock, e, fn] of this.#list) if (sock === s && e === ev) s.off(ev, fn);
  }
  /** Take ours off `s` (TLS or the session takes over); a stray error must not throw. */
  release(s: net.Socket): void {
    s.pause();
    for (const [sock, ev, fn] of this.#list) if (sock === s) s.off(ev, fn);
    s.on('error', noop);
  }
}

export class Negotiation {
  readonly machine: StarttlsMachine;
  readonly #client: net.Socket;
  readonly #up: net.Socket;
  readonly #host: string;
  readonly #setup: StarttlsSetup;
  readonly #hooks: NegotiationHooks;
  /** TLS sockets made along the way, destroyed on abort. */
  readonly #extra: net.Socket[] = [];
  readonly #on = new Hooked();
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;
  /** The client has its failure answer; the first reason stands. */
  #failing = false;
  /** Torn down from our side or the client's: a backend leg closing now is not the backend's fault. */
  #ending = false;
  #over = false;
  #detail = '';
  /** plain: relaying lines; backend: TLS with the backend; client: TLS with the client. */
  #stage: 'plain' | 'backend' | 'client' = 'plain';
  /** What ends the session when the client's socket closes now. */
  #onClosed: () => NegotiationEnd = () => ({ reason: 'closed', detail: this.#detail });

  constructor(client: net.Socket, up: net.Socket, backendHost: string, setup: StarttlsSetup, hooks: NegotiationHooks) {
    this.machine = new StarttlsMachine(setup.protocol, { requireTls: setup.requireTls, ...(setup.maxLine === undefined ? {} : { maxLine: setup.maxLine }) });
    this.#client = client;
    this.#up = up;
    this.#host = backendHost;
    this.#setup = setup;
    this.#hooks = hooks;
    const on = this.#on;
    on.on(client, 'data', (chunk: Buffer) => this.#apply(this.machine.client(chunk)));
    on.on(up, 'data', (chunk: Buffer) => this.#apply(this.machine.backend(chunk)));
    // A FIN before the upgrade is relayed as a FIN (after QUIT, LOGOUT), as the plain relay does.
    on.on(client, 'end', () => void (this.machine.phase === 'inspect' && this.#up.end()));
    on.on(up, 'end', () => void (this.machine.phase !== 'done' && this.#client.end()));
    for (const [s, side] of [[client, 'client'], [up, 'backend']] as const) {
      on.on(s, 'error', (e: NodeJS.ErrnoException) => {
        this.#detail ||= e.code === 'ECONNRESET' || e.code === 'EPIPE' ? `${e.code} from ${side}` : `${side}: ${e.message}`;
      });
    }
    // The backend gone: the client gets what it was sent, then is closed.
    on.on(up, 'close', () => {
      if (!client.destroyed) (client.writableEnded ? client.destroySoon() : client.destroy());
    });
    on.on(client, 'close', () => this.#clientGone());
    client.resume();
    up.resume();
  }

  /** End now (kill, idle, shutdown): everything is destroyed; `ended` follows. */
  abort(): void {
    this.#ending = true;
    this.#client.destroy();
    this.#up.destroy();
    for (const s of this.#extra) s.destroy();
  }

  #clientGone(): void {
    this.#ending = true;
    this.#up.destroy();
    for (const s of this.#extra) s.destroy();
    this.#finish(this.#onClosed());
  }

  #finish(end: NegotiationEnd): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    this.#hooks.ended(end);
  }

  #apply(actions: Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'toClient':
          this.#hooks.counted(0, a.data.length);
          this.#client.write(a.data);
          break;
        case 'toBackend':
          this.#hooks.counted(a.data.length, 0);
          this.#up.write(a.data);
          break;
        case 'passthrough':
          return this.#passthrough(a.toBackend, a.toClient);
        case 'tooLong': {
          const detail = `${a.side} line over ${this.machine.maxLine} bytes before TLS`;
          this.#onClosed = () => ({ reason: 'error', detail, log: `${detail}, session closed` });
          this.abort();
          return;
        }
        case 'refused': {
          const reply = a.reply.slice(0, 120);
          this.#fail(a.answer, { reason: 'tls_failed', detail: `backend refused STARTTLS: ${reply}`, blame: `STARTTLS refused: ${reply}` });
          return;
        }
        case 'upgrade':
          return this.#upgradeBackend(a.ok, a.unavailable);
      }
    }
    // The client asked to upgrade: from now on the whole upgrade is bounded.
    if (this.machine.phase === 'upgrading' && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#timeout(), this.#setup.timeoutMs);
    }
  }

  #timeout(): void {
    this.#timedOut = true;
    const s = `STARTTLS timeout after ${this.#setup.timeoutMs} ms`;
    // Waiting for the backend (its reply or its handshake): its fault, and the client hears it.
    if (this.#stage !== 'client') this.#fail(this.machine.unavailable(), { reason: 'tls_failed', detail: `backend: ${s}`, blame: s });
    else this.abort();
  }

  /** The client hears `answer` (in clear), then both legs close. */
  #fail(answer: string, end: NegotiationEnd): void {
    if (this.#failing) return;
    this.#failing = true;
    clearTimeout(this.#timer);
    this.#onClosed = () => end;
    this.#on.release(this.#up);
    this.#client.pause();
    this.#up.destroy();
    for (const s of this.#extra) s.destroy();
    const client = this.#client;
    if (!client.destroyed) client.end(answer);
    // A client that does not read its answer does not keep the session.
    setTimeout(() => client.destroy(), 2000).unref();
  }

  #passthrough(toBackend: Buffer, toClient: Buffer): void {
    this.#over = true;
    this.#on.release(this.#client);
    this.#on.release(this.#up);
    if (toBackend.length > 0) this.#up.write(toBackend);
    if (toClient.length > 0) this.#client.write(toClient);
    this.#hooks.counted(toBackend.length, toClient.length);
    this.#hooks.relay(this.#client, this.#up, false);
  }

  /** The backend accepted: TLS on its leg first, so the client hears `ok` only once the backend leg is secured. */
  #upgradeBackend(ok: string, unavailable: string): void {
    this.#stage = 'backend';
    const up = this.#up;
    this.#on.release(up);
    // Sent after its reply: never to be read as TLS (nor relayed).
    this.machine.discardedBackend += drop(up);
    const b = this.#setup.backendTls;
    const t = tls.connect({
      socket: up,
      secureContext: b.context,
      servername: b.servername !== '' ? b.servername : isIP(this.#host) ? undefined : this.#host,
      rejectUnauthorized: b.verify,
    });
    this.#extra.push(t);
    let failure: NodeJS.ErrnoException | undefined;
    this.#on.on(t, 'error', (e: NodeJS.ErrnoException) => void (failure ??= e));
    this.#on.on(t, 'close', () => {
      if (this.#stage !== 'backend' || this.#ending) return;
      const why = failure === undefined ? 'closed during the TLS handshake' : this.#hooks.describe(failure);
      this.#fail(unavailable, { reason: 'tls_failed', detail: `backend TLS: ${why}`, blame: `STARTTLS: ${why}` });
    });
    t.once('secureConnect', () => this.#upgradeClient(t, ok));
  }

  #upgradeClient(backend: tls.TLSSocket, ok: string): void {
    if (this.#over) return void backend.destroy();
    this.#stage = 'client';
    const client = this.#client;
    this.#on.off(client, 'data');
    client.pause();
    this.#onClosed = () => ({ reason: 'tls_failed', detail: 'client closed during the handshake', clientTls: 'client closed during the handshake' });
    // Sent before our answer: pipelined plain text, never to be read as TLS.
    this.machine.discardedClient += drop(client);
    this.#hooks.counted(0, ok.length);
    client.write(ok, () => {
      if (this.#over || client.destroyed) return;
      // Unconsumed bytes now are the ClientHello: the TLS socket takes them.
      this.#on.release(client);
      const t = this.#setup.front.wrap(client);
      this.#extra.push(t);
      let failure: Error | undefined;
      const on = this.#on;
      on.on(t, 'error', (e: Error) => void (failure ??= e));
      on.on(t, 'end', () => void t.destroy());
      on.on(t, 'close', () => {
        backend.destroy();
        const kind = handshakeFailureKind(failure, this.#timedOut);
        this.#finish({ reason: 'tls_failed', detail: kind, clientTls: kind });
      });
      t.once('secure', () => {
        if (this.#over) return;
        this.#over = true;
        clearTimeout(this.#timer);
        on.release(t);
        on.release(backend);
        this.#hooks.relay(t, backend, true);
      });
    });
  }
}
