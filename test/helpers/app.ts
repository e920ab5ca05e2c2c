/** Start the real app (runtime + JS engine) from JSON5 text, for integration tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, type App } from '../../src/cli/app.js';
import { loadConfigText } from '../../src/config/load.js';
import { formatIssue } from '../../src/core/config.js';
import type { SessionRecord } from '../../src/core/dataplane.js';
import { createLogger } from '../../src/log/logger.js';

export interface TestApp extends App {
  /** Every finished session, in order. */
  readonly records: SessionRecord[];
  /** Operational log lines. */
  readonly lines: string[];
  /** The config file on disk (the text given), for reload tests. */
  readonly file: string;
}

/**
 * Validate `text` (a JSON5 config), write it to a temp config.json5 and start
 * the app on it, logs captured; the access log is off unless `keepAccessLog`.
 */
export async function startTestApp(text: string, opts: { keepAccessLog?: boolean } = {}): Promise<TestApp> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-test-'));
  const file = path.join(dir, 'config.json5');
  fs.writeFileSync(file, text);
  const res = loadConfigText(text, file);
  if (!res.ok) throw new Error('test config invalid:\n' + res.issues.map(formatIssue).join('\n'));
  const lines: string[] = [];
  const config = opts.keepAccessLog ? res.config : { ...res.config, log: { ...res.config.log, access: null } };
  const app = await startApp(config, { logger: createLogger('debug', (l) => lines.push(l)) });
  const records: SessionRecord[] = [];
  app.runtime.bus.on('session', (r) => records.push(r));
  return Object.assign(app, { records, lines, file });
}
