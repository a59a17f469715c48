/**
 * Per-identity rate limits for the MCP HTTP endpoint: one token bucket per identity subject,
 * refilled continuously at `perMinute / 60` tokens a second up to `burst`. A JSON-RPC batch costs
 * one token per message in it, taken all at once or not at all. Pure apart from the injected
 * clock; http.ts answers a refusal with 429, `Retry-After` and a JSON-RPC error.
 */

export interface RateLimitOptions {
  /** Sustained requests per minute per identity. */
  perMinute: number;
  /** Requests an idle identity may make at once (the bucket size). */
  burst: number;
  /** Milliseconds; default Date.now. */
  now?: () => number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterS: number; exceedsBurst: boolean };

/** What a request body costs: one token per JSON-RPC message of a batch (at least one). */
export function callsIn(body: unknown): number {
  return Array.isArray(body) ? Math.max(1, body.length) : 1;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Forget full buckets once this many subjects are tracked (a full bucket equals no bucket). */
const PRUNE_ABOVE = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    if (!(options.perMinute > 0)) throw new Error(`rate limit must be above 0 requests per minute, got ${options.perMinute}`);
    if (!(options.burst >= 1)) throw new Error(`rate limit burst must be at least 1, got ${options.burst}`);
    this.perMs = options.perMinute / 60_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Takes `count` tokens for `subject` (all or none), or says how many seconds until they are
   * available; a count above the burst can never be served (`exceedsBurst`).
   */
  take(subject: string, count = 1): RateDecision {
    const now = this.now();
    const b = this.buckets.get(subject) ?? { tokens: this.options.burst, at: now };
    b.tokens = Math.min(this.options.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
    b.at = now;
    if (!this.buckets.has(subject)) {
      if (this.buckets.size >= PRUNE_ABOVE) this.prune(now);
      this.buckets.set(subject, b);
    }
    if (b.tokens >= count) {
      b.tokens -= count;
      return { ok: true };
    }
    const exceedsBurst = count > this.options.burst;
    const want = Math.min(count, this.options.burst);
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((want - b.tokens) / this.perMs / 1000)), exceedsBurst };
  }

  private prune(now: number): void {
    for (const [subject, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.options.burst) this.buckets.delete(subject);
    }
  }
}
