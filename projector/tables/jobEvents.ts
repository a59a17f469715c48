/**
 * The `job_events` read model: one row per envelope, with its log position. Pure.
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import { secondsToMicros } from '../../schemas/clickhouse/time.js';
import type { LogRecord } from '../../log/eventLog.js';

export interface JobEventRow {
  cluster: string;
  scheduler: string;
  job_id: string;
  seq: number;
  name: string;
  /** DateTime64(6) as integer microseconds (text past 2255: secondsToMicros). */
  ts: number | string;
  ts_source: string;
  context: string;
  raw: string;
  user: string;
  scribe_id: string;
  /** DateTime64(3) as integer milliseconds. */
  published_at: number;
  log_topic: string;
  log_partition: number;
  log_offset: string;
}

export function jobEventRow(e: Envelope, at: Pick<LogRecord, 'topic' | 'partition' | 'offset'>): JobEventRow {
  return {
    cluster: e.cluster,
    scheduler: e.scheduler,
    job_id: e.job_id,
    seq: e.seq,
    name: e.name,
    ts: secondsToMicros(e.ts),
    ts_source: e.ts_source,
    context: JSON.stringify(e.context),
    raw: JSON.stringify(e.raw ?? null),
    user: e.user ?? '',
    scribe_id: e.scribe.id,
    published_at: Math.floor(e.published_at * 1000),
    log_topic: at.topic,
    log_partition: at.partition,
    log_offset: at.offset.toString(),
  };
}
