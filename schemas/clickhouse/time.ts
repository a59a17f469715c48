/**
 * Time values as ClickHouse DateTime64 columns accept them in JSONEachRow: text, not fractional
 * JSON numbers (which ClickHouse rejects), always UTC.
 */

/** Milliseconds since the epoch → DateTime64(3) text 'YYYY-MM-DD hh:mm:ss.fff'. */
export function millisToDateTime64(ms: number): string {
  return new Date(Math.floor(ms)).toISOString().slice(0, 23).replace('T', ' ');
}

/** Seconds since the epoch (float) → DateTime64(6) text, rounded to the microsecond. */
export function secondsToDateTime64(seconds: number): string {
  let whole = Math.floor(seconds);
  let micros = Math.round((seconds - whole) * 1e6);
  if (micros >= 1_000_000) {
    whole += 1;
    micros -= 1_000_000;
  }
  return `${new Date(whole * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${String(micros).padStart(6, '0')}`;
}
