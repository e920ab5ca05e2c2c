/**
 * Listener access control: `allow` / `deny` lists of addresses and CIDRs,
 * compiled once per config into a predicate the accept path calls per
 * connection.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Decides whether a client address may connect. Never throws. */
export type AclCheck = (ip: string) => boolean;

const allowAll: AclCheck = () => true;

/** `::ffff:a.b.c.d` (IPv4 client on a dual-stack socket) → `a.b.c.d`; anything else unchanged. */
function unmapV4(ip: string): string {
  if (ip.length > 7 && ip.includes('.') && ip.slice(0, 7).toLowerCase() === '::ffff:') {
    const v4 = ip.slice(7);
    if (isIPv4(v4)) return v4;
  }
  return ip;
}

/**
 * Add one rule to `list`. Returns false (and adds nothing) for anything that
 * does not parse: the config loader already reported it, and one bad entry
 * must not take the listener down.
 */
function addRule(list: BlockList, entry: string): boolean {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const addr = unmapV4(slash === -1 ? text : text.slice(0, slash));
  let family: 'ipv4' | 'ipv6';
  if (isIPv4(addr)) family = 'ipv4';
  else if (isIPv6(addr)) family = 'ipv6';
  else return false;
  try {
    if (slash === -1) {
      list.addAddress(addr, family);
      return true;
    }
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return false;
    let prefix = Number(prefixText);
    // A v4-mapped CIDR (`::ffff:10.0.0.0/104`) was unmapped above, so its
    // prefix is re-based onto the 32-bit address.
    if (family === 'ipv4' && addr !== text.slice(0, slash)) prefix -= 96;
    if (prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return false;
    list.addSubnet(addr, prefix, family);
    return true;
  } catch {
    // BlockList rejects what isIP accepted only in corner cases (zone ids);
    // ignoring them keeps the promise that compiling never throws.
    return false;
  }
}

/** A BlockList of the parsable entries, or undefined when none parsed. */
function compileList(entries: readonly string[]): BlockList | undefined {
  const list = new BlockList();
  let any = false;
  for (const entry of entries) {
    if (typeof entry === 'string' && addRule(list, entry)) any = true;
  }
  return any ? list : undefined;
}

/**
 * Compile `allow` and `deny` into a predicate over client addresses as Node
 * reports them (`10.0.0.5`, `::1`, `::ffff:10.0.0.5`).
 *
 * Semantics, in order:
 * 1. an address matching `deny` is refused (deny wins over allow);
 * 2. an empty `allow` list admits everyone not denied;
 * 3. otherwise only addresses matching `allow` are admitted.
 *
 * Entries are single addresses or CIDRs, IPv4 or IPv6; `::ffff:a.b.c.d`
 * clients are matched against IPv4 rules (and v4-mapped rules against IPv4
 * clients). Unparsable entries are ignored rather than thrown: validation is
 * the config loader's job. When a rule exists but the client address itself
 * does not parse, the answer is "refuse" (fail closed). With both lists empty
 * the result is a constant function, so the common case costs one call.
 */
export function compileAcl(allow: readonly string[], deny: readonly string[]): AclCheck {
  // An allow list whose every entry was unparsable is still an allow list:
  // treating it as empty would silently open the listener to everyone.
  const allowGiven = allow.length > 0;
  const allowList = compileList(allow);
  const denyList = compileList(deny);
  if (!allowGiven && denyList === undefined) return allowAll;

  return (ip: string): boolean => {
    if (typeof ip !== 'string') return false;
    const addr = unmapV4(ip);
    const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
    if (family === undefined) return false;
    if (denyList !== undefined && denyList.check(addr, family)) return false;
    if (!allowGiven) return true;
    return allowList !== undefined && allowList.check(addr, family);
  };
}
