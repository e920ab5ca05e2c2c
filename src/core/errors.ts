/**
 * Coded errors. Callers branch on `err.code`, never on message text.
 * Codes are `LB_ERR_<AREA>_<WHAT>`.
 */
export class LbError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LbError';
  }
}

/* config */
export const ERR_CONFIG_INVALID = 'LB_ERR_CONFIG_INVALID';
export const ERR_CONFIG_READ = 'LB_ERR_CONFIG_READ';
/* listeners */
export const ERR_LISTEN = 'LB_ERR_LISTEN';
/* backends */
export const ERR_CONNECT_TIMEOUT = 'LB_ERR_CONNECT_TIMEOUT';
export const ERR_NO_BACKEND = 'LB_ERR_NO_BACKEND';
/* cli */
export const ERR_USAGE = 'LB_ERR_USAGE';
