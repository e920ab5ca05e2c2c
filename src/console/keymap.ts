/**
 * Keys -> commands, one pure function per input mode, and the key list the
 * footer and the help overlay print (one source, so they can't drift).
 */
import type { Key } from 'ink';

/** What a key asks for in the normal (table) mode. */
export type Command =
  | { readonly type: 'move'; readonly delta: number }
  | { readonly type: 'jump'; readonly to: 'first' | 'last' }
  /** Move the bottom panel's view: negative is up (older events, earlier connections). */
  | { readonly type: 'scrollPanel'; readonly delta: number }
  | { readonly type: 'drain' }
  | { readonly type: 'disable' }
  | { readonly type: 'enable' }
  | { readonly type: 'check' }
  | { readonly type: 'kill' }
  | { readonly type: 'reload' }
  | { readonly type: 'standby' }
  | { readonly type: 'panel' }
  | { readonly type: 'sort' }
  | { readonly type: 'filter' }
  | { readonly type: 'help' }
  | { readonly type: 'quit' }
  | { readonly type: 'escape' };

/** The subset of Ink's `Key` the keymaps read (tests build it partially). */
export type KeyLike = Partial<Pick<Key, 'upArrow' | 'downArrow' | 'pageUp' | 'pageDown' | 'home' | 'end' | 'return' | 'escape' | 'ctrl' | 'tab' | 'backspace' | 'delete' | 'meta'>>;

/** Rows a PgUp/PgDn moves the bottom panel. */
export const PAGE = 5;

/** Ctrl-C, however the terminal sent it. */
export function isCtrlC(input: string, key: KeyLike): boolean {
  return (key.ctrl === true && input === 'c') || input === '\u0003';
}

/** Normal mode. Ctrl-C means quit (with the same confirmation as `q`). */
export function normalCommand(input: string, key: KeyLike): Command | undefined {
  if (isCtrlC(input, key)) return { type: 'quit' };
  if (key.upArrow) return { type: 'move', delta: -1 };
  if (key.downArrow) return { type: 'move', delta: 1 };
  if (key.pageUp) return { type: 'scrollPanel', delta: -PAGE };
  if (key.pageDown) return { type: 'scrollPanel', delta: PAGE };
  if (key.home) return { type: 'jump', to: 'first' };
  if (key.end) return { type: 'jump', to: 'last' };
  if (key.tab) return { type: 'panel' };
  if (key.escape) return { type: 'escape' };
  if (key.ctrl || key.meta) return undefined;
  switch (input) {
    case 'k':
      return { type: 'move', delta: -1 };
    case 'j':
      return { type: 'move', delta: 1 };
    case 'g':
      return { type: 'jump', to: 'first' };
    case 'G':
      return { type: 'jump', to: 'last' };
    case 'd':
      return { type: 'drain' };
    case 'x':
      return { type: 'disable' };
    case 'e':
      return { type: 'enable' };
    case 'c':
      return { type: 'check' };
    case 'K':
      return { type: 'kill' };
    case 'r':
      return { type: 'reload' };
    case 'S':
      return { type: 'standby' };
    case 's':
      return { type: 'sort' };
    case '/':
      return { type: 'filter' };
    case '?':
      return { type: 'help' };
    case 'q':
      return { type: 'quit' };
    default:
      return undefined;
  }
}

/** Confirmation prompts are `y/N`: only `y` (or `Y`) confirms; Enter, Esc, Ctrl-C and everything else cancel. */
export function confirmAnswer(input: string, key: KeyLike): 'yes' | 'no' {
  if (key.ctrl || key.meta) return 'no';
  return input === 'y' || input === 'Y' ? 'yes' : 'no';
}

/** What a key does while typing a filter. */
export type FilterCommand =
  | { readonly type: 'apply' }
  | { readonly type: 'clear' }
  | { readonly type: 'backspace' }
  | { readonly type: 'type'; readonly text: string }
  | { readonly type: 'quit' };

/** Filter mode: Enter applies, Esc clears, Backspace deletes, printable text is typed. */
export function filterCommand(input: string, key: KeyLike): FilterCommand | undefined {
  if (isCtrlC(input, key)) return { type: 'quit' };
  if (key.return) return { type: 'apply' };
  if (key.escape) return { type: 'clear' };
  if (key.backspace || key.delete) return { type: 'backspace' };
  if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow) return undefined;
  const text = input.replace(/[\u0000-\u001f\u007f]/g, '');
  return text === '' ? undefined : { type: 'type', text };
}

/** One key as Ink's `useInput` passes it: its text and its flags. */
export interface KeyPress {
  readonly input: string;
  readonly key: KeyLike;
}

const FLAGS = ['upArrow', 'downArrow', 'pageUp', 'pageDown', 'home', 'end', 'return', 'escape', 'ctrl', 'tab', 'backspace', 'delete', 'meta'] as const;

