/**
 * Check type name (config `check.type`) -> probe implementation, as gobetween's
 * healthcheck registry does.
 */
import type { CheckType } from '../core/types.js';
import type { Probe } from './types.js';
import { probe as http } from './probes/http.js';
import { probe as imap } from './probes/imap.js';
import { probe as mysql } from './probes/mysql.js';
import { probe as pop3 } from './probes/pop3.js';
import { probe as smtp } from './probes/smtp.js';
import { probe as sslHello } from './probes/ssl-hello.js';
import { probe as tcp } from './probes/tcp.js';

/** Every check type's probe. Frozen: the table is code, not state. */
export const PROBES: Readonly<Record<CheckType, Probe>> = Object.freeze({
  tcp,
  ssl_hello: sslHello,
  http,
  smtp,
  mysql,
  pop3,
  imap,
});

/** The probe for a configured check type. */
export function probeFor(type: CheckType): Probe {
  return PROBES[type];
}
