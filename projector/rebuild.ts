/**
 * Replay and rebuild: the live projector with another start position, a stop condition and,
 * for a rebuild, fresh tables (suffix `__rebuild`) that are swapped in with EXCHANGE TABLES once
 * caught up. After a swap the live group's positions are set to where the rebuild ended, so the
 * live projector continues from there.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { readModelStatements, READ_MODEL_TABLES } from '../schemas/clickhouse/ddl.js';
import { eventsTopicPattern, type EventLog, type StartPosition } from '../log/eventLog.js';
import { projectorGroup, Projector, type BatchProjected } from './consume.js';
import type { SignaturePolicy } from '../log/signing.js';

export const REBUILD_SUFFIX = '__rebuild';

export interface ReplayOptions {
  clickhouse: ClickHouseClient;
  database: string;
  log: EventLog;
  topicPrefix: string;
  start: StartPosition;
  /** Project into fresh tables and swap them in when caught up. */
  rebuild?: boolean;
  /** With rebuild: leave the fresh tables beside the live ones instead of swapping. */
  swap?: boolean;
  signal: AbortSignal;
  onProgress?(p: ReplayProgress): void;
  /** The live projector's signature checks: a replay must quarantine what it would. */
  signing?: SignaturePolicy;
}

export interface ReplayProgress {
  /** Offsets still to read, summed over partitions. */
  remaining: bigint;
  total: bigint;
  events: number;
  elapsedMs: number;
}

export interface ReplayResult {
  events: number;
  deadLetters: number;
  swapped: boolean;
  suffix: string;
  endPositions: { topic: string; partition: number; offset: bigint }[];
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const { clickhouse, database, log } = opts;
  const suffix = opts.rebuild ? REBUILD_SUFFIX : '';
  if (opts.rebuild) {
    for (const t of READ_MODEL_TABLES) await clickhouse.command({ query: `DROP TABLE IF EXISTS ${database}.${t}${suffix}` });
    for (const s of readModelStatements(database, suffix)) await clickhouse.command({ query: s });
  }
  const group = `jobscribe-replay-${Date.now()}`;
  // rederive: the rows a replay touches come from their events, never from the stored rows, so a
  // replay repairs a wrong row (one folded onto a stale state) instead of folding onto it.
  const projector = new Projector({ clickhouse, database, log, topicPrefix: opts.topicPrefix, group, suffix, signing: opts.signing, rederive: true });

  const started = Date.now();
  const ends = new Map<string, bigint>(); // topic/partition → high watermark at start
  const positions = new Map<string, bigint>();
  for (const p of await log.lag(projectorGroup(opts.topicPrefix), eventsTopicPattern(opts.topicPrefix))) {
    ends.set(`${p.topic}/${p.partition}`, p.highWatermark);
  }
  const from = new Map<string, bigint>();
  projector.on('batch', (b: BatchProjected) => {
    const key = `${b.topic}/${b.partition}`;
    if (!from.has(key)) from.set(key, b.firstOffset);
    positions.set(key, b.lastOffset + 1n);
    let remaining = 0n;
    let total = 0n;
    for (const [k, end] of ends) {
      const first = from.get(k) ?? 0n;
      const pos = positions.get(k) ?? first;
      if (end > first) total += end - first;
      if (end > pos) remaining += end - pos;
    }
    opts.onProgress?.({ remaining, total, events: projector.totals.events, elapsedMs: Date.now() - started });
  });
  await projector.run(opts.signal, opts.start, true);

  const endPositions = (await log.lag(group, eventsTopicPattern(opts.topicPrefix))).map((p) => ({
    topic: p.topic,
    partition: p.partition,
    offset: p.committed ?? p.highWatermark,
  }));
  let swapped = false;
  if (opts.rebuild && opts.swap !== false && !opts.signal.aborted) {
    for (const t of READ_MODEL_TABLES) {
      await clickhouse.command({ query: `EXCHANGE TABLES ${database}.${t} AND ${database}.${t}${suffix}` });
    }
    for (const t of READ_MODEL_TABLES) await clickhouse.command({ query: `DROP TABLE IF EXISTS ${database}.${t}${suffix}` });
    await log.setCommitted(projectorGroup(opts.topicPrefix), endPositions);
    swapped = true;
  }
  return { events: projector.totals.events, deadLetters: projector.totals.deadLetters, swapped, suffix, endPositions };
}
