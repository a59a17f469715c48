/**
 * The `dead_letters` table: a log message the projector could not accept, with the reason and
 * its log position, so nothing is dropped silently. Pure.
 */
import type { LogRecord } from '../../log/eventLog.js';
import { MAX_RECORD_BYTES } from '../../schemas/jsonBounds.js';

/** A payload over the record size bound is kept to its first characters (the whole record stays in the log at its offset). */
const KEPT_PAYLOAD_CHARS = 64 * 1024;

export interface DeadLetterRow {
  log_topic: string;
  log_partition: number;
  log_offset: string;
  /** DateTime64(3) as integer milliseconds. */
  log_ts: number;
  key: string;
  reason: string;
  payload: string;
}

export function deadLetterRow(record: LogRecord, reason: string): DeadLetterRow {
  return {
    log_topic: record.topic,
    log_partition: record.partition,
    log_offset: record.offset.toString(),
    log_ts: Math.floor(record.timestamp),
    key: record.key,
    reason,
    payload: record.value.length > MAX_RECORD_BYTES ? record.value.slice(0, KEPT_PAYLOAD_CHARS) : record.value,
  };
}
