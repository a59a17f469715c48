/**
 * `search_jobs`: filtered, sorted, cursor-paginated job summaries from `jobs`.
 */
import { z } from 'zod';
import { SchedulerSchema } from '../ids.js';
import { ClusterArgSchema, IsoTimeSchema, JOB_STATES, JobStateSchema, TimeArgSchema, Int } from './common.js';

export const SEARCH_SORTS = ['submit_desc', 'submit_asc', 'wait_desc', 'runtime_desc'] as const;
export const SearchSortSchema = z.enum(SEARCH_SORTS, {
  error: `must be one of ${SEARCH_SORTS.join(', ')}`,
});
export type SearchSort = z.infer<typeof SearchSortSchema>;

export const SEARCH_LIMIT_MAX = 200;

const stateError = `must be one of ${JOB_STATES.join(', ')}, or a list of them`;

export const SearchJobsInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  user: z.string().min(1, { error: 'must not be empty' }).max(256).optional().describe('exact user name'),
  queue: z.string().min(1, { error: 'must not be empty' }).max(256).optional().describe('exact queue (Flux queue / Slurm partition)'),
  state: z
    .union([JobStateSchema, z.array(JobStateSchema).min(1).max(JOB_STATES.length)], { error: stateError })
    .optional()
    .describe('one state or a list: pending, running, completed, failed, canceled, timeout'),
  name: z.string().min(1, { error: 'must not be empty' }).max(256).optional().describe('case-insensitive substring of the job name'),
  submitted_after: TimeArgSchema.optional().describe('inclusive; ISO-8601 (UTC if no zone) or relative like "-24h"'),
  submitted_before: TimeArgSchema.optional().describe('exclusive; ISO-8601 (UTC if no zone) or relative like "-1h"'),
  node: z.string().min(1, { error: 'must not be empty' }).max(256).optional().describe('ran on this node'),
  held: z.boolean({ error: 'must be true or false' }).optional(),
  exit_code: Int.optional(),
  signal: z.string().min(1, { error: 'must not be empty' }).max(32).optional().describe('killed by, e.g. SIGKILL'),
  min_wait_s: z.number().min(0).optional().describe('queue wait at least (pending: so far)'),
  max_wait_s: z.number().min(0).optional(),
  min_limit_used: z.number().min(0).optional().describe('run time ÷ time limit at least, e.g. 0.9'),
  max_limit_used: z.number().min(0).optional().describe('at most, e.g. 0.1 (ended jobs with a limit)'),
  sort: SearchSortSchema.default('submit_desc').describe(
    'submit_desc (newest first, default), submit_asc, wait_desc (longest queue wait first), runtime_desc (longest run first)',
  ),
  limit: z
    .number({ error: `must be an integer from 1 to ${SEARCH_LIMIT_MAX}` })
    .int({ error: `must be an integer from 1 to ${SEARCH_LIMIT_MAX}` })
    .min(1, { error: `must be an integer from 1 to ${SEARCH_LIMIT_MAX}` })
    .max(SEARCH_LIMIT_MAX, { error: `must be an integer from 1 to ${SEARCH_LIMIT_MAX}` })
    .default(50),
  cursor: z
    .string()
    .min(1)
    .max(2048)
    .optional()
    .describe('next_cursor from the previous page, unchanged; repeat the other arguments as they were'),
});
export type SearchJobsInput = z.infer<typeof SearchJobsInputSchema>;

export const JobSummarySchema = z.object({
  cluster: z.string(),
  scheduler: SchedulerSchema,
  job_id: z.string(),
  job_id_f58: z.string().optional(),
  user: z.string(),
  queue: z.string(),
  name: z.string(),
  state: JobStateSchema,
  held: z.boolean(),
  exit_code: Int.nullable(),
  signal_name: z.string().describe("signal that killed it (SIGSEGV); '' when none"),
  ncores: Int,
  ngpus: Int,
  nnodes: Int,
  t_submit: IsoTimeSchema,
  t_start: IsoTimeSchema.nullable(),
  t_end: IsoTimeSchema.nullable(),
  wait_s: z.number().nullable().describe('queue wait in seconds; for a job still pending, seconds since submit as of as_of'),
  run_s: z.number().nullable().describe('run time in seconds; for a job still running, seconds since start as of as_of'),
});
export type JobSummary = z.infer<typeof JobSummarySchema>;

export const SearchJobsOutputSchema = z.object({
  jobs: z.array(JobSummarySchema),
  next_cursor: z.string().nullable().describe('pass as cursor for the next page; null on the last page'),
  total_matching: Int.optional().describe('jobs matching the filters (first page only)'),
  as_of: IsoTimeSchema.describe('the time relative filters and running waits are measured against (fixed across pages)'),
});
export type SearchJobsOutput = z.infer<typeof SearchJobsOutputSchema>;
