import { describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../schemas/envelope/index.js';
import { jsonBoundsProblem } from '../../schemas/jsonBounds.js';

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

describe('jsonBoundsProblem', () => {
  const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
  it('counts nesting outside strings only', () => {
    expect(jsonBoundsProblem(nest(64))).toBeUndefined();
    expect(jsonBoundsProblem(nest(65))).toBe('nested too deep: more than 64 levels of objects / arrays');
    expect(jsonBoundsProblem(JSON.stringify({ s: '['.repeat(1000) + '\\"{{{' }))).toBeUndefined();
  });
  it('refuses a text over the byte bound (UTF-8 bytes, not characters)', () => {
    expect(jsonBoundsProblem(JSON.stringify('é'.repeat(600)), { maxBytes: 1024 })).toBe('too large: 1202 bytes (at most 1024)');
    expect(jsonBoundsProblem(JSON.stringify('e'.repeat(600)), { maxBytes: 1024 })).toBeUndefined();
  });
  it('decodeEnvelope refuses a deep envelope without parsing it', () => {
    const text = JSON.stringify({ ...good, context: 'X' }).replace('"X"', '{"a":'.repeat(30_000) + '1' + '}'.repeat(30_000));
    expect(decodeEnvelope(text)).toEqual({ ok: false, reason: 'envelope nested too deep: more than 64 levels of objects / arrays' });
  });
});
