/**
 * `http`: send the configured request, read the status line only, and pass when
 * its class (or exact code) is in `expect`.
 */
import { quote, runProbe } from '../expect.js';
import type { Probe } from '../types.js';

/** The request sent when `send` is empty (nginx_tcp_proxy_module's default). */
export const DEFAULT_SEND = 'GET / HTTP/1.0\r\n\r\n';
/** The classes accepted when `expect` is empty. */
export const DEFAULT_EXPECT: readonly string[] = ['2xx', '3xx'];

const STATUS_LINE = /^HTTP\/\d(?:\.\d)? ([1-5]\d\d)(?: |$)/;

/** Send `send`, judge the status line; the rest of the response is drained, not parsed. */
export const probe: Probe = (target, options, signal) =>
  runProbe(target, options, signal, async (session) => {
    await session.connect();
    session.write(options.send || DEFAULT_SEND);
    const line = await session.readLine('status line');
    const code = STATUS_LINE.exec(line)?.[1];
    if (!code) return { status: 'L7_BAD_RESPONSE', detail: `expected HTTP status line, got ${quote(line)}`, polite: false };
    const expect = options.expect.length > 0 ? options.expect : DEFAULT_EXPECT;
    const klass = `${code[0]}xx`;
    if (expect.some((e) => e.toLowerCase() === klass || e === code)) return { status: 'L7_OK', detail: `HTTP ${code}` };
    return { status: 'L7_BAD_STATUS', detail: `HTTP ${code} not in ${expect.join(',')}` };
  });
