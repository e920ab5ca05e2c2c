/**
 * The keepalived configuration of a tcplb pair, from one template: the fleet
 * test (keepalived.test.ts) runs exactly what this renders, and
 * docs/high-availability.md quotes it rendered with DOC_EXAMPLE (a unit test,
 * test/unit/docs/high-availability.test.ts, fails when the two drift).
 *
 * Choices, measured on keepalived 2.2.7 (Debian 12), see the doc:
 * - VRRPv3 (`vrrp_version 3`): v2 rounds `advert_int 0.1` up to 1 s.
 * - unicast to the peer: no multicast needed on the segment.
 * - both BACKUP with `nopreempt`: the address stays where it is when the old
 *   master comes back, so a recovered node never steals it (one move, not two).
 * - a track script without weight: a failed `tcplb-console health` puts the
 *   instance in FAULT, which drops the address and advertises priority 0,
 *   so the peer takes over at once instead of after the master-down timer.
 * - `interval 1`: Debian's keepalived refuses fractions ("invalid number
 *   '0.2'") and falls back to 1 s, its minimum. `fall 1` keeps detection
 *   within one interval; `rise 2` keeps a flapping instance out. `timeout 3`
 *   outlasts health's own 2 s deadline, so a wedged tcplb is reported by
 *   health (exit 1, with its reason), not cut off by keepalived.
 * - scripts as root with `enable_script_security`: keepalived refuses to run
 *   a script any part of whose path a non-root user can write.
 */
export interface VrrpNode {
  /** router_id, for the logs. */
  name: string;
  /** The interface carrying the service address. */
  iface: string;
  /** This node's own address (unicast_src_ip) and its peer's. */
  self: string;
  peer: string;
  /** The service address with its prefix length, e.g. `10.0.0.10/24`. */
  vip: string;
  vrid: number;
  priority: number;
  /** The readiness command: `node …/main.js health --socket …`. */
  health: string;
}

/** The track script's timing: detection of a failed instance takes up to interval × fall (+ the script's run). */
export const SCRIPT = { interval: 1, timeout: 3, fall: 1, rise: 2 } as const;
/** Seconds between adverts; the backup declares the master down after 3 × this (+ skew). */
export const ADVERT_INT = 0.1;

export function keepalivedConf(n: VrrpNode): string {
  return `global_defs {
    router_id ${n.name}
    vrrp_version 3
    script_user root
    enable_script_security
}

vrrp_script tcplb_health {
    script "${n.health}"
    interval ${SCRIPT.interval}
    timeout ${SCRIPT.timeout}
    fall ${SCRIPT.fall}
    rise ${SCRIPT.rise}
}

vrrp_instance tcplb {
    state BACKUP
    nopreempt
    interface ${n.iface}
    virtual_router_id ${n.vrid}
    priority ${n.priority}
    advert_int ${ADVERT_INT}
    unicast_src_ip ${n.self}
    unicast_peer {
        ${n.peer}
    }
    virtual_ipaddress {
        ${n.vip} dev ${n.iface}
    }
    track_script {
        tcplb_health
    }
}
`;
}

/** What docs/high-availability.md shows (lb1 of the pair; lb2 swaps self and peer). */
export const DOC_EXAMPLE: VrrpNode = {
  name: 'lb1',
  iface: 'eth0',
  self: '10.0.0.11',
  peer: '10.0.0.12',
  vip: '10.0.0.10/24',
  vrid: 51,
  priority: 100,
  health: '/usr/bin/node /opt/tcplb/dist/src/cli/main.js health --socket /run/tcplb/tcplb.sock',
};
