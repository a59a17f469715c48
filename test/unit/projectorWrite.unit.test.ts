/**
 * The projector's insert encoding (projector/write.ts, schemas/clickhouse/time.ts): integer
 * DateTime64 values equal to the text ones, one encoding per insert whose digest is that of the
 * body sent, and the one bounds scan per record (project.ts) still refusing what it refused.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { secondsToDateTime64, secondsToMicros } from '../../schemas/clickhouse/time.js';
import { encodeRows, rowsDigest } from '../../projector/write.js';
import { decodeBatch } from '../../projector/project.js';
import type { Batch, LogRecord } from '../../log/eventLog.js';

/** Microseconds of a DateTime64(6) text (exact, integer arithmetic). */
function microsOfText(text: string): number {
  const [base, frac] = text.split('.');
  return (Date.parse(`${base!.replace(' ', 'T')}Z`) / 1000) * 1e6 + Number(frac);
}

describe('secondsToMicros', () => {
  it('is the same instant as secondsToDateTime64, rounding included', () => {
    // eslint-disable-next-line no-loss-of-precision -- values past float precision are what is tested
    const samples = [0, 1, 1_700_000_000.5, 1_795_305_600.12611, 1_700_000_000.9999996, 1_700_000_000.0000004, 4_102_444_799.999999];
    for (let i = 0; i < 2000; i++) samples.push(Math.random() * 4_000_000_000);
    for (const s of samples) expect(secondsToMicros(s), String(s)).toBe(microsOfText(secondsToDateTime64(s)));
  });

  it('falls back to the text past what a double holds exactly (2255 and later)', () => {
    const late = 10_000_000_000.123457;
    expect(secondsToMicros(late)).toBe(secondsToDateTime64(late));
  });
});

describe('encodeRows', () => {
  it('gives JSONEachRow lines and the sha256 of exactly that body (the digest the tokens always used)', () => {
    const rows = [{ a: 1, b: 'x"y' }, { a: 2, b: null }];
    const { body, digest } = encodeRows(rows);
    expect(body).toBe('{"a":1,"b":"x\\"y"}\n{"a":2,"b":null}\n');
    expect(digest).toBe(createHash('sha256').update(body).digest('hex').slice(0, 32));
    // The definition before this change: rows stringified one by one, each followed by "\n".
    const before = createHash('sha256');
    for (const r of rows) before.update(JSON.stringify(r)).update('\n');
    expect(rowsDigest(rows)).toBe(before.digest('hex').slice(0, 32));
  });
});

describe('decodeBatch bounds (scanned once per record)', () => {
  const record = (offset: number, value: string): LogRecord => ({ topic: 'jobscribe.alpha.events', partition: 0, offset: BigInt(offset), key: 'alpha:42', value, headers: {}, timestamp: 0 });
  const batch = (records: LogRecord[]): Batch => ({ topic: 'jobscribe.alpha.events', partition: 0, records, firstOffset: 0n, lastOffset: BigInt(records.length - 1), highWatermark: 0n });

  it('still dead-letters a record nested too deep, an oversized one and one that is not JSON, without signatures', () => {
    const deep = `{"v":1,"x":${'['.repeat(100)}${']'.repeat(100)}}`;
    const big = `{"v":1,"x":"${'é'.repeat(2_200_000)}"}`; // 2.2M UTF-16 units, 4.4 MB of UTF-8
    const d = decodeBatch(batch([record(0, deep), record(1, big), record(2, '{"v":1,')]));
    expect(d.events).toHaveLength(0);
    expect(d.deadLetters.map((x) => x.reason)).toEqual([
      'envelope nested too deep: more than 64 levels of objects / arrays',
      expect.stringMatching(/^envelope too large: 4400\d{3} bytes \(at most 4194304\)$/),
      expect.stringMatching(/^not JSON: /),
    ]);
  });
});
