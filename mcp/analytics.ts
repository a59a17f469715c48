/**
 * What the analytics tools share: the resolved time window and its buckets (pure arithmetic, the
 * same in SQL and here), the cluster/user/queue filter clauses, the job-size bin expression and
 * the SQL of a job's run-interval overlap with a window. All times are integer microseconds.
 *
 * Buckets: bucket `i` covers [ORIGIN + i·width, ORIGIN + (i+1)·width) with ORIGIN a Monday
 * midnight UTC (1970-01-05), so hours, days and weeks (Monday first) line up with the UTC calendar.
 */
import {
  AUTO_BUCKET_LIMITS_S,
  BUCKET_SECONDS,
  MAX_BUCKETS,
  SIZE_BINS,
  type Bucket,
  type WaitStats,
} from '../schemas/tools/analytics.js';
import { parseTimeArg } from '../schemas/tools/common.js';
import { ToolInputError } from './results.js';
import { isoFromMicros, microsNow } from './rows.js';

export const BUCKET_ORIGIN_US = 4 * 86_400_000_000;

export interface Window {
  /** "now" for relative times and for runs still in progress. */
  asof: number;
  since: number;
  until: number;
}

/** since/until arguments → a window; refuses an empty or inverted one. */
export function resolveWindow(args: { since: string; until: string }, nowMs: number): Window {
  const asof = microsNow(nowMs);
  const since = parseTimeArg(args.since, asof);
  const until = parseTimeArg(args.until, asof);
  // The schemas accepted both, so neither is undefined; the checks keep the types honest.
  if (since === undefined) throw new ToolInputError(`since: '${args.since}' is not a time`);
  if (until === undefined) throw new ToolInputError(`until: '${args.until}' is not a time`);
  if (since >= until) {
    throw new ToolInputError(`since (${isoFromMicros(since)}) is not before until (${isoFromMicros(until)}); give a window that is not empty`);
  }
  return { asof, since, until };
}

export interface BucketPlan {
  bucket: Bucket;
  widthUs: number;
  /** Index of the first and last bucket that overlap the window. */
  first: number;
  last: number;
}

const bucketIndex = (us: number, widthUs: number) => Math.floor((us - BUCKET_ORIGIN_US) / widthUs);
export const bucketStartUs = (index: number, widthUs: number) => BUCKET_ORIGIN_US + index * widthUs;

/** The buckets of a window: the one asked for, or the default for its length; at most MAX_BUCKETS. */
export function planBuckets(w: Window, asked: Bucket | undefined): BucketPlan {
  const spanS = (w.until - w.since) / 1e6;
  const bucket = asked ?? AUTO_BUCKET_LIMITS_S.find(([, limit]) => spanS <= limit)![0];
  const widthUs = BUCKET_SECONDS[bucket] * 1e6;
  const first = bucketIndex(w.since, widthUs);
  const last = bucketIndex(w.until - 1, widthUs);
  const n = last - first + 1;
  if (n > MAX_BUCKETS) {
    const wider = bucket === 'hour' ? 'bucket "day" or ' : bucket === 'day' ? 'bucket "week" or ' : '';
    throw new ToolInputError(`the window spans ${n} ${bucket} buckets; at most ${MAX_BUCKETS}: use ${wider}a shorter window (since/until)`);
  }
  return { bucket, widthUs, first, last };
}

/** Every bucket index of a plan, in order. */
export function bucketIndexes(p: BucketPlan): number[] {
  return Array.from({ length: p.last - p.first + 1 }, (_, i) => p.first + i);
}

/** SQL: the bucket index of a microsecond time expression (params origin_us, width_us). */
export const bucketSql = (usExpr: string) => `intDiv(${usExpr} - {origin_us:Int64}, {width_us:Int64})`;

export function bucketParams(p: BucketPlan): Record<string, number> {
  return { origin_us: BUCKET_ORIGIN_US, width_us: p.widthUs };
}

export const windowParams = (w: Window): Record<string, number> => ({ since_us: w.since, until_us: w.until, asof_us: w.asof });

/** SQL: a nullable DateTime64 column inside [since, until). */
export const inWindowSql = (column: string) =>
  `(${column} IS NOT NULL AND toUnixTimestamp64Micro(${column}) >= {since_us:Int64} AND toUnixTimestamp64Micro(${column}) < {until_us:Int64})`;

/** cluster / user / queue equality filters, values as query parameters. */
export function jobFilters(args: { cluster?: string | undefined; user?: string | undefined; queue?: string | undefined }): {
  where: string[];
  params: Record<string, string>;
} {
  const where: string[] = [];
  const params: Record<string, string> = {};
  for (const key of ['cluster', 'user', 'queue'] as const) {
    const value = args[key];
    if (value === undefined) continue;
    where.push(`${key} = {f_${key}:String}`);
    params[`f_${key}`] = value;
  }
  return { where, params };
}

