/**
 * Seeded PRNG for the simulated cluster: xoshiro128** (32-bit state words, seeded through
 * splitmix32). No Math.random anywhere in the simulator; the four state words are part of every
 * checkpoint, so a restored simulator draws exactly the numbers an uninterrupted one would.
 * No draw caches a spare value (e.g. Box-Muller), so the state words are the whole state.
 */

export type RngState = [number, number, number, number];

const TWO32 = 4294967296;

function splitmix32(x: number): () => number {
  let s = x >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | RngState) {
    if (Array.isArray(seed)) {
      [this.a, this.b, this.c, this.d] = seed.map((v) => v >>> 0) as RngState;
    } else {
      // Fold a 53-bit integer seed (negative allowed) into two 32-bit halves.
      const lo = seed >>> 0;
      const hi = Math.floor(seed / TWO32) >>> 0;
      const sm = splitmix32(lo ^ Math.imul(hi, 0x27d4eb2d));
      this.a = sm();
      this.b = sm();
      this.c = sm();
      this.d = sm();
    }
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // all-zero state is a fixed point
  }

  state(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  /** Uniform uint32. */
  u32(): number {
    const b = this.b;
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    this.c = (this.c ^ this.a) >>> 0;
    this.d = (this.d ^ b) >>> 0;
    this.b = (b ^ this.c) >>> 0;
    this.a = (this.a ^ this.d) >>> 0;
    this.c = (this.c ^ t) >>> 0;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / TWO32;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    const v = items[Math.floor(this.float() * items.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  }

  /** Index drawn with the given (non-negative, not all zero) weights. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** Standard normal (Box-Muller, both uniforms drawn every call). */
  normal(): number {
    const u1 = 1 - this.float(); // (0, 1]
    const u2 = this.float();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Lognormal with the given median and shape sigma. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Exponential with the given mean. */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
