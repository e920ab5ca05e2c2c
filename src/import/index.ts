/**
 * `tcplb-console import-nginx FILE`: an nginx config with a `tcp {}`
 * (nginx_tcp_proxy_module) or `stream {}` block -> a commented tcplb
 * `config.json5`. Directive-level mapping lives in ./nginx-translate.ts;
 * here the document is assembled (listener names, port clashes, header) and
 * written as JSON5, then checked with the project's own loader.
 */
import type { ListenerConfig } from '../core/config.js';
import { canonicalHost, parseAddress } from '../config/address.js';
import { loadConfigText } from '../config/load.js';
import { formatIssue } from '../core/config.js';
import { formatHostPort } from '../core/types.js';
import { asWritten, loadNginxTree, type Directive, type IncludeInfo } from './nginx-parse.js';
import {
  Notes, PROCESS, arr, at, listenerObj, obj, reasonFor, setting, translateAcl, translateTls, translateUpstream, uniqueName,
  type Draft, type Flavor, type J, type JEntry, type JObj, type Settings,
} from './nginx-translate.js';

import { ImportError } from '../core/errors.js';

/** What `importNginx` returns: the config text and one warning per directive it could not translate. */
export interface ImportResult {
  /** The commented `config.json5`, ending in a newline; it passes `loadConfigText`. */
  readonly json5: string;
  /** `file:line: not translated: <directive> -- <reason>`, in source order. */
  readonly warnings: string[];
}

/** Why a TLS directive with no `listen … ssl` to serve is left out. */
const NO_SSL_LISTEN = 'tcplb is L4 and does not terminate TLS on a listen without ssl (nginx does none there either)';

const wild = (host: string): boolean => host === '' || host === '0.0.0.0' || host === '::';

interface Doc { root: JObj; header: string[]; flavors: Set<Flavor>; notes: Notes }

/** Translate one `server { listen ...; proxy_pass ...; }` into drafts (or a comment when it has no usable listener). */
function translateServer(srv: Directive, flavor: Flavor, base: Settings, upstream: (pass: Directive | undefined) => string | { fail: string }, n: Notes): Array<Draft | JEntry> {
  const s: Settings = { ...base, idle: { ...base.idle }, aclOwn: false, certsOwn: false, keysOwn: false };
  const above: string[] = [];
  const listens: Directive[] = [];
  let pass: Directive | undefined;
  for (const c of srv.block ?? []) {
    if (setting(c, s, flavor, n, above)) continue;
    if (c.name === 'listen' && c.args.length > 0) listens.push(c);
    else if (c.name === 'proxy_pass' && pass === undefined) pass = c;
    else above.push(n.skip(c, c.name === 'proxy_pass' ? 'a second proxy_pass' : reasonFor(c.name)));
  }
  const origin = `from ${flavor} { server { … } } at ${at(srv)}`;
  if (listens.length === 0) return [{ above: [origin, n.skip(srv, 'no listen directive', `server { ${pass ? asWritten(pass) : ''} … }`), ...above] }];
  const target = upstream(pass);
  if (typeof target !== 'string') return [{ above: [origin, target.fail, ...above] }];
  const drafts: Draft[] = [];
  for (const l of listens) {
    const [addr = '', ...params] = l.args;
    if (params.includes('udp')) {
      above.push(n.skip(l, 'UDP: tcplb proxies TCP only'));
      continue;
    }
    const r = /^\d+$/.test(addr) ? parseAddress(Number(addr), true) : parseAddress(addr, true);
    if (!r.ok || addr.startsWith('unix:')) {
      above.push(n.skip(l, addr.startsWith('unix:') ? 'tcplb listens on TCP ports only' : /\d-\d+$/.test(addr) ? 'port ranges: write one listener per port' : r.ok ? '' : r.reason));
      continue;
    }
    const host = canonicalHost(r.host);
    const notes: string[] = [];
    const tls = params.includes('ssl') ? translateTls(l, s, n, notes) : undefined;
    notes.push(...params.filter((p) => p !== 'ssl').map((p) => n.skip(l, p === 'proxy_protocol' ? 'tcplb does not accept PROXY headers from clients' : p.startsWith('so_keepalive') ? reasonFor('so_keepalive') : 'no tcplb listen option', `${p} (in "${asWritten(l)}")`)));
    drafts.push({ flavor, host, port: r.port, listen: host === '' ? r.port : formatHostPort(host, r.port), d: l, upstream: target, above: notes, s, ...(tls === undefined ? {} : { tls }) });
  }
  // The server's own TLS directives with no `listen … ssl` to use them: nginx does no TLS here either.
  if (!listens.some((l) => l.args.slice(1).includes('ssl'))) {
    for (const d of [...(s.certsOwn ? s.certs! : []), ...(s.keysOwn ? s.keys! : []), ...(s.protocols !== base.protocols ? [s.protocols!] : [])]) {
      above.push(n.skip(d, NO_SSL_LISTEN));
    }
  }
  const acl = s.acl && s.acl.length > 0 && drafts.length > 0 ? translateAcl(s.acl, n) : undefined;
  for (const d of drafts) d.acl = acl;
  if (drafts.length === 0) return [{ above: [origin, ...above] }];
  drafts[0]!.above.unshift(...above);
  return drafts;
}

