/**
 * `job_timeline`: one job's events in order, the time spent in each phase, and a one-line summary.
 */
import { z } from 'zod';
import { ClusterArgSchema, IsoTimeSchema, JobIdArgSchema, JobStateSchema, Int } from './common.js';

export const JobTimelineInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  job_id: JobIdArgSchema,
});
export type JobTimelineInput = z.infer<typeof JobTimelineInputSchema>;

export const TimelineEventSchema = z.object({
  seq: Int,
  name: z.string().describe("event name as the scheduler spells it (Flux RFC 21: submit, alloc, start, finish, clean...)"),
  time: IsoTimeSchema,
  time_source: z.enum(['scheduler', 'poll']).describe("'poll': the scheduler gave no time; this is when it was noticed"),
  since_prev_s: z.number().nullable().describe('seconds since the previous event (null for the first)'),
  context: z.record(z.string(), z.unknown()),
});
export type TimelineEvent = z.infer<typeof TimelineEventSchema>;

const phase = z.number().nullable();
export const PhaseDurationsSchema = z
  .object({
    pending_s: phase.describe('submit → start (or → end of job if it never started)'),
    eligible_wait_s: phase.describe('part of pending_s spent eligible, waiting for resources'),
    run_s: phase.describe('start → end'),
    cleanup_s: phase.describe('end → inactive (epilog, release)'),
    total_s: phase.describe('submit → inactive'),
  })
  .describe('seconds per phase; null if the phase did not happen; a phase still in progress is measured to as_of');
export type PhaseDurations = z.infer<typeof PhaseDurationsSchema>;

export const JobTimelineOutputSchema = z.object({
  cluster: z.string(),
  job_id: z.string(),
  job_id_f58: z.string().optional(),
  state: JobStateSchema,
  summary: z.string(),
  durations: PhaseDurationsSchema,
  events: z.array(TimelineEventSchema),
  truncated: z.boolean().describe('true when the job has more events than returned'),
  as_of: IsoTimeSchema,
});
export type JobTimelineOutput = z.infer<typeof JobTimelineOutputSchema>;
