// The attached console's data source alone, without its rendering: what an
// attached console costs tcplb (a watch connection, two snapshots a second,
// events), with none of the console's own CPU. Used by attach-overhead.sh
// (KIND=source). Prints `attached to pid N`, then runs until SIGTERM/SIGINT.
// Usage: node bench/watch-source.mjs SOCKET
import { attachRemote } from '../dist/src/control/remote.js';

const src = await attachRemote(process.argv[2], { intervalMs: 500 });
console.log(`attached to pid ${src.attachment.link().pid}`);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => src.attachment.close());
