/**
 * `tcplb-console ctl --socket PATH bridge`: relay stdin to the control
 * socket and the socket to stdout, byte for byte. It is the far end of an
 * ssh target (control/target.ts): the operator's ssh runs it on the
 * balancer's host, so the control socket is reached with ssh's
 * authentication and no network port of tcplb's own. The socket's peer is
 * this process: actions are recorded as the ssh user and this pid.
 *
 * Exit 0 when either side ends the conversation; 1 (said on stderr, which
 * ssh carries back) when the socket cannot be reached or fails.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TextOut } from './client.js';
import type { Target } from './target.js';

export function runBridge(target: Target, input: Readable, output: Writable, err: TextOut): Promise<number> {
  return new Promise<number>((resolve) => {
    const sock: Duplex = target.connect();
    let connected = false;
    let done = false;
    const finish = (code: number, message?: string): void => {
      if (done) return;
      done = true;
      if (message !== undefined) err.write(`${message}\n`);
      input.unpipe(sock);
      input.pause();
      sock.destroy();
      // Let what the socket said reach the far end before exiting.
      if (output.writableNeedDrain) output.once('drain', () => resolve(code));
      else resolve(code);
    };
    sock.on('connect', () => (connected = true));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(1, target.failure(e, connected)));
    sock.on('data', (chunk: Buffer) => {
      if (!output.write(chunk)) {
        sock.pause();
        output.once('drain', () => sock.resume());
      }
    });
    sock.on('end', () => finish(0));
    sock.on('close', () => finish(0));
    // The operator's side closed (ssh gone): half-close, so a reply still in flight is not cut.
    input.on('end', () => sock.end());
    output.on('error', () => finish(0));
    input.pipe(sock, { end: false });
  });
}
