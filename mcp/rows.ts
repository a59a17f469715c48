/**
 * ClickHouse rows → tool results: the `jobs` select lists and their mapping, shared by the tools.
 * 64-bit values are selected as text (job ids exceed 2^53) and times as integer microseconds,
 * so nothing depends on the client's number or date output formats. Output aliases never reuse
 * a column name: ClickHouse would substitute the alias into WHERE clauses.
 */
import type { JobRow } from '../schemas/clickhouse/jobRow.js';
import { toF58 } from '../schemas/ids.js';
import type { JobDetail } from '../schemas/tools/getJob.js';
import type { JobSummary } from '../schemas/tools/searchJobs.js';
import type { JobState } from '../schemas/tools/common.js';

type Int64Text = string | number;

/** Microseconds since the epoch → '2024-05-01T10:00:00.123456Z'. */
export function isoFromMicros(us: Int64Text): string;
export function isoFromMicros(us: Int64Text | null): string | null;
export function isoFromMicros(us: Int64Text | null): string | null {
  if (us === null) return null;
  const b = BigInt(us);
  let secs = b / 1_000_000n;
  let frac = b % 1_000_000n;
  if (frac < 0n) {
    frac += 1_000_000n;
    secs -= 1n;
  }
  return `${new Date(Number(secs) * 1000).toISOString().slice(0, 19)}.${frac.toString().padStart(6, '0')}Z`;
}

/** Seconds between two microsecond times, exact to the microsecond. */
export function secondsBetween(fromUs: Int64Text, toUs: Int64Text): number {
  return Number(BigInt(toUs) - BigInt(fromUs)) / 1e6;
}

export function microsNow(nowMs: number): number {
  return Math.round(nowMs) * 1000;
}

/** The f58 id for Flux jobs (how Flux users see them); absent for other schedulers. */
export function f58For(scheduler: string, jobId: string): { job_id_f58?: string } {
  return scheduler === 'flux' ? { job_id_f58: toF58(jobId) } : {};
}

/** A job id for messages: as the agent wrote it, plus the decimal form when that differs. */
export function describeJobId(input: string, decimal: string): string {
  return input.trim() === decimal ? decimal : `${input.trim()} (${decimal})`;
}

// ---- the whole row (get_job) -----------------------------------------------------------------

export const JOB_DETAIL_COLUMNS = `
  cluster, scheduler, toString(job_id) AS job_id_s, user, userid, queue, name,
  ntasks, ncores, ngpus, nnodes, nodes, state, sched_state, result, success, exit_code,
  signal, signal_name, oom, waitstatus, exception_type, exception_severity, exception_note, urgency, nice,
  toString(priority) AS priority_s, held, dependencies, time_limit_s,
  toString(toUnixTimestamp64Micro(t_submit)) AS t_submit_us,
  toString(toUnixTimestamp64Micro(t_eligible)) AS t_eligible_us,
  toString(toUnixTimestamp64Micro(t_start)) AS t_start_us,
  toString(toUnixTimestamp64Micro(t_end)) AS t_end_us,
  toString(toUnixTimestamp64Micro(t_inactive)) AS t_inactive_us,
  wait_s, run_s, last_seq, last_event,
  toString(toUnixTimestamp64Micro(last_event_ts)) AS last_event_ts_us`;

/**
 * A `jobs` row as DETAIL_COLUMNS selects it: the projector's JobRow, with the 64-bit id and
 * priority as text and the times as integer microseconds (exact through JSON).
 */
export type JobDetailRow = Omit<
  JobRow,
  'job_id' | 'priority' | 'state' | 'is_deleted' | 't_submit' | 't_eligible' | 't_start' | 't_end' | 't_inactive' | 'last_event_ts'
> & {
  job_id_s: string;
  priority_s: string | null;
  state: JobState;
  t_submit_us: string;
  t_eligible_us: string | null;
  t_start_us: string | null;
  t_end_us: string | null;
  t_inactive_us: string | null;
  last_event_ts_us: string;
};