/** Translate a whole (include-expanded) nginx tree. */
function translateTree(tree: Directive[], file: string): Doc {
  const n = new Notes();
  const header: string[] = [];
  const rootNotes: JEntry[] = [];
  const upNames = new Set<string>();
  const ups: JEntry[] = [];
  const usable = new Set<string>();
  const items: Array<Draft | JEntry> = [];
  const flavors = new Set<Flavor>();
  for (const d of tree) {
    if ((d.name === 'tcp' || d.name === 'stream') && d.block !== undefined) flavors.add(d.name);
    else if (PROCESS.has(d.name)) header.push(`  ${asWritten(d)} (${at(d)})`);
    else rootNotes.push({ above: [n.skip(d, d.name === 'mail' ? 'a mail proxy with authentication, not plain TCP' : 'not inside a tcp {} or stream {} block')] });
  }
  if (header.length > 0) header.unshift('Left out: nginx process settings that tcplb has no use for:');
  const synthesized = new Map<string, string>();
  for (const block of tree) {
    if (!((block.name === 'tcp' || block.name === 'stream') && block.block !== undefined)) continue;
    const flavor: Flavor = block.name;
    const names = new Map<string, string>();
    const base: Settings = { idle: {}, aclOwn: false };
    const servers: Directive[] = [];
    for (const c of block.block!) {
      if (c.name === 'upstream' && c.block !== undefined && c.args.length === 1 && !names.has(c.args[0]!.toLowerCase())) {
        const u = translateUpstream(c, uniqueName(c.args[0]!, upNames), flavor, n);
        names.set(c.args[0]!.toLowerCase(), u.name);
        ups.push(u.entry);
        if (u.ok) usable.add(u.name);
      } else if (c.name === 'server' && c.block !== undefined) servers.push(c);
      else if (!setting(c, base, flavor, n, [])) items.push({ above: [n.skip(c, c.name === 'upstream' ? 'a duplicate or malformed upstream' : reasonFor(c.name))] });
    }
    const upstream = (pass: Directive | undefined): string | { fail: string } => {
      const v = pass?.args[0] ?? '';
      const fail = (why: string): { fail: string } => ({ fail: n.skip(pass!, why) });
      if (pass === undefined) return { fail: `no proxy_pass: nothing to forward to` };
      if (pass.args.length !== 1 || v.includes('$')) return fail('tcplb needs one fixed upstream or address (no variables)');
      const named = names.get(v.toLowerCase());
      if (named !== undefined) return usable.has(named) ? named : fail(`upstream "${v}" could not be translated`);
      const a = parseAddress(flavor === 'tcp' && /^[^:[\]]+$/.test(v) ? `${v}:80` : v, false);
      if (!a.ok) return fail(/^[\w.-]+$/.test(v) ? `no upstream named "${v}"` : a.reason);
      const address = formatHostPort(canonicalHost(a.host), a.port);
      let name = synthesized.get(address);
      if (name === undefined) {
        name = uniqueName(a.host.includes(':') ? `ip6-${a.host.replace(/:/g, '_')}-${a.port}` : `${a.host}-${a.port}`, upNames);
        synthesized.set(address, name);
        usable.add(name);
        ups.push({ key: name, value: obj([{ key: 'servers', value: arr([{ value: address }]) }]), above: [`from proxy_pass ${v}; at ${at(pass)}: an address, not an upstream: one server`] });
      }
      return name;
    };
    const before = items.length;
    for (const srv of servers) items.push(...translateServer(srv, flavor, base, upstream, n));
    // Block-level TLS directives no `listen … ssl` of the block used.
    if (!items.slice(before).some((x) => 'd' in x && x.tls !== undefined)) {
      for (const d of [...(base.certs ?? []), ...(base.keys ?? []), ...(base.protocols ? [base.protocols] : [])]) items.push({ above: [n.skip(d, NO_SSL_LISTEN)] });
    }
    // Block-level timeouts and rules were applied to each server; their comments sit on the listeners.
  }
  // Port clashes: tcplb binds each port once per host, and all-interfaces covers IPv4 and IPv6.
  const byPort = new Map<number, Draft[]>();
  const final: Array<Draft | JEntry> = [];
  for (const it of items) {
    if (!('d' in it)) {
      final.push(it);
      continue;
    }
    const same = byPort.get(it.port) ?? [];
    const clash = same.find((o) => o.host === it.host || wild(o.host) || wild(it.host));
    if (clash === undefined) {
      byPort.set(it.port, [...same, it]);
      final.push(it);
    } else if (clash.upstream === it.upstream && wild(clash.host)) {
      if (wild(it.host) && clash.host !== it.host) [clash.host, clash.listen] = ['', it.port];
      final.push({ above: [`${asWritten(it.d)} (${at(it.d)}) is covered by the listener on port ${it.port}: on all interfaces tcplb takes IPv4 and IPv6`, ...it.above] });
    } else {
      final.push({ above: [n.skip(it.d, `port ${it.port} is already taken by ${asWritten(clash.d)} (${at(clash.d)})`), ...it.above] });
    }
  }
  const drafts = final.filter((x): x is Draft => 'd' in x);
  if (flavors.size === 0) throw new ImportError(file, 0, 'nothing to translate: no tcp {} or stream {} block (at the top level or in a file it includes)');
  if (drafts.length === 0) throw new ImportError(file, 0, `nothing to translate: no tcp {} or stream {} server with a TCP listen and a usable upstream${n.warnings.length ? ` (${n.warnings.join('; ')})` : ''}`);
  const perUpstream = new Map<string, number>();
  for (const d of drafts) perUpstream.set(d.upstream, (perUpstream.get(d.upstream) ?? 0) + 1);
  const taken = new Set<string>();
  const listeners = final.map((x): JEntry => {
    if (!('d' in x)) return x;
    const name = uniqueName(perUpstream.get(x.upstream) === 1 ? x.upstream : `${x.upstream}-${x.port}`, taken);
    return { value: listenerObj(x, name), above: [`from ${x.flavor} { server { ${asWritten(x.d)} } } at ${at(x.d)}`, ...x.above] };
  });
  const defaults: string[] = [];
  if (drafts.some((d) => d.s.connect === undefined)) defaults.push('connectTimeout: tcplb\'s 5s where nginx sets none (nginx\'s default is 60s)');
  if (drafts.some((d) => d.flavor === 'tcp' && Object.keys(d.s.idle).length === 0)) {
    defaults.push('idleTimeout: tcplb\'s 10m where nginx sets none (nginx_tcp_proxy_module closes a connection after 60s without data: add idleTimeout: "60s" to keep that)');
  }
  if (drafts.some((d) => d.flavor === 'stream' && Object.keys(d.s.idle).length === 0)) defaults.push('idleTimeout: 10m where nginx sets none, as nginx\'s proxy_timeout');
  if (defaults.length > 0) header.push('Timeouts nginx leaves at its defaults:', ...defaults.map((x) => `  ${x}`));
  const root = obj([...rootNotes, { key: 'listeners', value: arr(listeners) }, { key: 'upstreams', value: obj(ups) }]);
  return { root, header, flavors, notes: n };
}

const KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const comment = (s: string): string => s.replace(/[\r\n\u2028\u2029]/g, ' ');
const hasComments = (v: J | undefined): boolean => typeof v === 'object' && (v.kind === 'obj' ? v.entries : v.items).some((e) => e.value === undefined || (e.above?.length ?? 0) > 0 || e.after !== undefined || hasComments(e.value));

/** Write a node as JSON5: unquoted keys where possible, 2-space indent, short comment-free nodes on one line. */
function emit(v: J, indent: string): string {
  if (typeof v !== 'object') return typeof v === 'string' ? JSON.stringify(v) : String(v);
  const isObj = v.kind === 'obj';
  const entries = isObj ? v.entries : v.items;
  const keyOf = (e: JEntry): string => (isObj ? `${KEY.test(e.key!) ? e.key : JSON.stringify(e.key)}: ` : '');
  if (!hasComments(v)) {
    const parts = entries.map((e) => `${keyOf(e)}${emit(e.value!, indent)}`);
    const line = isObj ? (parts.length ? `{ ${parts.join(', ')} }` : '{}') : `[${parts.join(', ')}]`;
    if (indent.length + line.length <= 110 && !line.includes('\n')) return line;
  }
  const inner = `${indent}  `;
  const lines = [isObj ? '{' : '['];
  for (const e of entries) {
    for (const c of e.above ?? []) lines.push(`${inner}// ${comment(c)}`);
    if (e.value !== undefined) lines.push(`${inner}${keyOf(e)}${emit(e.value, inner)},${e.after ? `  // ${comment(e.after)}` : ''}`);
  }
  lines.push(`${indent}${isObj ? '}' : ']'}`);
  return lines.join('\n');
}

function headerLines(file: string, doc: Doc, includes: readonly IncludeInfo[], now: Date): string[] {
  const what = [...doc.flavors].map((f) => (f === 'tcp' ? 'the tcp {} block (nginx_tcp_proxy_module)' : 'the stream {} block (nginx)')).join(' and ');
  const lines = [
    `tcplb configuration imported from ${file} on ${now.toISOString().slice(0, 10)} by \`tcplb-console import-nginx\`.`,
    `Translated from ${what}. Review it, then validate it with \`tcplb-console --check -c config.json5\`.`,
  ];
  if (includes.length > 0) {
    lines.push("Includes were read relative to the including file's folder (nginx resolves relative includes against its prefix/conf directory,");
    lines.push('which is the same when nginx.conf lives there; if not, fix the include paths and import again):');
    for (const i of includes) lines.push(`  include ${i.pattern} (${i.at}) -> ${i.files.length ? i.files.join(', ') : 'no file matched'}`);
  }
  lines.push(...doc.header);
  const k = doc.notes.warnings.length;
  lines.push(k === 0 ? 'Every directive was translated or is noted above.' : `${k} directive${k === 1 ? '' : 's'} could not be translated: search for "not translated" below.`);
  return lines.map((l) => `// ${comment(l)}`.trimEnd());
}

/** Ports where mail and web clients expect TLS from the first byte, and where they upgrade with STARTTLS. */
const IMPLICIT_TLS_PORTS = new Map([[993, 'IMAPS'], [995, 'POP3S'], [465, 'SMTPS'], [443, 'HTTPS']]);
const STARTTLS_PORTS = new Map([[143, 'imap'], [110, 'pop3'], [587, 'smtp'], [25, 'smtp']]);

/**
 * The tutorial's workaround (a certificate for the balancer's name on every
 * backend, a wildcard bought for each) is what a relayed TLS port needs;
 * tcplb can hold the certificate instead. Said once, for the listeners on
 * the well-known TLS and STARTTLS ports that relay TLS as nginx did.
 */
function certificateNote(listeners: readonly ListenerConfig[]): string[] {
  const relayed = listeners.filter((l) => l.tls === undefined && (IMPLICIT_TLS_PORTS.has(l.listen.port) || STARTTLS_PORTS.has(l.listen.port)));
  if (relayed.length === 0) return [];
  const names = relayed.map((l) => `${l.name} (${l.listen.port})`).join(', ');
  return [
    `Certificates: ${names} relay TLS untouched, as nginx did, so every backend must present a certificate for the`,
    "balancer's name (the tutorial's wildcard-certificate workaround). That is no longer needed: tcplb can hold the",
    'certificate itself, with `tls: { certificates: [{ cert, key }] }` on the implicit-TLS ports (993, 995, 465, 443)',
    'and `starttls: "imap" | "pop3" | "smtp"` plus `tls` on 143, 110 and 587; see docs/tls.md.',
  ].map((l) => `// ${comment(l)}`.trimEnd());
}

/**
 * Import an nginx config: read `file` (following `include`s), translate its
 * `tcp {}` / `stream {}` block into a commented tcplb config.
 *
 * @param file path of the nginx config (errors and warnings show it as given).
 * @param options `now` fixes the date in the header (tests).
 * @returns the JSON5 text (valid for `loadConfigText`) and one warning per
 *   directive that could not be translated (each also a `// not translated:`
 *   comment in the text).
 * @throws ImportError (`file:line: message`) for unreadable files, nginx
 *   syntax errors, bad or missing includes, or nothing translatable.
 */
export async function importNginx(file: string, options: { now?: Date } = {}): Promise<ImportResult> {
  const { tree, includes } = await loadNginxTree(file);
  const doc = translateTree(tree, file);
  const head = headerLines(file, doc, includes, options.now ?? new Date());
  const body = `${emit(doc.root, '')}\n`;
  const check = loadConfigText(`${head.join('\n')}\n${body}`, '');
  const json5 = `${[...head, ...certificateNote(check.ok ? check.config.listeners : [])].join('\n')}\n${body}`;
  // Certificate files are read at load: they live on the balancer, maybe not on the machine importing.
  const ours = check.ok ? [] : check.issues.filter((i) => !/^listeners\[\d+\]\.tls\.certificates\[\d+\]\.(cert|key): /.test(i.message));
  if (!check.ok && ours.length > 0) {
    // A bug of ours, not of the input: say so rather than print a config that does not load.
    throw new Error(`import-nginx produced a config that does not validate (please report):\n${ours.map(formatIssue).join('\n')}\n${json5}`);
  }
  return { json5, warnings: doc.notes.warnings };
}
