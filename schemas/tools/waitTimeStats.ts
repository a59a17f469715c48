/**
 * `wait_time_stats`: queue-wait percentiles of the jobs that started in a window, grouped.
 */
import { z } from 'zod';
import { BucketSchema, TimeOutSchema, WaitStatsSchema, WindowOutShape, filterShape } from './analytics.js';

export const WAIT_GROUPINGS = ['cluster', 'queue', 'user', 'size'] as const;

export const WaitTimeStatsInputSchema = z.strictObject({
  ...filterShape('-24h'),
  group_by: z
    .array(z.enum(WAIT_GROUPINGS, { error: `must be a list of ${WAIT_GROUPINGS.join(', ')}` }))
    .default(['cluster']),
  bucket: BucketSchema.optional().describe('also split by start time'),
});
export type WaitTimeStatsInput = z.infer<typeof WaitTimeStatsInputSchema>;

export const WaitGroupSchema = WaitStatsSchema.extend({
  cluster: z.string().optional(),
  queue: z.string().optional(),
  user: z.string().optional(),
  size: z.string().optional(),
  bucket_start: TimeOutSchema.optional(),
});
export type WaitGroup = z.infer<typeof WaitGroupSchema>;

export const WaitTimeStatsOutputSchema = z.object({
  ...WindowOutShape,
  groups: z.array(WaitGroupSchema),
  truncated: z.boolean(),
});
export type WaitTimeStatsOutput = z.infer<typeof WaitTimeStatsOutputSchema>;