export function jobDetail(r: JobDetailRow): JobDetail {
  return {
    cluster: r.cluster,
    scheduler: r.scheduler,
    job_id: r.job_id_s,
    ...f58For(r.scheduler, r.job_id_s),
    user: r.user,
    userid: r.userid,
    queue: r.queue,
    name: r.name,
    ntasks: r.ntasks,
    ncores: r.ncores,
    ngpus: r.ngpus,
    nnodes: r.nnodes,
    nodes: r.nodes,
    state: r.state,
    sched_state: r.sched_state,
    result: r.result,
    success: r.success === null ? null : Boolean(r.success),
    exit_code: r.exit_code,
    signal: r.signal,
    signal_name: r.signal_name,
    oom: Boolean(r.oom),
    waitstatus: r.waitstatus,
    exception_type: r.exception_type,
    exception_severity: r.exception_severity,
    exception_note: r.exception_note,
    // Slurm has no urgency: rows projected before it was null say 0, which would read as held
    urgency: r.scheduler === 'flux' ? r.urgency : null,
    nice: r.nice,
    priority: r.priority_s === null ? null : Number(r.priority_s),
    held: Boolean(r.held),
    dependencies: r.dependencies,
    time_limit_s: r.time_limit_s,
    t_submit: isoFromMicros(r.t_submit_us),
    t_eligible: isoFromMicros(r.t_eligible_us),
    t_start: isoFromMicros(r.t_start_us),
    t_end: isoFromMicros(r.t_end_us),
    t_inactive: isoFromMicros(r.t_inactive_us),
    wait_s: r.wait_s,
    run_s: r.run_s,
    last_seq: r.last_seq,
    last_event: r.last_event,
    last_event_ts: isoFromMicros(r.last_event_ts_us),
  };
}

// ---- the compact summary (search_jobs) -------------------------------------------------------

/**
 * Queue wait and run time in microseconds, measured to `{asof:Int64}` while still in progress;
 * -1 when they do not apply (never started, or no recorded value). Also the sort keys.
 */
export const WAIT_US_EXPR = `multiIf(
    wait_s IS NOT NULL, toInt64(round(assumeNotNull(wait_s) * 1000000)),
    state = 'pending', greatest(toInt64(0), {asof:Int64} - toUnixTimestamp64Micro(t_submit)),
    toInt64(-1))`;
export const RUN_US_EXPR = `multiIf(
    run_s IS NOT NULL, toInt64(round(assumeNotNull(run_s) * 1000000)),
    state = 'running' AND t_start IS NOT NULL, greatest(toInt64(0), {asof:Int64} - toUnixTimestamp64Micro(assumeNotNull(t_start))),
    toInt64(-1))`;

export const JOB_SUMMARY_COLUMNS = `
  cluster, scheduler, toString(job_id) AS job_id_s, user, queue, name, state, held, exit_code,
  signal_name, ncores, ngpus, nnodes,
  toString(toUnixTimestamp64Micro(t_submit)) AS t_submit_us,
  toString(toUnixTimestamp64Micro(t_start)) AS t_start_us,
  toString(toUnixTimestamp64Micro(t_end)) AS t_end_us,
  wait_s, run_s`;

export interface JobSummaryRow {
  cluster: string;
  scheduler: 'flux' | 'slurm';
  job_id_s: string;
  user: string;
  queue: string;
  name: string;
  state: JobState;
  held: boolean;
  exit_code: number | null;
  signal_name: string;
  ncores: number;
  ngpus: number;
  nnodes: number;
  t_submit_us: string;
  t_start_us: string | null;
  t_end_us: string | null;
  wait_s: number | null;
  run_s: number | null;
}

/** Seconds to the microsecond (as WAIT_US_EXPR / RUN_US_EXPR round them). */
const toMicros = (s: number) => {
  const us = Math.round(s * 1e6);
  return us < 0 ? null : us / 1e6;
};

/**
 * Queue wait and run time in seconds as of `asofUs`, as WAIT_US_EXPR / RUN_US_EXPR compute them
 * in SQL: the recorded value, else measured to `asofUs` while still in progress, else null.
 * In JavaScript so that the summary rows do not depend on "now" (and can be cached).
 */
export function waitAndRun(r: Pick<JobSummaryRow, 'state' | 't_submit_us' | 't_start_us' | 'wait_s' | 'run_s'>, asofUs: number): { wait_s: number | null; run_s: number | null } {
  const since = (us: string) => Math.max(0, secondsBetween(us, asofUs));
  return {
    wait_s: r.wait_s !== null ? toMicros(r.wait_s) : r.state === 'pending' ? since(r.t_submit_us) : null,
    run_s: r.run_s !== null ? toMicros(r.run_s) : r.state === 'running' && r.t_start_us !== null ? since(r.t_start_us) : null,
  };
}

export function jobSummary(r: JobSummaryRow, asofUs: number): JobSummary {
  return {
    cluster: r.cluster,
    scheduler: r.scheduler,
    job_id: r.job_id_s,
    ...f58For(r.scheduler, r.job_id_s),
    user: r.user,
    queue: r.queue,
    name: r.name,
    state: r.state,
    held: Boolean(r.held),
    exit_code: r.exit_code,
    signal_name: r.signal_name,
    ncores: r.ncores,
    ngpus: r.ngpus,
    nnodes: r.nnodes,
    t_submit: isoFromMicros(r.t_submit_us),
    t_start: isoFromMicros(r.t_start_us),
    t_end: isoFromMicros(r.t_end_us),
    ...waitAndRun(r, asofUs),
  };
}
