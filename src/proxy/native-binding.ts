/**
 * Loads the native relay addon (native/, built by node-gyp at `npm install`)
 * and says why when it cannot: not built (no compiler, build failed),
 * another platform, or a load error. Loaded at most once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's own engine object (see native/API.md). */
export interface NativeEngineHandle {
  listen(listenerId: number, host: string, port: number, backlog: number): { ok: true; port: number } | { ok: false; errno: number; code: string };
  activate(listenerId: number): void;
  closeListener(listenerId: number): void;
  /** `backendKey` (-1 = none): the connection counts against that backend in the routing fast path. */
  connect(connId: number, ip: string, port: number, timeoutMs: number, idleMs: number, preamble: Buffer | undefined, backendKey?: number): void;
  /** The routing fast path of one listener; null = every client comes to JS as ACCEPT. */
  setRoute(listenerId: number, table: NativeRouteTable | null): void;
  /**
   * TLS termination for a listener (native/API.md, setTls); null = plain.
   * Absent in a build older than this source: TLS listeners then run in the
   * embedded JsEngine. Throws when a certificate or key is refused.
   */
  setTls?(listenerId: number, settings: NativeTlsSettings | null): void;
  reject(connId: number): void;
  kill(connId: number): void;
  closeAll(): void;
  stats(): Float64Array;
  counts(): { connections: number; listeners: number; fds: number };
  stop(): void;
}

/** A listener's routing fast-path table (native/API.md, setRoute). */
export interface NativeRouteTable {
  algo: 'round_robin' | 'least_conn' | 'ip_hash';
  connectTimeoutMs: number;
  idleMs: number;
  /** 0 = none */
  maxConnections: number;
  /** The PROXY header a TLS listener's fast path sends (native/src/tls.cc): 0 none, 1 v1, 2 v2 with the TLS fields. Absent = 0. */
  proxyProtocol?: 0 | 1 | 2;
  backends: NativeRouteBackend[];
}

export interface NativeRouteBackend {
  /** The engine's stable number for the BackendId (reported back in ACCEPT_ROUTED). */
  key: number;
  /** IP literal */
  ip: string;
  port: number;
  weight: number;
  /** 0 = none */
  maxConns: number;
  backup: boolean;
  usable: boolean;
  /** hashString32(backendId, 0x9747b28c), as IpHashBalancer hashes it. */
  idHash: number;
}

/** A listener's TLS settings for setTls (built by native-tls.ts). */
export interface NativeTlsSettings {
  certificates: Array<{ cert: string; key: string; names: string[] }>;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  alpn: string[];
  strictSni: boolean;
  handshakeTimeoutMs: number;
  /** TLS <= 1.2 cipher list and TLS 1.3 suites (Node's defaults). */
  ciphers: string;
  ciphersuites: string;
}

export interface NativeBinding {
  readonly version: string;
  /** `threads`: relay threads (default 1), sharing each listening socket (native/API.md). */
  readonly Engine: new (onEvents: (ev: unknown[]) => void, opts?: { threads?: number }) => NativeEngineHandle;
  /** SO_PEERCRED of a Unix socket fd (native/API.md); absent in a build older than this source. */
  readonly peerCredentials?: (fd: number) => { pid: number; uid: number; gid: number } | null;
}

export type NativeLoad = { ok: true; binding: NativeBinding; path: string } | { ok: false; reason: string };

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** TCPLB_NATIVE_ADDON points at another build (native/asan.sh runs the suites on an ASan build). */
const ADDON = process.env.TCPLB_NATIVE_ADDON || `${ROOT}native/build/Release/tcplb_native.node`;
/** Written by scripts/build-native.mjs when the build fails: the reason, in one line. */
const BUILD_LOG = `${ROOT}native/build-status.txt`;

let loaded: NativeLoad | undefined;

export function loadNative(): NativeLoad {
  if (loaded !== undefined) return loaded;
  if (process.env.TCPLB_NO_NATIVE === '1') return (loaded = { ok: false, reason: 'disabled by TCPLB_NO_NATIVE=1' });
  if (process.platform !== 'linux') return (loaded = { ok: false, reason: `the native engine is Linux-only (this is ${process.platform})` });
  if (!existsSync(ADDON)) {
    let why = 'not built';
    try {
      why = readFileSync(BUILD_LOG, 'utf8').trim().split('\n')[0] || why;
    } catch {
      // no status file: never attempted (e.g. installed with --ignore-scripts)
      why = 'not built (run `npm run build:native`)';
    }
    return (loaded = { ok: false, reason: why });
  }
  try {
    const binding = createRequire(import.meta.url)(ADDON) as NativeBinding;
    return (loaded = { ok: true, binding, path: ADDON });
  } catch (err) {
    return (loaded = { ok: false, reason: `failed to load ${ADDON}: ${(err as Error).message.split('\n')[0]}` });
  }
}
