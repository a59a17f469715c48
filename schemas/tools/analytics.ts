/**
 * Pieces shared by the five analytics tool contracts (wait_time_stats, throughput,
 * failure_analysis, utilization, user_summary): the job filters, the time window and its buckets,
 * and the job-size bins. Schemas here are kept terse: every tool definition is sent to the agent
 * on tools/list, so each description word costs tokens in every session.
 */
import { z } from 'zod';
import { ClusterNameSchema, TimeArgSchema } from './common.js';

/** Time bucket widths; buckets are aligned to UTC hours, days and Monday-started weeks. */
export const BUCKETS = ['hour', 'day', 'week'] as const;
export type Bucket = (typeof BUCKETS)[number];
export const BUCKET_SECONDS: Record<Bucket, number> = { hour: 3600, day: 86400, week: 604800 };

/** Most buckets one answer may have (per cluster). */
export const MAX_BUCKETS = 200;

/**
 * The bucket chosen when none is given: hour for windows up to 3 days, day up to 90 days, else
 * week.
 */
export const AUTO_BUCKET_LIMITS_S: ReadonlyArray<[Bucket, number]> = [
  ['hour', 3 * 86400],
  ['day', 90 * 86400],
  ['week', Infinity],
];

/**
 * Job-size bins on allocated cores (ncores): upper bounds, inclusive. The last bin is open.
 * Labels are what the tools return.
 */
export const SIZE_BINS: ReadonlyArray<{ label: string; maxCores: number }> = [
  { label: '1', maxCores: 1 },
  { label: '2-16', maxCores: 16 },
  { label: '17-64', maxCores: 64 },
  { label: '65-256', maxCores: 256 },
  { label: '257-1024', maxCores: 1024 },
  { label: '1025+', maxCores: Infinity },
];

/**
 * Filter arguments. Checked with refine, not regex/min/max: those would be published in every
 * tool's JSON Schema, and the error messages already say what is allowed.
 */
const name = (what: string) =>
  z
    .string({ error: `must be a string: the exact ${what}` })
    .refine((s) => s.length >= 1 && s.length <= 256, { error: `must be the exact ${what}, 1 to 256 characters` });

export const UserArgSchema = name('user name');
export const QueueArgSchema = name('queue (Flux queue / Slurm partition)');
export const BucketSchema = z.enum(BUCKETS, { error: `must be one of ${BUCKETS.join(', ')}` });

/** cluster, user, queue and the [since, until) window; `since` defaults to `defaultSince`. */
export function filterShape(defaultSince: string) {
  return {
    cluster: ClusterNameSchema.optional(),
    user: UserArgSchema.optional(),
    queue: QueueArgSchema.optional(),
    since: TimeArgSchema.default(defaultSince),
    until: TimeArgSchema.default('now'),
  };
}

/** How many of a count the tools return (`top`, `limit`). */
export const topSchema = (def: number, max: number) =>
  z
    .number({ error: `must be an integer from 1 to ${max}` })
    .int({ error: `must be an integer from 1 to ${max}` })
    .min(1, { error: `must be an integer from 1 to ${max}` })
    .max(max, { error: `must be an integer from 1 to ${max}` })
    .default(def);

/**
 * Output times: plain strings (UTC ISO-8601, microseconds). Not IsoTimeSchema: its
 * `format: date-time` would turn every row tuple's `type: [string, number]` into an anyOf, in
 * every tool definition.
 */
export const TimeOutSchema = z.string();

/** The window as applied, in every analytics answer. */
export const WindowOutShape = { since: TimeOutSchema, until: TimeOutSchema };

/** Queue-wait statistics in seconds; null when no job qualifies. */
export const WaitStatsSchema = z.object({
  jobs: z.number(),
  p50_s: z.number().nullable(),
  p90_s: z.number().nullable(),
  p99_s: z.number().nullable(),
  mean_s: z.number().nullable(),
  max_s: z.number().nullable(),
});
export type WaitStats = z.infer<typeof WaitStatsSchema>;
