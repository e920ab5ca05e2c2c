/**
 * `tcp`: the connection is established (L4_OK); with `tls`, the TLS handshake
 * completes too (L6_OK) and the certificate is recorded.
 */
import { runProbe } from '../expect.js';
import type { Probe } from '../types.js';

/** Connect (and handshake), then close politely. Sends nothing but the preamble. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    // As nginx's peek after connect: a reset right after the accept fails the check,
    // an orderly close does not (the port is served, the service just has nothing to say).
    await session.settle();
    return options.tls
      ? { status: 'L6_OK', detail: `${session.tlsVersion} handshake ok` }
      : { status: 'L4_OK', detail: 'connected' };
  });
