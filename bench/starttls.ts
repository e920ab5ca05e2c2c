/**
 * STARTTLS sessions per second (issue 17): IMAP sessions that upgrade and
 * log out — connect, greeting, `a STARTTLS`, TLS handshake, `b LOGOUT` —
 * straight to a private Dovecot doing its own STARTTLS, against the same
 * sessions through tcplb's `starttls: "imap"` listener, which answers the
 * upgrade itself and upgrades its own leg to Dovecot (two handshakes per
 * session, one each side). Runs are alternated (direct, tcplb, …) so a busy
 * host's drift stays out of the ratio; medians are printed.
 *
 *   node dist/bench/starttls.js [--runs 3] [--secs 5] [--conc 8]
 *
 * Needs root and dovecot (bash .ci/install-deps.sh). Loopback only; stops
 * what it started, by PID.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot } from '../test/fixtures/real/dovecot.js';
import { makePki } from '../test/fixtures/pki.js';
import { median } from './lib/report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOVECOT_HOST = '127.0.0.191';
const LB_HOST = '127.0.0.192';
const LB_PORT = 18143;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, secs: { type: 'string', default: '5' }, conc: { type: 'string', default: '8' } } });
const RUNS = Number(values.runs);
const SECS = Number(values.secs);
const CONC = Number(values.conc);

/** Read until `re` matches what arrived; resolves with it. */
function until(sock: net.Socket | tls.TLSSocket, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      if (re.test(buf)) {
        sock.off('data', onData);
        resolve(buf);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('close', () => reject(new Error(`closed before ${re}: ${JSON.stringify(buf)}`)));
  });
}

/** One IMAP session with STARTTLS; resolves when it logged out. */
async function session(host: string, port: number, ca: string, servername: string): Promise<void> {
  const s = net.connect({ host, port });
  try {
    await until(s, /^\* OK.*\r\n/m);
    s.write('a STARTTLS\r\n');
    await until(s, /^a OK.*\r\n/m);
    s.removeAllListeners('close');
    s.removeAllListeners('error');
    const t = tls.connect({ socket: s, ca, servername });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    t.write('b LOGOUT\r\n');
    await until(t, /^b OK.*\r\n/m);
    t.destroy();
  } finally {
    s.destroy();
  }
}

/** CONC loops of sessions for SECS seconds: completed sessions per second, and failures. */
async function load(host: string, port: number, ca: string, servername: string): Promise<{ rate: number; failed: number }> {
  const end = Date.now() + SECS * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (Date.now() < end) {
        try {
          await session(host, port, ca, servername);
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rate: done / SECS, failed };
}

async function main(): Promise<void> {
  const pki = makePki();
  const front = pki.leaf('front', ['mail.a.test']);
  const back = pki.leaf('back', ['imap.internal']);
  const dovecot = await startDovecot({
    host: DOVECOT_HOST, imapPort: 143, imapsPort: 0, pop3Port: 0,
    cert: { dir: pki.dir, certPath: back.cert, keyPath: back.key, cert: back.pem, key: fs.readFileSync(back.key, 'utf8'), cn: 'imap.internal', dnsNames: ['imap.internal'], cleanup: async () => undefined },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcplb-bench-starttls-'));
  const cfg = path.join(dir, 'config.json5');
  fs.writeFileSync(cfg, `{
    listeners: [{ name: "imap", listen: "${LB_HOST}:${LB_PORT}", upstream: "imap", starttls: "imap",
                  tls: { certificates: [{ cert: "${front.cert}", key: "${front.key}" }] } }],
    upstreams: { imap: { servers: ["${DOVECOT_HOST}:143"], tls: { ca: "${pki.caFile}", servername: "imap.internal" } } },
    log: { access: null },
  }`);
  const lb = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), '--headless', '-c', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  lb.stderr.on('data', (d) => (log += d));
  try {
    for (let i = 0; i < 100 && !/serving/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
    if (!/serving/.test(log)) throw new Error(`tcplb did not start:\n${log}`);
    const ca = fs.readFileSync(pki.caFile, 'utf8');
    const direct: number[] = [];
    const via: number[] = [];
    let failures = 0;
    for (let r = 0; r < RUNS; r++) {
      const d = await load(DOVECOT_HOST, 143, ca, 'imap.internal');
      const v = await load(LB_HOST, LB_PORT, ca, 'mail.a.test');
      direct.push(d.rate);
      via.push(v.rate);
      failures += d.failed + v.failed;
      process.stderr.write(`run ${r + 1}: direct ${d.rate.toFixed(0)}/s, through tcplb ${v.rate.toFixed(0)}/s\n`);
    }
    const md = median(direct);
    const mv = median(via);
    process.stdout.write(
      `IMAP STARTTLS sessions/s (connect, greeting, STARTTLS, handshake, LOGOUT), ${CONC} concurrent, median of ${RUNS} x ${SECS} s:\n` +
        `  direct to Dovecot (its own STARTTLS)   ${md.toFixed(0)}\n` +
        `  through tcplb (two handshakes each)    ${mv.toFixed(0)}\n` +
        `  ratio tcplb/direct                     ${(mv / md).toFixed(2)}x   (failed sessions: ${failures})\n`,
    );
  } finally {
    lb.kill('SIGKILL');
    await dovecot.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench/starttls: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