/** SQL: the index into SIZE_BINS of a job's ncores. Bounds are our constants, never input. */
export const SIZE_BIN_SQL = `multiIf(${SIZE_BINS.slice(0, -1)
  .map((b, i) => `ncores <= ${b.maxCores}, ${i}`)
  .join(', ')}, ${SIZE_BINS.length - 1})`;

/**
 * SQL: run start and end (microseconds) of a job that started: its end, or `asof` while it runs.
 * Selected as `run_start_us`, `run_end_us`; use with RAN_IN_WINDOW_SQL in WHERE.
 */
export const RUN_INTERVAL_SQL = `toUnixTimestamp64Micro(assumeNotNull(t_start)) AS run_start_us,
       ifNull(toUnixTimestamp64Micro(coalesce(t_end, t_inactive)), greatest({asof_us:Int64}, toUnixTimestamp64Micro(assumeNotNull(t_start)))) AS run_end_us`;

/** SQL: the job started before the window ends and had not ended when it began. */
export const RAN_IN_WINDOW_SQL = `t_start IS NOT NULL AND toUnixTimestamp64Micro(t_start) < {until_us:Int64}
       AND (coalesce(t_end, t_inactive) IS NULL OR toUnixTimestamp64Micro(coalesce(t_end, t_inactive)) > {since_us:Int64})`;

/** SQL: microseconds of [run_start_us, run_end_us) inside [lo, hi). */
export const overlapSql = (lo: string, hi: string) =>
  `greatest(toInt64(0), least(run_end_us, ${hi}) - greatest(run_start_us, ${lo}))`;

/** SQL aggregates of queue wait (wait_s, seconds) under a condition: exact percentiles. */
export const waitAggregatesSql = (cond: string) => `countIf(${cond}) AS wait_jobs,
       quantilesExactInclusiveIf(0.5, 0.9, 0.99)(assumeNotNull(wait_s), ${cond}) AS wait_q,
       avgIf(assumeNotNull(wait_s), ${cond}) AS wait_mean,
       maxIf(assumeNotNull(wait_s), ${cond}) AS wait_max`;

export interface WaitAggregatesRow {
  wait_jobs: string | number;
  wait_q: Array<number | null>;
  wait_mean: number | null;
  wait_max: number | null;
}

export function waitStats(r: WaitAggregatesRow): WaitStats {
  const jobs = Number(r.wait_jobs);
  const val = (v: number | null | undefined) => (jobs === 0 || v === null || v === undefined || !Number.isFinite(v) ? null : round(v, 3));
  return { jobs, p50_s: val(r.wait_q[0]), p90_s: val(r.wait_q[1]), p99_s: val(r.wait_q[2]), mean_s: val(r.wait_mean), max_s: val(r.wait_max) };
}

export const round = (v: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** The window as every analytics answer reports it. */
export const windowOut = (w: Window) => ({ since: isoFromMicros(w.since), until: isoFromMicros(w.until) });

/** Final job states: the job has ended. */
export const ENDED_STATES_SQL = `state IN ('completed', 'failed', 'canceled', 'timeout')`;
/** When a job ended: t_end (Flux finish or fatal exception, Slurm end), else its inactive time. */
export const END_US_SQL = `toUnixTimestamp64Micro(coalesce(t_end, t_inactive))`;
export const ENDED_IN_WINDOW_SQL = `${ENDED_STATES_SQL} AND coalesce(t_end, t_inactive) IS NOT NULL
       AND ${END_US_SQL} >= {since_us:Int64} AND ${END_US_SQL} < {until_us:Int64}`;

/** SQL: the start and end (µs) of bucket `g_bucket`, clipped to the window. */
export const BUCKET_LO_SQL = 'greatest({origin_us:Int64} + g_bucket * {width_us:Int64}, {since_us:Int64})';
export const BUCKET_HI_SQL = 'least({origin_us:Int64} + (g_bucket + 1) * {width_us:Int64}, {until_us:Int64})';

/** SQL: the indexes of the window's buckets that the interval [start, end) (µs columns) spans; ARRAY JOIN over it. */
export const bucketsSpannedSql = (start: string, end: string) =>
  `range(intDiv(greatest(${start}, {since_us:Int64}) - {origin_us:Int64}, {width_us:Int64}), intDiv(least(${end}, {until_us:Int64}) - 1 - {origin_us:Int64}, {width_us:Int64}) + 1)`;
