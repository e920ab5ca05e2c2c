/**
 * Demo backends on loopback: an IMAP-like and an SMTP-like greeter and an HTTP
 * server, two replicas each on 127.0.0.2 and 127.0.0.3, so the balancer in
 * front of them (demo/config.json5) has something real to route to.
 * Each replica names itself in its greeting, so you can see where you landed.
 */
import http from 'node:http';
import net from 'node:net';
import type { Config } from '../core/config.js';

export interface DemoBackends {
  banner(config: Config): string;
  stop(): Promise<void>;
}

/** A reply line, or `{ end }` to send a last reply and close. */
type Reply = string | { end: string };

/** A line-based greeter: writes `greeting`, answers each line with `reply(line)`. */
function greeter(greeting: string, reply: (line: string) => Reply): net.Server {
  return net.createServer((sock) => {
    sock.on('error', () => {});
    sock.write(greeting);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length > 8192) return sock.destroy();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        const out = reply(line);
        if (typeof out !== 'string') return sock.end(out.end);
        sock.write(out);
      }
    });
  });
}

function imap(name: string): net.Server {
  return greeter(`* OK [CAPABILITY IMAP4rev1] ${name} ready\r\n`, (line) => {
    const [tag = '*', cmd = ''] = line.split(' ');
    switch (cmd.toUpperCase()) {
      case 'LOGOUT':
        return { end: `* BYE ${name} logging out\r\n${tag} OK LOGOUT completed\r\n` };
      case 'CAPABILITY':
        return `* CAPABILITY IMAP4rev1\r\n${tag} OK CAPABILITY completed\r\n`;
      case 'NOOP':
        return `${tag} OK NOOP completed by ${name}\r\n`;
      default:
        return `${tag} BAD this demo only knows CAPABILITY, NOOP and LOGOUT\r\n`;
    }
  });
}

function smtp(name: string): net.Server {
  return greeter(`220 ${name} ESMTP demo\r\n`, (line) => {
    const cmd = line.slice(0, 4).toUpperCase();
    if (cmd === 'EHLO') return `250-${name} hello\r\n250 8BITMIME\r\n`;
    if (cmd === 'HELO') return `250 ${name} hello\r\n`;
    if (cmd === 'NOOP') return `250 OK\r\n`;
    if (cmd === 'QUIT') return { end: `221 ${name} bye\r\n` };
    return `502 this demo only knows EHLO, HELO, NOOP and QUIT\r\n`;
  });
}

/** Seconds of each minute during which the flaky replica answers 503. */
const FLAKY_FROM = 20;
const FLAKY_TO = 40;

function web(name: string): http.Server {
  // web-2 is the replica that fails now and then: 503 for 20 s of every
  // minute, so a new user sees the checks take it out and bring it back.
  const flaky = name === 'web-2';
  return http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    const sec = new Date().getSeconds();
    if (flaky && sec >= FLAKY_FROM && sec < FLAKY_TO) {
      res.statusCode = 503;
      res.end(`${name} is having a bad moment (503 until :${FLAKY_TO})\n`);
      return;
    }
    res.end(`hello from ${name} (you asked for ${req.url})\n`);
  });
}

interface Spec {
  name: string;
  host: string;
  port: number;
  make: (name: string) => net.Server;
}

export const DEMO_BACKENDS: readonly Spec[] = [
  { name: 'imap-1', host: '127.0.0.2', port: 10143, make: imap },
  { name: 'imap-2', host: '127.0.0.3', port: 10143, make: imap },
  { name: 'smtp-1', host: '127.0.0.2', port: 10587, make: smtp },
  { name: 'smtp-2', host: '127.0.0.3', port: 10587, make: smtp },
  { name: 'web-1', host: '127.0.0.2', port: 18080, make: web },
  { name: 'web-2', host: '127.0.0.3', port: 18080, make: web },
];

export async function startDemoBackends(): Promise<DemoBackends> {
  const servers: net.Server[] = [];
  for (const s of DEMO_BACKENDS) {
    const srv = s.make(s.name);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err) => reject(new Error(`demo backend ${s.name} on ${s.host}:${s.port}: ${err.message}`)));
      srv.listen(s.port, s.host, () => resolve());
    });
    servers.push(srv);
  }
  return {
    banner(config: Config) {
      const lines = ['', 'tcplb demo: 6 backends started on 127.0.0.2 and 127.0.0.3; the balancer listens on:', ''];
      for (const l of config.listeners) {
        const hp = `${l.listen.host || '127.0.0.1'} ${l.listen.port}`;
        const how = l.name === 'web' ? `curl http://${l.listen.host || '127.0.0.1'}:${l.listen.port}/` : `nc ${hp}`;
        lines.push(`  ${l.name.padEnd(6)} ${l.listenText.padEnd(18)} try: ${how}`);
      }
      lines.push('', 'Each reply names the replica that answered. web-2 fails its health check from :20 to :40', 'of every minute; watch it go DOWN and come back UP.', '', '');
      return lines.join('\n');
    },
    async stop() {
      await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); (s as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.(); })));
    },
  };
}
