/**
 * The event-log contract: one suite that every EventLog implementation (embedded, Kafka) runs,
 * so the scribe and projector can rely on the same behaviour from both.
 */
import { describe, expect, it } from 'vitest';
import type { Batch, EventLog, LogMessage } from '../../log/eventLog.js';

export interface ContractContext {
  log: EventLog;
  /** A topic name unique to this test, under the given cluster name. */
  topic(cluster: string): string;
  group(): string;
}

const msgs = (key: string, n: number, from = 0): LogMessage[] =>
  Array.from({ length: n }, (_, i) => ({ key, value: JSON.stringify({ key, i: from + i }) }));

async function collect(log: EventLog, opts: { group: string; topics: string[] | RegExp; start?: Parameters<EventLog['consume']>[0]['start']; until: (all: Batch[]) => boolean; timeoutMs?: number }): Promise<Batch[]> {
  const batches: Batch[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 20_000);
  await log.consume({
    group: opts.group,
    topics: opts.topics,
    start: opts.start,
    signal: ac.signal,
    eachBatch: async (b) => {
      batches.push(b);
      if (opts.until(batches)) ac.abort();
    },
  });
  clearTimeout(timer);
  return batches;
}

const count = (bs: Batch[]) => bs.reduce((n, b) => n + b.records.length, 0);
const values = (bs: Batch[]) => bs.flatMap((b) => b.records.map((r) => JSON.parse(r.value) as { key: string; i: number }));

export function eventLogContract(name: string, ctx: () => ContractContext): void {
  describe(`${name}: event log contract`, () => {
    it('delivers every message once, in order per key, with increasing offsets', async () => {
      const { log, topic, group } = ctx();
      const t = topic('alpha');
      await log.publish(t, [...msgs('a', 50), ...msgs('b', 50)]);
      await log.publish(t, msgs('a', 30, 50));
      const got = await collect(log, { group: group(), topics: [t], until: (bs) => count(bs) >= 130 });
      expect(count(got)).toBe(130);
      for (const key of ['a', 'b']) {
        const seq = values(got).filter((v) => v.key === key).map((v) => v.i);
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
      }
      for (const b of got) {
        expect(b.firstOffset).toBe(b.records[0]!.offset);
        expect(b.lastOffset).toBe(b.records.at(-1)!.offset);
        for (let i = 1; i < b.records.length; i++) expect(b.records[i]!.offset > b.records[i - 1]!.offset).toBe(true);
      }
    });

    it('resumes a group from its committed position and replays from an explicit offset', async () => {
      const { log, topic, group } = ctx();
      const t = topic('beta');
      const g = group();
      await log.publish(t, msgs('k', 20));
      const first = await collect(log, { group: g, topics: [t], until: (bs) => count(bs) >= 20 });
      expect(count(first)).toBe(20);
      await log.publish(t, msgs('k', 5, 20));
      const second = await collect(log, { group: g, topics: [t], until: (bs) => count(bs) >= 5 });
      expect(values(second).map((v) => v.i)).toEqual([20, 21, 22, 23, 24]);
      const lag = await log.lag(g, [t]);
      expect(lag[0]!.lag).toBe(0n);
      expect(lag[0]!.highWatermark).toBe(lag[0]!.committed);

      const fromTen = await collect(log, { group: group(), topics: [t], start: { from: 'offset', offset: first[0]!.firstOffset + 10n }, until: (bs) => count(bs) >= 15 });
      expect(values(fromTen).map((v) => v.i)).toEqual(Array.from({ length: 15 }, (_, i) => i + 10));
    });

    it('starts from a time at the first message published at or after it', async () => {
      const { log, topic, group } = ctx();
      const t = topic('gamma');
      await log.publish(t, msgs('k', 3));
      await new Promise((r) => setTimeout(r, 50));
      const cut = Date.now();
      await new Promise((r) => setTimeout(r, 50));
      await log.publish(t, msgs('k', 4, 3));
      const got = await collect(log, { group: group(), topics: [t], start: { from: 'time', timestamp: cut }, until: (bs) => count(bs) >= 4 });
      expect(values(got).map((v) => v.i)).toEqual([3, 4, 5, 6]);
      expect(got[0]!.records[0]!.timestamp).toBeGreaterThanOrEqual(cut);
    });

    it('stops at the end when asked, and does not commit a failed batch', async () => {
      const { log, topic, group } = ctx();
      const t = topic('delta');
      const g = group();
      await log.publish(t, msgs('k', 12));
      const ac = new AbortController();
      const seen: number[] = [];
      await log.consume({ group: g, topics: [t], signal: ac.signal, stopAtEnd: true, eachBatch: async (b) => void seen.push(...b.records.map((r) => JSON.parse(r.value).i as number)) });
      expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i));

      const g2 = group();
      await expect(
        log.consume({ group: g2, topics: [t], signal: new AbortController().signal, eachBatch: async () => { throw new Error('boom'); } }),
      ).rejects.toThrow('boom');
      const again = await collect(log, { group: g2, topics: [t], until: (bs) => count(bs) >= 12 });
      expect(values(again)[0]!.i).toBe(0);
    });

    it('picks up a new topic matching the pattern without a restart', async () => {
      const { log, topic, group } = ctx();
      const t1 = topic('epsilon');
      const prefix = t1.slice(0, t1.indexOf('.epsilon'));
      const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[a-z0-9_-]+\\.events$`);
      await log.publish(t1, msgs('k', 2));
      const ac = new AbortController();
      const seenTopics = new Set<string>();
      const timer = setTimeout(() => ac.abort(), 30_000);
      const running = log.consume({
        group: group(),
        topics: pattern,
        signal: ac.signal,
        eachBatch: async (b) => {
          seenTopics.add(b.topic);
          if (seenTopics.size === 2) ac.abort();
        },
      });
      await new Promise((r) => setTimeout(r, 1500));
      const t2 = `${prefix}.zeta.events`;
      await log.publish(t2, msgs('k', 2));
      await running;
      clearTimeout(timer);
      expect([...seenTopics].sort()).toEqual([t1, t2].sort());
    });
  });
}
