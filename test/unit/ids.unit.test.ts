import { describe, expect, it } from 'vitest';
import { fromF58, JobIdSchema, parseJobId, toF58 } from '../../schemas/ids.js';

describe('job ids', () => {
  it('accepts decimal strings up to 2^64-1 and refuses anything else with a message, never a throw', () => {
    expect(JobIdSchema.safeParse('18446744073709551615').success).toBe(true);
    for (const bad of ['18446744073709551616', '12_3', '-1', '01', '', 'abc', '1.5']) {
      const r = JobIdSchema.safeParse(bad);
      expect(r.success, bad).toBe(false);
    }
  });

  it('converts to and from Flux f58 exactly, beyond 2^53', () => {
    expect(toF58('937225617408')).toBe('ƒRcvRGc7'); // from flux jobs -a --json
    expect(fromF58('ƒRcvRGc7')).toBe('937225617408');
    expect(fromF58('fRcvRGc7')).toBe('937225617408');
    for (const id of ['0', '1', '9007199254740993', '18446744073709551615']) expect(fromF58(toF58(id))).toBe(id);
    expect(fromF58('ƒ0OIl')).toBeUndefined(); // not in the alphabet
  });

  it('parses decimal, f58 and hex job ids', () => {
    expect(parseJobId(' 643540451328 ')).toBe('643540451328');
    expect(parseJobId('ƒHuUU2Zu')).toBe('643540451328');
    expect(parseJobId('0x95d5000000')).toBe(BigInt('0x95d5000000').toString());
    expect(parseJobId('nope')).toBeUndefined();
  });
});
