/**
 * The instances one console or one `ctl` steers, from the command line
 * (`attach A B`, `ctl --socket A --socket B`) or a small JSON5 file
 * (`--fleet fleet.json5`):
 *
 *     { fleet: [
 *         "ssh://lb1.example.net",                        // name: lb1.example.net
 *         { name: "lb2", target: "ssh://admin@lb2:2222/run/tcplb/tcplb.sock" },
 *         { name: "here", target: "/run/tcplb/tcplb.sock" },
 *     ] }
 *
 * Every problem is an Error naming the file, the entry and what is wrong.
 */
import JSON5 from 'json5';
import { readRegularFile } from '../core/read-regular.js';
import { parseTarget, type Target } from './target.js';

/** A fleet file is a short list: anything bigger is not one. */
const MAX_FLEET_BYTES = 64 * 1024;
/** More instances than this do not fit a console's columns, and a fan-out that wide wants real orchestration. */
export const MAX_FLEET = 16;

/** Targets from command-line words (paths or ssh:// addresses); names made unique. */
export function targetsFrom(words: readonly string[], where = 'command line'): Target[] {
  return uniqueNames(
    words.map((w, i) => {
      const t = parseTarget(w);
      if (typeof t === 'string') throw new Error(`${where}: instance ${i + 1}: ${t}`);
      return t;
    }),
  );
}

/** Read and check a fleet file. */
export async function loadFleetFile(file: string): Promise<Target[]> {
  let text: string;
  try {
    const r = await readRegularFile(file, MAX_FLEET_BYTES);
    if ('notRegular' in r) throw new Error(`${file}: cannot read the fleet file: not a regular file (it is ${r.notRegular})`);
    if ('tooLarge' in r) throw new Error(`${file}: ${r.tooLarge ?? 'more than ' + MAX_FLEET_BYTES} bytes; a fleet file holds at most ${MAX_FLEET_BYTES}`);
    text = r.text;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === undefined) throw err;
    throw new Error(`${file}: cannot read the fleet file: ${err.code}`);
  }
  let doc: unknown;
  try {
    doc = JSON5.parse(text);
  } catch (e) {
    const j = e as Error & { lineNumber?: number; columnNumber?: number };
    const at = j.lineNumber === undefined ? '' : `:${j.lineNumber}:${j.columnNumber ?? 1}`;
    throw new Error(`${file}${at}: ${j.message.replace(/^JSON5: /, '')}`);
  }
  const list = (doc as { fleet?: unknown } | null)?.fleet;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !Array.isArray(list)) {
    throw new Error(`${file}: expected { fleet: [ "ssh://host", { name, target }, ... ] }`);
  }
  const extra = Object.keys(doc).filter((k) => k !== 'fleet');
  if (extra.length > 0) throw new Error(`${file}: unknown key "${extra[0]}" (only "fleet")`);
  if (list.length === 0) throw new Error(`${file}: fleet lists no instance`);
  if (list.length > MAX_FLEET) throw new Error(`${file}: fleet lists ${list.length} instances; at most ${MAX_FLEET}`);
  const targets = list.map((entry: unknown, i): Target => {
    const at = `${file}: fleet[${i}]`;
    if (typeof entry === 'string') {
      const t = parseTarget(entry);
      if (typeof t === 'string') throw new Error(`${at}: ${t}`);
      return t;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${at}: expected an address string or { name, target }`);
    const { name, target, ...more } = entry as Record<string, unknown>;
    const unknown = Object.keys(more)[0];
    if (unknown !== undefined) throw new Error(`${at}: unknown key "${unknown}" (name, target)`);
    if (typeof target !== 'string') throw new Error(`${at}: "target" must be a socket path or ssh:// address`);
    if (name !== undefined && (typeof name !== 'string' || !/^[\w.@:-]{1,32}$/.test(name))) {
      throw new Error(`${at}: "name" must be 1-32 letters, digits or . _ - @ :`);
    }
    const t = parseTarget(target, name as string | undefined);
    if (typeof t === 'string') throw new Error(`${at}: ${t}`);
    return t;
  });
  const seen = new Map<string, number>();
  targets.forEach((t, i) => {
    const before = seen.get(t.label);
    if (before !== undefined) throw new Error(`${file}: fleet[${i}] repeats fleet[${before}] (${t.label})`);
    seen.set(t.label, i);
  });
  return uniqueNames(targets);
}

/** Two instances with one name (two sockets called tcplb.sock) get `#2`, `#3`. */
function uniqueNames(targets: Target[]): Target[] {
  const count = new Map<string, number>();
  return targets.map((t) => {
    const n = (count.get(t.name) ?? 0) + 1;
    count.set(t.name, n);
    return n === 1 ? t : { ...t, name: `${t.name}#${n}` };
  });
}
