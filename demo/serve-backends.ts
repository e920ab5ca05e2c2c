/**
 * Start only the demo backends (no balancer), for trying the top-level
 * config.json5 by hand: `npm run demo:backends`, then in another terminal
 * `npx tcplb-console --headless -c config.json5`.
 */
import { DEMO_BACKENDS, startDemoBackends } from '../src/demo/backends.js';

const b = await startDemoBackends();
process.stdout.write(
  'demo backends running:\n' + DEMO_BACKENDS.map((s) => `  ${s.name.padEnd(7)} ${s.host}:${s.port}`).join('\n') + '\nCtrl-C stops them.\n',
);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => void b.stop().then(() => process.exit(0)));
}
