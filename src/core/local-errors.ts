/**
 * Errors that are about this host, not the peer: tcplb itself is out of
 * descriptors, ports or socket memory. Every backend would fail the same way,
 * so neither the data path (passive health) nor the checks (rise/fall) may
 * blame a backend for them. Leaf module: the proxy and the health checks share
 * this one list.
 */

/** Connect errors that are about this host, not the backend. */
export const LOCAL_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);

const TEXT: Readonly<Record<string, string>> = {
  EMFILE: 'tcplb is out of file descriptors (raise LimitNOFILE / ulimit -n)',
  ENFILE: 'the host is out of file descriptors (fs.file-max)',
  ENOBUFS: 'tcplb is out of socket buffer memory',
  ENOMEM: 'tcplb is out of socket memory',
  EADDRNOTAVAIL: 'tcplb has no local port free to connect from (ip_local_port_range)',
};

/** `EMFILE: tcplb is out of file descriptors (...)`: the code and what it means on this side. */
export function localErrorText(code: string): string {
  return `${code}: ${TEXT[code] ?? 'local resource error'}`;
}
