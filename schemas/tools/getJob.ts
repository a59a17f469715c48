/**
 * `get_job`: one job's whole `jobs` row (projector/tables/jobs.ts), times as ISO-8601.
 */
import { z } from 'zod';
import { SchedulerSchema } from '../ids.js';
import { ClusterArgSchema, IsoTimeSchema, JobIdArgSchema, JobStateSchema, Int } from './common.js';

export const GetJobInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  job_id: JobIdArgSchema,
});
export type GetJobInput = z.infer<typeof GetJobInputSchema>;

const nullableTime = IsoTimeSchema.nullable();

export const JobDetailSchema = z.object({
  cluster: z.string(),
  scheduler: SchedulerSchema,
  job_id: z.string().describe('decimal job id'),
  job_id_f58: z.string().optional().describe('Flux f58 form of job_id (Flux jobs only)'),
  user: z.string(),
  userid: Int.nullable(),
  queue: z.string(),
  name: z.string(),
  ntasks: Int,
  ncores: Int,
  ngpus: Int,
  nnodes: Int,
  nodes: z.array(z.string()),
  state: JobStateSchema,
  sched_state: z.string().describe("the scheduler's own state (Flux SCHED, Slurm PENDING...)"),
  result: z.string().describe("the scheduler's own result; '' while active"),
  success: z.boolean().nullable(),
  exit_code: Int.nullable().describe('exit status when the process exited; null: killed by a signal, or never ran'),
  signal: Int.nullable().describe('signal that ended it'),
  signal_name: z.string().describe("e.g. SIGSEGV; '' when none"),
  oom: z.boolean().describe('the scheduler says it ran out of memory'),
  waitstatus: Int.nullable(),
  exception_type: z.string(),
  exception_severity: Int.nullable(),
  exception_note: z.string(),
  urgency: Int.nullable().describe('Flux urgency (0 held, 16 default); null for Slurm'),
  nice: Int.nullable().describe('Slurm nice; null for Flux'),
  priority: z.number().nullable(),
  held: z.boolean(),
  dependencies: z.array(z.string()),
  time_limit_s: z.number().nullable(),
  t_submit: IsoTimeSchema,
  t_eligible: nullableTime,
  t_start: nullableTime,
  t_end: nullableTime,
  t_inactive: nullableTime,
  wait_s: z.number().nullable(),
  run_s: z.number().nullable(),
  last_seq: Int,
  last_event: z.string(),
  last_event_ts: IsoTimeSchema,
});
export type JobDetail = z.infer<typeof JobDetailSchema>;

export const GetJobOutputSchema = z.object({ job: JobDetailSchema });
export type GetJobOutput = z.infer<typeof GetJobOutputSchema>;
