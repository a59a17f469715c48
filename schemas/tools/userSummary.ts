/**
 * `user_summary`: one user's jobs in a window: counts by state, core-hours, queue waits and the
 * most recent failures.
 */
import { z } from 'zod';
import { ClusterNameSchema, TimeArgSchema } from './common.js';
import { TimeOutSchema, UserArgSchema, WaitStatsSchema, WindowOutShape, topSchema } from './analytics.js';

export const UserSummaryInputSchema = z.strictObject({
  user: UserArgSchema,
  cluster: ClusterNameSchema.optional(),
  since: TimeArgSchema.default('-7d'),
  until: TimeArgSchema.default('now'),
  failures: topSchema(5, 20),
});
export type UserSummaryInput = z.infer<typeof UserSummaryInputSchema>;

export const RecentFailureSchema = z.object({
  cluster: z.string(),
  job_id: z.string(),
  name: z.string(),
  state: z.string(),
  exit_code: z.number().nullable(),
  exception_type: z.string().nullable(),
  ended: TimeOutSchema,
});
export type RecentFailure = z.infer<typeof RecentFailureSchema>;

export const UserSummaryOutputSchema = z.object({
  user: z.string(),
  ...WindowOutShape,
  submitted: z.number(),
  by_state: z.record(z.string(), z.number()),
  core_hours: z.number(),
  node_hours: z.number(),
  wait: WaitStatsSchema,
  recent_failures: z.array(RecentFailureSchema).optional().describe("absent: not yours to read"),
});
export type UserSummaryOutput = z.infer<typeof UserSummaryOutputSchema>;
