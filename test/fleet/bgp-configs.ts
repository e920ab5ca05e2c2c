/**
 * The BIRD, ExaBGP and tcplb configs of the active/active fleet test
 * (bgp.test.ts), as template functions: the test renders them with the lab's
 * addresses and paths, and docs/high-availability.md quotes them rendered
 * with DOC_SITE (test/unit/docs/high-availability.test.ts checks the page
 * against these functions), so the documented configs are the tested ones.
 */

/** Everything that differs between the lab and the documented example. */
export interface BgpSite {
  /** The service address every instance announces (a /32 on each instance's lo). */
  vip: string;
  /** The router: its address on the segment and its AS. */
  router: { ip: string; as: number };
  /** The balancer instances: name and address; all speak BGP from one AS. */
  instances: readonly { name: string; ip: string }[];
  lbAs: number;
  /** BIRD's log file. */
  birdLog: string;
  /** `tcplb-console health --socket …` of the instance: ExaBGP runs it with `--exabgp` as its announcing process. */
  healthCommand: string;
}

/** The documented example (docs/high-availability.md). */
export const DOC_SITE: BgpSite = {
  vip: '10.96.100.1',
  router: { ip: '10.95.0.1', as: 65000 },
  instances: [
    { name: 'lb1', ip: '10.95.0.3' },
    { name: 'lb2', ip: '10.95.0.4' },
    { name: 'lb3', ip: '10.95.0.5' },
  ],
  lbAs: 65001,
  birdLog: '/var/log/bird.log',
  healthCommand: 'tcplb-console health --socket /run/tcplb/tcplb.sock',
};

/**
 * The router's BIRD: one eBGP session per instance (hold 3 s, keepalive 1 s,
 * so a frozen speaker is dropped in 3 s), routes into the kernel with
 * `merge paths` so the equal routes of all instances become one ECMP route.
 * BIRD is passive: the speakers connect, and a restarted speaker is back at
 * once instead of after BIRD's connect-retry timer.
 */
export function birdConf(s: BgpSite): string {
  const peers = s.instances.map((i) => `protocol bgp ${i.name} from tcplb {\n\tneighbor ${i.ip} as ${s.lbAs};\n}\n`).join('\n');
  return `log "${s.birdLog}" all;
router id ${s.router.ip};

protocol device {
\tscan time 10;
}

# Equal BGP routes from several instances go into the kernel as one
# multipath (ECMP) route.
protocol kernel {
\tipv4 {
\t\timport none;
\t\texport all;
\t};
\tmerge paths on;
}

template bgp tcplb {
\tlocal ${s.router.ip} as ${s.router.as};
\tpassive on;
\thold time 3;
\tkeepalive time 1;
\tipv4 {
\t\timport where net = ${s.vip}/32;
\t\texport none;
\t};
}

${peers}`;
}

/** ExaBGP's environment (`exabgp --env FILE`): root, no CLI pipes under /run, log to stdout. */
export function exabgpEnv(): string {
  return `[exabgp.daemon]
user = 'root'
drop = false

[exabgp.api]
cli = false

[exabgp.log]
destination = 'stdout'
`;
}

/**
 * One instance's ExaBGP: a session to the router and the process that
 * announces the VIP while the instance is ready: `tcplb-console health
 * --exabgp`, which asks tcplb every 200 ms over its control socket (one
 * long-running process, no start-up per check) and prints announce/withdraw
 * as readiness changes.
 */
export function exabgpConf(s: BgpSite, instance: string): string {
  const me = s.instances.find((i) => i.name === instance);
  if (me === undefined) throw new Error(`no instance "${instance}"`);
  return `process tcplb-health {
\trun ${s.healthCommand} --exabgp ${s.vip}/32 --interval 200ms;
\tencoder text;
}

neighbor ${s.router.ip} {
\trouter-id ${me.ip};
\tlocal-address ${me.ip};
\tlocal-as ${s.lbAs};
\tpeer-as ${s.router.as};
\thold-time 3;
\tapi {
\t\tprocesses [ tcplb-health ];
\t}
}
`;
}
