/**
 * Reading and writing the read-model tables. Every insert of a batch carries a deterministic
 * dedup token (topic:partition:first-last:table:sha256 of the rows), so retrying a batch after a
 * crash writes nothing twice, while new rows under a log range seen before (a re-created topic
 * restarts at offset 0) are never dropped; the ReplacingMergeTree keys collapse overlapping
 * ranges from replays (readers use FINAL). A replay's tokens carry its group (`scope`), so a
 * repaired row is never dropped as a copy of one the live projector wrote earlier.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { secondsToMicros } from '../schemas/clickhouse/time.js';
import { StoreError } from '../schemas/errors.js';
import { dedupToken, type Batch } from '../log/eventLog.js';
import type { Envelope } from '../schemas/envelope/index.js';
import type { JobRow } from './tables/jobs.js';
import { actionFromSelectRow, type ActionRow } from './tables/actions.js';

export interface TableNames {
  jobEvents: string;
  jobs: string;
  deadLetters: string;
  actions: string;
}

export function tableNames(database: string, suffix = ''): TableNames {
  return {
    jobEvents: `${database}.job_events${suffix}`,
    jobs: `${database}.jobs${suffix}`,
    deadLetters: `${database}.dead_letters${suffix}`,
    actions: `${database}.actions${suffix}`,
  };
}

export async function insertRows(
  client: ClickHouseClient,
  table: string,
  rows: readonly object[],
  batch: Pick<Batch, 'topic' | 'partition' | 'firstOffset' | 'lastOffset'>,
  /** Keeps these tokens apart from other runs' (a replay's from the live projector's). */
  scope = '',
): Promise<void> {
  if (rows.length === 0) return;
  // Encoded once: the digest is of the very bytes sent. (`insert` with an array would stringify
  // every row again, and takes JSON formats only as objects; `exec` sends a body as it is.)
  const { body, digest } = encodeRows(rows);
  try {
    const result = await client.exec({
      query: `INSERT INTO ${table} FORMAT JSONEachRow`,
      values: Readable.from([body], { objectMode: false }),
      clickhouse_settings: { insert_deduplication_token: dedupToken(batch, table, scope ? `${scope}:${digest}` : digest) },
    });
    for await (const _ of result.stream) void _; // an insert answers nothing; drain it to free the connection
  } catch (err) {
    throw new StoreError(`insert into ${table} failed: ${(err as Error).message}`, { retriable: true, cause: err });
  }
}

/**
 * The rows as a JSONEachRow body (one JSON object per line) and the sha256 (hex, 32 chars) of
 * that body: identical for a retried batch, and the same digest `rowsDigest` gives.
 */
export function encodeRows(rows: readonly object[]): { body: string; digest: string } {
  let body = '';
  for (const r of rows) body += `${JSON.stringify(r)}\n`;
  return { body, digest: createHash('sha256').update(body).digest('hex').slice(0, 32) };
}

/** sha256 (hex, 32 chars) of the rows as they are sent: identical for a retried batch. */
export function rowsDigest(rows: readonly object[]): string {
  return encodeRows(rows).digest;
}

const dt = (s: number | null) => (s === null ? null : secondsToMicros(s));

/** A job row as inserted: its DateTime64(6) times as integer microseconds. */
export function jobInsertRow(r: JobRow): Record<string, unknown> {
  return {
    ...r,
    t_submit: secondsToMicros(r.t_submit),
    t_eligible: dt(r.t_eligible),
    t_start: dt(r.t_start),
    t_end: dt(r.t_end),
    t_inactive: dt(r.t_inactive),
    last_event_ts: secondsToMicros(r.last_event_ts),
  };
}

/** DateTime64(6) text → seconds, exact to the microsecond (the inverse of secondsToDateTime64). */
export function dateTime64ToSeconds(text: string): number {
  const [base, frac = ''] = text.split('.');
  const whole = Date.parse(`${base!.replace(' ', 'T')}Z`) / 1000;
  return (whole * 1e6 + Number(frac.padEnd(6, '0').slice(0, 6))) / 1e6;
}

/** A value read back from ClickHouse as text (strings as they are, numbers printed, anything else empty). */
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '');
const secs = (v: unknown) => (v === null || v === undefined ? null : dateTime64ToSeconds(text(v)));

