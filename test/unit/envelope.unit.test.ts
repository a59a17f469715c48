import { describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../schemas/envelope/index.js';

const good = {
  v: 1, cluster: 'alpha', scheduler: 'flux', job_id: '42', seq: 0, name: 'submit', ts: 1_700_000_000.5,
  ts_source: 'scheduler', context: { userid: 1000, urgency: 16, flags: 0, version: 1 }, raw: {}, scribe: { id: 's', version: '1' }, published_at: 1_700_000_001,
};

describe('decodeEnvelope', () => {
  it('accepts a well-formed v1 envelope', () => {
    expect(decodeEnvelope(JSON.stringify(good)).ok).toBe(true);
  });

  it.each([
    ['published_at', { published_at: 1_700_000_001_000 }],
    ['ts', { ts: 1_700_000_000_500 }],
  ])('refuses a %s in milliseconds (past what DateTime64 stores) instead of stalling the projector', (field, patch) => {
    const r = decodeEnvelope(JSON.stringify({ ...good, ...patch }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(new RegExp(`${field}: .*after 2299-12-31`));
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['another version', JSON.stringify({ ...good, v: 2 }), /unknown envelope version 2/],
    ['a negative seq', JSON.stringify({ ...good, seq: -1 }), /seq/],
  ])('refuses %s with a reason', (_what, text, reason) => {
    const r = decodeEnvelope(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});
