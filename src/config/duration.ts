/**
 * Durations in the config: a number of milliseconds (`2000`) or a string with
 * units (`"5s"`, `"2000ms"`, `"10m"`, `"1.5s"`, `"1h30m"`).
 */

/** Milliseconds per unit. No months/years: nobody times out a TCP proxy in months. */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** One `<number><unit>` group; `ms` is listed before `m` so the alternation takes it first. */
const GROUP = /\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*/y;

/** Longer strings are not durations; the cap keeps the scan trivially cheap. */
const MAX_TEXT = 64;

/**
 * Convert a config duration to milliseconds.
 *
 * Accepts a finite non-negative number (milliseconds) or a string of one or
 * more `<number><unit>` groups with units `ms`, `s`, `m`, `h`, `d`
 * (`"5s"`, `"2000ms"`, `"1.5s"`, `"1h30m"`). A string without a unit
 * (`"2000"`) is rejected on purpose: nginx reads it as seconds, JavaScript
 * people as milliseconds, so we make the operator say which.
 *
 * @returns milliseconds, or undefined for negatives, NaN/Infinity and garbage.
 */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string' || v.length > MAX_TEXT) return undefined;
  const text = v.trim();
  if (text === '') return undefined;
  GROUP.lastIndex = 0;
  let total = 0;
  while (GROUP.lastIndex < text.length) {
    const m = GROUP.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  // Float noise: "1.1s" is 1100.0000000000002 without the rounding.
  total = Math.round(total * 1000) / 1000;
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Format milliseconds back into the shortest exact config spelling
 * (`5000` -> `"5s"`, `600000` -> `"10m"`, `1500` -> `"1.5s"`, `250` -> `"250ms"`).
 * Used by the summary and in range messages.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms === 0) return '0ms';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  // One decimal of seconds reads better than "1500ms".
  if (ms >= 1000 && (ms * 10) % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms * 1000) / 1000}ms`;
}
