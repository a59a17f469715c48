/**
 * Pure projection of one log batch: decode and validate every record, fold the valid envelopes
 * into job states, and say which rows each table receives. No I/O: prior job states come in,
 * rows go out (consume.ts does the reading and writing).
 */
import { decodeEnvelope, envelopeKey, type Envelope } from '../schemas/envelope/index.js';
import { parseFluxEvent } from '../schemas/flux/events.js';
import { clusterOfTopic, type Batch, type LogRecord } from '../log/eventLog.js';
import { evolveJob, type JobRow } from './tables/jobs.js';
import { jobEventRow, type JobEventRow } from './tables/jobEvents.js';
import { deadLetterRow, type DeadLetterRow } from './tables/deadLetters.js';

export interface DecodedBatch {
  events: { envelope: Envelope; record: LogRecord }[];
  deadLetters: DeadLetterRow[];
}

/** Validates each record; anything unacceptable becomes a dead letter with the reason. */
export function decodeBatch(batch: Batch): DecodedBatch {
  const out: DecodedBatch = { events: [], deadLetters: [] };
  const topicCluster = clusterOfTopic(batch.topic);
  for (const record of batch.records) {
    const reason = validate(record, topicCluster);
    if (typeof reason === 'string') out.deadLetters.push(deadLetterRow(record, reason));
    else out.events.push({ envelope: reason, record });
  }
  return out;
}

function validate(record: LogRecord, topicCluster: string | undefined): Envelope | string {
  const decoded = decodeEnvelope(record.value);
  if (!decoded.ok) return decoded.reason;
  const e = decoded.envelope;
  if (topicCluster !== undefined && e.cluster !== topicCluster) {
    return `envelope for cluster "${e.cluster}" arrived on topic ${record.topic} (cluster "${topicCluster}")`;
  }
  if (record.key !== envelopeKey(e)) return `message key "${record.key}" does not match the envelope (expected "${envelopeKey(e)}")`;
  if (e.scheduler === 'flux') {
    const parsed = parseFluxEvent(e.name, e.context);
    if (!parsed.ok) return parsed.reason;
  }
  return e;
}

export function jobKey(cluster: string, jobId: string): string {
  return `${cluster}/${jobId}`;
}

/** The jobs a batch touches, as [cluster, job_id] pairs (for loading their prior states). */
export function touchedJobs(events: DecodedBatch['events']): [string, string][] {
  const seen = new Map<string, [string, string]>();
  for (const { envelope: e } of events) seen.set(jobKey(e.cluster, e.job_id), [e.cluster, e.job_id]);
  return [...seen.values()];
}

/**
 * Folds the batch's events into the prior states. Returns the job rows that changed (one per
 * job, its final state after the batch) and the event rows.
 */
export function projectEvents(
  events: DecodedBatch['events'],
  prior: ReadonlyMap<string, JobRow>,
): { jobEvents: JobEventRow[]; jobs: Map<string, JobRow> } {
  const jobEvents: JobEventRow[] = [];
  const changed = new Map<string, JobRow>();
  for (const { envelope, record } of events) {
    jobEvents.push(jobEventRow(envelope, record));
    const key = jobKey(envelope.cluster, envelope.job_id);
    const before = changed.get(key) ?? prior.get(key);
    const after = evolveJob(before, canonicalTimes(envelope));
    if (after && (!before || after.last_seq !== before.last_seq)) {
      changed.set(key, canonicalRow(after));
    }
  }
  return { jobEvents, jobs: changed };
}

const micros = (s: number) => Math.round(s * 1e6) / 1e6;

/**
 * Times are kept to the microsecond, as DateTime64(6) stores them, so a state reloaded from
 * ClickHouse folds on to exactly the row an uninterrupted projector would write.
 */
function canonicalTimes(e: Envelope): Envelope {
  return { ...e, ts: micros(e.ts) };
}

function canonicalRow(row: JobRow): JobRow {
  const m = (v: number | null) => (v === null ? null : micros(v));
  return {
    ...row,
    t_submit: micros(row.t_submit),
    t_eligible: m(row.t_eligible),
    t_start: m(row.t_start),
    t_end: m(row.t_end),
    t_inactive: m(row.t_inactive),
    wait_s: m(row.wait_s),
    run_s: m(row.run_s),
    time_limit_s: m(row.time_limit_s),
    last_event_ts: micros(row.last_event_ts),
  };
}
