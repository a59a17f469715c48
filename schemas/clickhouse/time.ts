/**
 * Time values as ClickHouse DateTime64 columns accept them in JSONEachRow: text, or an integer
 * in the column's unit (µs for DateTime64(6), ms for DateTime64(3)); never fractional JSON numbers
 * (which ClickHouse rejects). Always UTC. The projector's hot path sends integers: formatting a
 * Date per value was a twentieth of its decode-and-fold time.
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

/**
 * Seconds since the epoch (float) → integer microseconds, rounded as secondsToDateTime64 rounds;
 * past 2255 (more µs than a double holds exactly) the DateTime64 text instead.
 */
export function secondsToMicros(seconds: number): number | string {
  const whole = Math.floor(seconds);
  const micros = whole * 1_000_000 + Math.round((seconds - whole) * 1e6);
  return micros <= Number.MAX_SAFE_INTEGER ? micros : secondsToDateTime64(seconds);
}
