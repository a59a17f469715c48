/**
 * Per-identity rate limits for the MCP HTTP endpoint: one token bucket per identity subject,
 * refilled continuously at `perMinute / 60` tokens a second up to `burst`. A JSON-RPC batch costs
 * one token per message in it, taken all at once or not at all. Pure apart from the injected
 * clock; http.ts answers a refusal with 429, `Retry-After` and a JSON-RPC error. Also the
 * per-address throttle of failed authentications (LoginThrottle).
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

// ---- failed-login throttle -----------------------------------------------------------------------

export interface LoginThrottleOptions {
  /** Failed authentications from one address within `windowMs` that block it. Default 10. */
  maxFailures?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** How long a blocked address is refused (429) without its tokens being looked at. Default 60 s. */
  blockMs?: number;
  /** Milliseconds; default Date.now. */
  now?: () => number;
}

interface FailureRecord {
  /** Times of the recent failures, oldest first (at most maxFailures). */
  at: number[];
  blockedUntil: number;
}

/**
 * Failed authentications per remote address: after `maxFailures` within `windowMs` the address is
 * blocked for `blockMs`, so token guessing from one host stalls. Behind a proxy every client shares
 * the proxy's address (the README says so).
 */
export class LoginThrottle {
  private readonly records = new Map<string, FailureRecord>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly blockMs: number;
  private readonly now: () => number;

  constructor(options: LoginThrottleOptions = {}) {
    this.max = options.maxFailures ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.blockMs = options.blockMs ?? 60_000;
    this.now = options.now ?? Date.now;
    if (!(this.max >= 1)) throw new Error(`login throttle: maxFailures must be at least 1, got ${this.max}`);
  }

  /** Seconds until `address` may try again, or undefined when it is not blocked. */
  blocked(address: string): number | undefined {
    const r = this.records.get(address);
    const now = this.now();
    if (!r || r.blockedUntil <= now) return undefined;
    return Math.max(1, Math.ceil((r.blockedUntil - now) / 1000));
  }

  /** Records a failed authentication; true when it blocks the address. */
  fail(address: string): boolean {
    const now = this.now();
    let r = this.records.get(address);
    if (!r) {
      if (this.records.size >= PRUNE_ABOVE) this.prune(now);
      r = { at: [], blockedUntil: 0 };
      this.records.set(address, r);
    }
    r.at = r.at.filter((t) => now - t < this.windowMs);
    r.at.push(now);
    if (r.at.length < this.max) return false;
    r.at = [];
    r.blockedUntil = now + this.blockMs;
    return true;
  }

  private prune(now: number): void {
    for (const [address, r] of this.records) {
      if (r.blockedUntil <= now && r.at.every((t) => now - t >= this.windowMs)) this.records.delete(address);
    }
  }
}
