/**
 * Key handling: one `useInput` per mode, each active only in its mode, so a
 * key is never handled twice (the `y` that answers a prompt doesn't also
 * reach the table), plus one always-active listener for Ctrl-C, which means
 * "quit?" in every mode. The work is in commands.ts.
 *
 * The handler reads the newest state through getters, never through the
 * closure of the last rendered frame: Ink renders asynchronously (tens of ms
 * on a busy host), so `↓` then `d` typed fast must drain the backend the
 * operator moved to, and a key arriving before the new mode's listener is
 * subscribed must be routed by the new mode.
 *
 * Keys that arrive in one read come as one `input` string; handleInput
 * splits them and routes each by the mode the previous one left, which is
 * why the routing is by the newest mode and not by the subscribed listener.
 *
 * The Ctrl-C listener also keeps Ink's raw-mode count above zero while the
 * mode listeners swap (React runs every cleanup before any setup): at zero,
 * Ink resets its input parser and a just-typed Esc would be lost.
 */
import { useInput, type Key } from 'ink';
import { useCallback, useEffect, useRef } from 'react';
import { handleInput, type KeyContext } from '../commands.js';
import { isCtrlC } from '../keymap.js';
import type { UiState } from '../reducer.js';

/** Options of {@link useConsoleKeys}. */
export interface UseConsoleKeysOptions extends Omit<KeyContext, 'alive'> {
  /** The mode of the rendered frame: decides which listener is subscribed. */
  readonly mode: UiState['mode']['kind'];
}

/** Subscribe the console's key handling, one listener per input mode. */
export function useConsoleKeys(opts: UseConsoleKeysOptions): void {
  // Handlers are created once and read the newest options from here.
  const props = useRef(opts);
  props.current = opts;
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const handle = useCallback((input: string, key: Key) => handleInput({ ...props.current, alive: () => mounted.current }, input, key), []);
  const modeKey = useCallback(
    (input: string, key: Key) => {
      if (!isCtrlC(input, key)) handle(input, key);
    },
    [handle],
  );
  const ctrlC = useCallback(
    (input: string, key: Key) => {
      if (isCtrlC(input, key)) handle(input, key);
    },
    [handle],
  );
  useInput(ctrlC);
  useInput(modeKey, { isActive: opts.mode === 'normal' });
  useInput(modeKey, { isActive: opts.mode === 'help' });
  useInput(modeKey, { isActive: opts.mode === 'filter' });
  useInput(modeKey, { isActive: opts.mode === 'confirm' });
}
