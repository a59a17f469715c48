/**
 * The event log: the spine between scribes and the projector. One interface, two
 * implementations: `embedded.ts` (tables in the embedded ClickHouse, one process) and Kafka
 * (`kafka.ts`). Scribe and projector code sees only this file.
 *
 * Semantics follow Kafka's: topics with partitions, per-partition offsets (bigint), messages
 * with a key (all events of one job share a key, so they stay ordered), a consumer group's
 * committed offset is the NEXT offset it will read. `consume` commits a batch's offsets only
 * after `eachBatch` resolved, so a crash re-delivers the batch (at-least-once); the projector
 * makes that exactly-once in the read model with dedup tokens and idempotent rows.
 */

export interface LogMessage {
  key: string;
  value: string;
  headers?: Record<string, string>;
}

export interface LogRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string;
  value: string;
  headers: Record<string, string>;
  /** Milliseconds since the epoch (publish time). */
  timestamp: number;
}

/** Consecutive records of one partition. */
export interface Batch {
  topic: string;
  partition: number;
  records: LogRecord[];
  firstOffset: bigint;
  lastOffset: bigint;
  /** The partition's next offset to be written when the batch was read (lag = hw - last - 1). */
  highWatermark: bigint;
}

/** Where a consumer starts. 'committed' falls back to the earliest offset for a new group. */
export type StartPosition =
  | { from: 'committed' }
  | { from: 'earliest' }
  | { from: 'offset'; offset: bigint; partition?: number }
  | { from: 'time'; timestamp: number };

export interface ConsumeOptions {
  group: string;
  /** Topic names, or a pattern so new topics (new clusters) are picked up without a restart. */
  topics: string[] | RegExp;
  start?: StartPosition;
  eachBatch(batch: Batch): Promise<void>;
  /**
   * Called when this consumer is (re)assigned partitions (a group join after a rebalance), before
   * any batch of the new assignment. State a consumer derived from earlier batches may be stale
   * then: another member may have read the same partitions meanwhile. The embedded log (one
   * consumer per group, no rebalances) never calls it.
   */
  onAssigned?(partitions: { topic: string; partition: number }[]): void;
  signal: AbortSignal;
  /** Stop once every partition is caught up with the high watermark seen at start (replay, rebuild). */
  stopAtEnd?: boolean;
  maxBatchRecords?: number;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  committed: bigint | null;
  highWatermark: bigint;
  lag: bigint;
}

export interface EventLog {
  readonly kind: 'embedded' | 'kafka';
  /** Appends messages to a topic; resolved means durably accepted, in order per key. */
  publish(topic: string, messages: LogMessage[]): Promise<void>;
  /** Runs a consumer until `signal` aborts or (with `stopAtEnd`) it has caught up. */
  consume(options: ConsumeOptions): Promise<void>;
  /** Committed position and lag of a group on every partition of the matching topics. */
  lag(group: string, topics: string[] | RegExp): Promise<PartitionLag[]>;
  listTopics(): Promise<string[]>;
  /** Sets a (stopped) group's committed positions, e.g. after a rebuild was swapped in. */
  setCommitted(group: string, positions: { topic: string; partition: number; offset: bigint }[]): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_TOPIC_PREFIX = 'jobscribe';

export function eventsTopic(prefix: string, cluster: string): string {
  return `${prefix}.${cluster}.events`;
}

export function commandsTopic(prefix: string, cluster: string): string {
  return `${prefix}.${cluster}.commands`;
}

/** Matches every cluster's topics of the given kinds under a prefix. */
export function topicPattern(prefix: string, kinds: ('events' | 'commands')[]): RegExp {
  const p = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const k = kinds.length === 1 ? kinds[0] : `(${kinds.join('|')})`;
  return new RegExp(`^${p}\\.[a-z0-9][a-z0-9_-]*\\.${k}$`);
}

/** Matches every cluster's events topic under a prefix. */
export function eventsTopicPattern(prefix: string): RegExp {
  return topicPattern(prefix, ['events']);
}

export function clusterOfTopic(topic: string): string | undefined {
  return /\.([a-z0-9][a-z0-9_-]*)\.(events|commands)$/.exec(topic)?.[1];
}

/**
 * Deterministic insert-dedup token for the rows one batch writes into one table. The log range
 * alone is not an identity: a topic deleted and re-created restarts its offsets at 0, and a token
 * from its first life would make ClickHouse drop new rows as duplicates (and the projector would
 * commit past them). So the token also binds a digest of the rows' content: a retry of the same
 * batch (same rows) is dropped, different rows under a repeated range are always written.
 */
export function dedupToken(
  batch: Pick<Batch, 'topic' | 'partition' | 'firstOffset' | 'lastOffset'>,
  table: string,
  contentDigest?: string,
): string {
  const range = `${batch.topic}:${batch.partition}:${batch.firstOffset}-${batch.lastOffset}:${table}`;
  return contentDigest === undefined ? range : `${range}:${contentDigest}`;
}
