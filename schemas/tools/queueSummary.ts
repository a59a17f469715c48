/**
 * `queue_summary`: what is queued and running now, per cluster and per queue or user.
 */
import { z } from 'zod';
import { ClusterArgSchema, IsoTimeSchema, Int } from './common.js';

export const QUEUE_GROUPINGS = ['cluster', 'queue', 'user'] as const;

export const QueueSummaryInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  group_by: z
    .enum(QUEUE_GROUPINGS, { error: `must be one of ${QUEUE_GROUPINGS.join(', ')}` })
    .default('queue')
    .describe('group rows per cluster, or per queue or user within each cluster (default queue)'),
});
export type QueueSummaryInput = z.infer<typeof QueueSummaryInputSchema>;

export const PendingReasonsSchema = z
  .object({
    held: Int.describe('held by the user or an admin'),
    dependency: Int.describe('not held, waiting on dependencies'),
    resources_or_priority: Int.describe('not held, no dependencies: waiting for resources or priority'),
  })
  .describe('best-effort split of pending (the three add up to pending)');

export const OldestPendingSchema = z.object({
  job_id: z.string().optional().describe("omitted when the job is another user's and you may not read its details"),
  job_id_f58: z.string().optional(),
  user: z.string().optional().describe('omitted with job_id'),
  submitted: IsoTimeSchema,
  waiting_s: z.number().describe('seconds since submit, as of as_of'),
});

export const QueueCountsSchema = z.object({
  cluster: z.string(),
  queue: z.string().optional(),
  user: z.string().optional(),
  pending: Int.describe('pending jobs, held ones included'),
  held: Int.describe('held jobs (a subset of pending)'),
  running: Int,
  pending_reasons: PendingReasonsSchema,
  oldest_pending: OldestPendingSchema.nullable(),
})
  // groups and clusters share one definition in the published JSON Schema ($defs)
  .meta({ id: 'QueueCounts' });
export type QueueCounts = z.infer<typeof QueueCountsSchema>;

export const QueueSummaryOutputSchema = z.object({
  as_of: IsoTimeSchema,
  group_by: z.enum(QUEUE_GROUPINGS),
  groups: z.array(QueueCountsSchema).describe('groups with pending or running jobs, most pending first'),
  clusters: z.array(QueueCountsSchema).describe('totals per cluster'),
  truncated: z.boolean().describe('true when there were more groups than returned'),
});
export type QueueSummaryOutput = z.infer<typeof QueueSummaryOutputSchema>;