export function jobFromSelectRow(x: Record<string, unknown>): JobRow {
  return {
    ...(x as unknown as JobRow),
    job_id: String(x.job_id),
    userid: x.userid === null ? null : Number(x.userid),
    ntasks: Number(x.ntasks),
    ncores: Number(x.ncores),
    ngpus: Number(x.ngpus),
    nnodes: Number(x.nnodes),
    exit_code: x.exit_code === null ? null : Number(x.exit_code),
    signal: x.signal === null || x.signal === undefined ? null : Number(x.signal),
    signal_name: text(x.signal_name),
    oom: Boolean(x.oom),
    waitstatus: x.waitstatus === null ? null : Number(x.waitstatus),
    exception_severity: x.exception_severity === null ? null : Number(x.exception_severity),
    urgency: x.urgency === null ? null : Number(x.urgency),
    nice: x.nice === null || x.nice === undefined ? null : Number(x.nice),
    priority: x.priority === null ? null : Number(x.priority),
    held: Boolean(x.held),
    success: x.success === null ? null : Boolean(x.success),
    time_limit_s: x.time_limit_s === null ? null : Number(x.time_limit_s),
    t_submit: dateTime64ToSeconds(String(x.t_submit)),
    t_eligible: secs(x.t_eligible),
    t_start: secs(x.t_start),
    t_end: secs(x.t_end),
    t_inactive: secs(x.t_inactive),
    wait_s: x.wait_s === null ? null : Number(x.wait_s),
    run_s: x.run_s === null ? null : Number(x.run_s),
    last_seq: Number(x.last_seq),
    last_event_ts: dateTime64ToSeconds(String(x.last_event_ts)),
    is_deleted: Number(x.is_deleted) ? 1 : 0,
  };
}

/** Current rows of the given jobs (grouped by cluster, one query per cluster). */
/**
 * (cluster, job id) pairs as job ids per cluster, each checked to be a decimal string: the ids
 * are inlined in the SQL, because chDB parses an Array(UInt64) parameter of quoted strings as an
 * error and JS numbers lose precision.
 */
function idsByCluster(jobs: [string, string][], caller: string): Map<string, string[]> {
  const byCluster = new Map<string, string[]>();
  for (const [cluster, id] of jobs) {
    if (!/^\d{1,20}$/.test(id)) throw new TypeError(`${caller}: job ids must be decimal strings`);
    byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), id]);
  }
  return byCluster;
}

export async function loadJobs(client: ClickHouseClient, table: string, jobs: [string, string][]): Promise<JobRow[]> {
  const out: JobRow[] = [];
  for (const [cluster, ids] of idsByCluster(jobs, 'loadJobs')) {
    const rs = await client.query({
      query: `SELECT * FROM ${table} FINAL WHERE cluster = {cluster:String} AND job_id IN (${ids.join(',')})`,
      query_params: { cluster },
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    });
    for (const row of await rs.json<Record<string, unknown>>()) out.push(jobFromSelectRow(row));
  }
  return out;
}

/**
 * The stored events of the given jobs (`job_events` FINAL), as the envelopes they were projected
 * from, in (job, seq) order: what a job's row is re-derived from (replay; a state this process
 * cannot trust). Only what the fold reads is restored (the scribe identity is the stored id).
 */
export async function loadJobEvents(client: ClickHouseClient, table: string, jobs: [string, string][]): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for (const [cluster, ids] of idsByCluster(jobs, 'loadJobEvents')) {
    const rs = await client.query({
      query: `SELECT cluster, scheduler, toString(job_id) AS job_id, seq, name, toString(ts) AS ts, ts_source, context, raw, user, scribe_id
                FROM ${table} FINAL WHERE cluster = {cluster:String} AND job_id IN (${ids.join(',')}) ORDER BY job_id, seq`,
      query_params: { cluster },
      format: 'JSONEachRow',
    });
    for (const x of await rs.json<Record<string, unknown>>()) {
      const user = text(x.user);
      out.push({
        v: 1,
        cluster: String(x.cluster),
        scheduler: x.scheduler as Envelope['scheduler'],
        job_id: String(x.job_id),
        seq: Number(x.seq),
        name: String(x.name),
        ts: dateTime64ToSeconds(String(x.ts)),
        ts_source: x.ts_source as Envelope['ts_source'],
        context: JSON.parse(String(x.context)) as Record<string, unknown>,
        raw: JSON.parse(String(x.raw)) as unknown,
        ...(user ? { user } : {}),
        scribe: { id: String(x.scribe_id), version: 'stored' },
        published_at: 0,
      });
    }
  }
  return out;
}

/** Current `actions` rows of the given commands, as [cluster, command_id] pairs. */
export async function loadActions(client: ClickHouseClient, table: string, commands: [string, string][]): Promise<ActionRow[]> {
  const byCluster = new Map<string, string[]>();
  for (const [cluster, id] of commands) byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), id]);
  const out: ActionRow[] = [];
  for (const [cluster, ids] of byCluster) {
    const rs = await client.query({
      query: `SELECT * FROM ${table} FINAL WHERE cluster = {cluster:String} AND command_id IN {ids:Array(String)}`,
      query_params: { cluster, ids },
      format: 'JSONEachRow',
    });
    for (const row of await rs.json<Record<string, unknown>>()) out.push(actionFromSelectRow(row));
  }
  return out;
}
