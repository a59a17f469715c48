/**
 * Flux job ids (FLUIDs), as flux-core's job-ingest makes them: 64 bits =
 * [timestamp: 40 bits, ms since the instance epoch][generator id: 14 bits][sequence: 10 bits].
 * The generator id is the ingesting broker's rank (0 here); the sequence counts ids issued in the
 * same millisecond. Ids are computed with BigInt and handed out as decimal strings: they exceed
 * 2^53 once the instance is about 6.2 days old.
 */

export interface FluidState {
  /** Last timestamp used (ms since the instance epoch), -1 before the first id. */
  ms: number;
  seq: number;
}

export const FLUID_TS_BITS = 40;
const MAX_TS = 2 ** FLUID_TS_BITS - 1;

export function makeFluid(ms: number, generator: number, seq: number): bigint {
  return (BigInt(ms) << 24n) | (BigInt(generator & 0x3fff) << 10n) | BigInt(seq & 0x3ff);
}

export function decodeFluid(id: bigint | string): { ms: number; generator: number; seq: number } {
  const v = typeof id === 'bigint' ? id : BigInt(id);
  return { ms: Number(v >> 24n), generator: Number((v >> 10n) & 0x3fffn), seq: Number(v & 0x3ffn) };
}

/**
 * Issues the next id for a job ingested at `ms` (ms since the instance epoch). Mutates `state`.
 * Like flux, a clock that has not advanced bumps the sequence; when 1024 ids were issued in one
 * millisecond the timestamp moves on by one.
 */
export function nextFluid(state: FluidState, ms: number, generator = 0): string {
  let t = Math.max(0, Math.floor(ms));
  if (t <= state.ms) {
    t = state.ms;
    state.seq += 1;
    if (state.seq > 1023) {
      t += 1;
      state.seq = 0;
    }
  } else {
    state.seq = 0;
  }
  if (t > MAX_TS) throw new Error('FLUID timestamp overflow (instance older than 34 years)');
  state.ms = t;
  return makeFluid(t, generator, state.seq).toString();
}
