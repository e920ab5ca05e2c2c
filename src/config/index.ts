/**
 * Public API of the config loader. Import from here (or the named modules).
 */
export { loadConfigText, loadConfigFile } from './load.js';
export { parseDuration, formatDuration } from './duration.js';
export { parseHostPort, formatListen } from './address.js';
export type { HostPort } from './address.js';
export { summarize } from './summary.js';
export { formatIssue } from '../core/config.js';
export type { Config, ConfigIssue, LoadResult, ListenerConfig, ServerConfig, CheckConfig, UpstreamConfig, LogConfig, ListenAddress } from '../core/config.js';