/**
 * Whether Ink's `(input, key)` is one key. Ink passes the keys that arrived
 * in one read (typed ahead over a slow ssh link, `tmux send-keys -l`) as one
 * `input` string with no key flag. It already hands over each escape sequence
 * (arrows, PgUp…, Esc, Alt-x) as its own event, so only a plain run of
 * characters needs splitting: a flag, an Esc or a single character means one key.
 */
export function isOneKey(input: string, key: KeyLike): boolean {
  return FLAGS.some((f) => key[f] === true) || input.includes('\u001B') || [...input].length <= 1;
}

/** A character as Ink reports it when it arrives alone (its parse-keypress + useInput). */
function keyOf(ch: string): KeyPress {
  switch (ch) {
    case '\r':
      return { input: '', key: { return: true } };
    case '\t':
      return { input: '', key: { tab: true } };
    case '\b':
      return { input: '', key: { backspace: true } };
    case '\u007F':
      return { input: '', key: { delete: true } };
    case '\n':
      return { input: ch, key: {} };
  }
  // Ctrl-<letter> is its control code (Ctrl-C is \x03); Ink reports the letter with `ctrl`.
  if (ch <= '\u001A') return { input: String.fromCharCode(ch.charCodeAt(0) + 96), key: { ctrl: true } };
  return { input: ch, key: {} };
}

const TEXT_RUN = /^[^\u0000-\u001F\u007F]+/u;

/**
 * The first key of a multi-key run and the rest. In a mode that takes text
 * (the filter prompt), a run of printable characters is one key, as a paste
 * is; a control character (Enter, Backspace, Ctrl-C) still ends it. Elsewhere
 * every character is a key of its own. The caller picks `takesText` by the
 * mode current after the previous key.
 */
export function firstKey(run: string, takesText: boolean): { readonly press: KeyPress; readonly rest: string } {
  const text = takesText ? TEXT_RUN.exec(run)?.[0] : undefined;
  if (text !== undefined) return { press: { input: text, key: {} }, rest: run.slice(text.length) };
  const ch = String.fromCodePoint(run.codePointAt(0)!);
  return { press: keyOf(ch), rest: run.slice(ch.length) };
}

/** Help overlay: Esc or `?` closes it; Ctrl-C still asks to quit. */
export function helpCommand(input: string, key: KeyLike): 'close' | 'quit' | undefined {
  if (isCtrlC(input, key)) return 'quit';
  if (key.escape || input === '?') return 'close';
  return undefined;
}

/** One line of key help: `keys` as printed, a short label for the footer, a longer one for the overlay. */
export interface KeyHelp {
  readonly keys: string;
  readonly short: string;
  readonly long: string;
  /** Footer priority, 1 = most needed: narrow footers keep the lowest numbers (quit and help first). */
  readonly rank: number;
}

/** Every key, in the order the footer and the help overlay show them. */
export const KEY_HELP: readonly KeyHelp[] = [
  { keys: '↑↓', short: 'select', long: 'select a backend (also j/k; g/G or Home/End: first/last)', rank: 9 },
  { keys: 'd', short: 'drain', long: 'drain: no new connections, open ones run to their end', rank: 3 },
  { keys: 'x', short: 'disable', long: 'disable: out of rotation and not probed', rank: 4 },
  { keys: 'e', short: 'enable', long: 'enable: back under the checks\' control', rank: 5 },
  { keys: 'c', short: 'check', long: 'check now: probe the backend and show the result', rank: 6 },
  { keys: 'K', short: 'kill', long: 'kill the backend\'s open connections (asks first)', rank: 7 },
  { keys: 'r', short: 'reload', long: 'reload the config file now', rank: 8 },
  { keys: 'S', short: 'standby', long: 'standby on/off: report not ready so keepalived/BGP move the address (asks first)', rank: 14 },
  { keys: 'tab', short: 'panel', long: 'switch the bottom panel: events / connections', rank: 10 },
  { keys: '?', short: 'help', long: 'this help (Esc or ? closes it)', rank: 2 },
  { keys: 'q', short: 'quit', long: 'quit: stops the proxy, asks first (also Ctrl-C)', rank: 1 },
  { keys: '/', short: 'filter', long: 'filter backends and connections (Enter applies, Esc clears)', rank: 11 },
  { keys: 's', short: 'sort', long: 'sort connections by age or bytes', rank: 12 },
  { keys: 'PgUp/PgDn', short: 'scroll', long: 'scroll the bottom panel', rank: 13 },
];

/**
 * The key list of a console attached to a tcplb elsewhere: the same keys, but
 * `q` only detaches (stopping that proxy is `systemctl stop` or SIGTERM).
 */
export function keyHelp(attached: boolean): readonly KeyHelp[] {
  if (!attached) return KEY_HELP;
  return KEY_HELP.map((k) => (k.keys === 'q' ? { ...k, short: 'detach', long: 'detach at once: tcplb goes on serving (also Ctrl-C)' } : k));
}
