/** The per-identity token bucket (mcp/rateLimit.ts): batches cost one token per call, all or none; the failed-login throttle. */
import { describe, expect, it } from 'vitest';
import { callsIn, LoginThrottle, RateLimiter } from '../../mcp/rateLimit.js';

describe('RateLimiter', () => {
  it('takes a batch whole or not at all, and says when a batch can never fit', () => {
    let t = 0;
    const rl = new RateLimiter({ perMinute: 60, burst: 10, now: () => t });
    expect(rl.take('a', 4)).toEqual({ ok: true });
    expect(rl.take('a', 7)).toEqual({ ok: false, retryAfterS: 1, exceedsBurst: false });
    expect(rl.take('a', 6)).toEqual({ ok: true });
    expect(rl.take('a')).toMatchObject({ ok: false, retryAfterS: 1 });
    t += 3000;
    expect(rl.take('a', 4)).toMatchObject({ ok: false, retryAfterS: 1 }); // 3 tokens back, 4 wanted
    expect(rl.take('a', 11)).toMatchObject({ ok: false, exceedsBurst: true, retryAfterS: 7 });
    expect(rl.take('b', 10)).toEqual({ ok: true });
  });

  it('counts the messages of a batch, at least one per body', () => {
    expect(callsIn(undefined)).toBe(1);
    expect(callsIn({ jsonrpc: '2.0' })).toBe(1);
    expect(callsIn([])).toBe(1);
    expect(callsIn([{}, {}, {}])).toBe(3);
  });
});

describe('LoginThrottle', () => {
  it('blocks an address after maxFailures within the window, for blockMs, and forgets old failures', () => {
    let t = 0;
    const th = new LoginThrottle({ maxFailures: 3, windowMs: 10_000, blockMs: 5_000, now: () => t });
    expect(th.fail('a')).toBe(false);
    t += 6_000;
    expect(th.fail('a')).toBe(false);
    t += 6_000; // the first failure left the window: still two
    expect(th.fail('a')).toBe(false);
    expect(th.blocked('a')).toBeUndefined();
    expect(th.fail('a')).toBe(true);
    expect(th.blocked('a')).toBe(5);
    expect(th.blocked('b')).toBeUndefined();
    t += 4_001;
    expect(th.blocked('a')).toBe(1);
    t += 1_000;
    expect(th.blocked('a')).toBeUndefined();
    expect(th.fail('a')).toBe(false); // a fresh count after the block
  });
});
