/**
 * The client bench's pure parts: medians, and how a child's output becomes a figure or a printed
 * skip reason (a client that is missing or dies must never be dropped silently).
 */
import { describe, expect, it } from 'vitest';
import { envelopes, median, parseChild } from '../bench/kafkaClients.js';

describe('median', () => {
  it.each([
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[7], 7],
  ])('%j → %d', (xs, m) => expect(median(xs)).toBe(m));
  it('is NaN for no runs', () => expect(median([])).toBeNaN());
});

describe('parseChild', () => {
  it('reads the RESULT line among other output', () => {
    const run = { client: 'kafkajs', version: 'kafkajs 2.2.4', node: 'v20', messages: 10, produceS: 1, firstRecordMs: 5, consumeS: 2, peakRssMiB: 100, clientRssMiB: 20 };
    expect(parseChild(`noise\nRESULT ${JSON.stringify(run)}\n`, '', 0)).toEqual(run);
  });
  it('passes a SKIP reason on', () => {
    expect(parseChild('SKIP @platformatic/kafka@1.35.0 is not installed in /x\n', '', 0)).toEqual({ skip: '@platformatic/kafka@1.35.0 is not installed in /x' });
  });
  it('turns a crash into a skip that names the exit code and the last lines', () => {
    const r = parseChild('', 'Error: boom\n    at a\n    at b\n', 1);
    expect(r).toEqual({ skip: 'failed (exit 1): Error: boom |     at a |     at b' });
  });
});

describe('envelopes', () => {
  it('are the real v1 log messages: key cluster:job_id, JSON value, headers', () => {
    const ms = envelopes(50);
    expect(ms).toHaveLength(50);
    for (const m of ms) {
      const v = JSON.parse(m.value) as { v: number; cluster: string; job_id: string };
      expect(v.v).toBe(1);
      expect(m.key).toBe(`${v.cluster}:${v.job_id}`);
      expect(m.headers?.['schema-version']).toBe('1');
    }
  });
});
