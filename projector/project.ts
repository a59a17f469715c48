/**
 * Pure projection of one log batch: decode and validate every record, fold the valid envelopes
 * into job states, and say which rows each table receives. No I/O: prior job states come in,
 * rows go out (consume.ts does the reading and writing).
 *
 * Records are routed by topic and content-type: on an events topic, a command-result or a
 * scribe's refusal (header content-type COMMAND_RESULT_CONTENT_TYPE / REFUSAL_CONTENT_TYPE) goes
 * to `actions`, anything else is a job envelope;
 * on a commands topic, commands, approvals and refusals go to `actions`. With a signature policy, a record
 * whose signature is missing (when required), unknown or wrong becomes a dead letter. So does a record
 * too large or nested too deep (schemas/jsonBounds.ts), before it is parsed.
 */
import { decodeEnvelope, envelopeKey, type Envelope } from '../schemas/envelope/index.js';
import { parseFluxEvent } from '../schemas/flux/events.js';
import { clusterOfTopic, type Batch, type LogRecord } from '../log/eventLog.js';
import { COMMAND_RESULT_CONTENT_TYPE, REFUSAL_CONTENT_TYPE, commandKey, commandResultKey, decodeCommandRecord, type CommandRecord } from '../schemas/commands/index.js';
import { checkSignature, type SignaturePolicy } from '../log/signing.js';
import { evolveJob, type JobRow } from './tables/jobs.js';
import { jobEventRow, type JobEventRow } from './tables/jobEvents.js';
import { deadLetterRow, type DeadLetterRow } from './tables/deadLetters.js';
import { jsonBoundsProblem } from '../schemas/jsonBounds.js';

export interface DecodedBatch {
  events: { envelope: Envelope; record: LogRecord }[];
  /** Command, approval, refusal and command-result records (for `actions`). */
  commands: CommandRecord[];
  deadLetters: DeadLetterRow[];
}

const NO_SIGNATURES: SignaturePolicy = { require: false };

/** Validates each record; anything unacceptable becomes a dead letter with the reason. */
export function decodeBatch(batch: Batch, signing: SignaturePolicy = NO_SIGNATURES): DecodedBatch {
  const out: DecodedBatch = { events: [], commands: [], deadLetters: [] };
  const topicCluster = clusterOfTopic(batch.topic);
  const commandsTopic = batch.topic.endsWith('.commands');
  const checking = signing.require || signing.keyring !== undefined;
  for (const record of batch.records) {
    const contentType = record.headers['content-type'];
    const isCommandRecord = commandsTopic || contentType === COMMAND_RESULT_CONTENT_TYPE || contentType === REFUSAL_CONTENT_TYPE;
    // Bounded before anything parses or walks it: one record nested 30,000 deep must not stop the projector.
    const bounds = jsonBoundsProblem(record.value);
    if (bounds !== undefined) {
      out.deadLetters.push(deadLetterRow(record, `${isCommandRecord ? 'record' : 'envelope'} ${bounds}`));
      continue;
    }
    // Parsed once, after the bounds: the signature is checked on the JSON as received, the
    // decoders read the same object (and do not bound the text again).
    const json = parseOrUndefined(record.value);
    const reason = checking ? signatureProblem(json, signing, topicCluster) : undefined;
    if (reason !== undefined) {
      out.deadLetters.push(deadLetterRow(record, reason));
      continue;
    }
    if (isCommandRecord) {
      const r = validateCommandRecord(record, topicCluster, commandsTopic, json);
      if (typeof r === 'string') out.deadLetters.push(deadLetterRow(record, r));
      else out.commands.push(r);
      continue;
    }
    const r = validate(record, topicCluster, json);
    if (typeof r === 'string') out.deadLetters.push(deadLetterRow(record, r));
    else out.events.push({ envelope: r, record });
  }
  return out;
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON: the decoders parse again and say so
  }
}

/** Why a record's signature (on its parsed JSON) is unacceptable under the policy, or undefined. */
function signatureProblem(json: unknown, signing: SignaturePolicy, topicCluster: string | undefined): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const obj = json as Record<string, unknown>;
  const cluster = topicCluster ?? (typeof obj.cluster === 'string' ? obj.cluster : '');
  const v = checkSignature(obj, signing, cluster);
  return v.ok ? undefined : `signature: ${v.reason}`;
}

function validateCommandRecord(record: LogRecord, topicCluster: string | undefined, commandsTopic: boolean, json?: unknown): CommandRecord | string {
  const decoded = decodeCommandRecord(record.value, commandsTopic ? ['command', 'approval', 'refusal'] : ['command-result', 'refusal'], json);
  if (!decoded.ok) return decoded.reason;
  const r = decoded.record;
  if (topicCluster !== undefined && r.cluster !== topicCluster) {
    return `${r.kind} for cluster "${r.cluster}" arrived on topic ${record.topic} (cluster "${topicCluster}")`;
  }
  const key = r.kind === 'command-result' ? commandResultKey(r) : commandKey(r);
  if (record.key !== key) return `message key "${record.key}" does not match the ${r.kind} (expected "${key}")`;
  return r;
}

function validate(record: LogRecord, topicCluster: string | undefined, json?: unknown): Envelope | string {
  const decoded = decodeEnvelope(record.value, json);
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

/** Each touched job's smallest seq in the batch (its events before that are the prior state). */
export function firstSeqs(events: DecodedBatch['events']): Map<string, number> {
  const out = new Map<string, number>();
  for (const { envelope: e } of events) {
    const key = jobKey(e.cluster, e.job_id);
    const seen = out.get(key);
    if (seen === undefined || e.seq < seen) out.set(key, e.seq);
  }
  return out;
}

/**
 * Prior states re-derived from stored events: for each job, the fold (from nothing) of its
 * events below its first seq in the batch, in seq order. A job with none has no prior state.
 * This is what a replay folds onto, so a wrong stored row cannot survive a replay.
 */
export function deriveStates(stored: readonly Envelope[], below: ReadonlyMap<string, number>): Map<string, JobRow> {
  const sorted = [...stored].sort((a, b) => a.seq - b.seq);
  const out = new Map<string, JobRow>();
  for (const e of sorted) {
    const key = jobKey(e.cluster, e.job_id);
    const limit = below.get(key);
    if (limit === undefined || e.seq >= limit) continue;
    const after = evolveJob(out.get(key), canonicalTimes(e));
    if (after) out.set(key, canonicalRow(after));
  }
  return out;
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
