/**
 * `throughput`: jobs submitted, started and ended (by final state) per time bucket and cluster.
 */
import { z } from 'zod';
import { BUCKETS, BucketSchema, TimeOutSchema, WindowOutShape, filterShape } from './analytics.js';

export const ThroughputInputSchema = z.strictObject({
  ...filterShape('-24h'),
  bucket: BucketSchema.optional(),
  backlog: z.boolean({ error: 'must be true or false' }).default(false),
});
export type ThroughputInput = z.infer<typeof ThroughputInputSchema>;

export const ThroughputCountsSchema = z.object({
  submitted: z.number(),
  started: z.number(),
  completed: z.number(),
  failed: z.number(),
  canceled: z.number(),
  timeout: z.number(),
});
export type ThroughputCounts = z.infer<typeof ThroughputCountsSchema>;

/**
 * A bucket as a row: time series are long, and rows keep answers short. Typed loosely (not a
 * z.tuple, whose JSON Schema is three times longer); the description names the columns.
 */
export const ThroughputRowSchema = z.array(z.union([TimeOutSchema, z.number()]));
export type ThroughputRow = [string, number, number, number, number, number, number];

export const ThroughputOutputSchema = z.object({
  ...WindowOutShape,
  bucket: z.enum(BUCKETS),
  clusters: z.array(
    z.object({
      cluster: z.string(),
      totals: ThroughputCountsSchema,
      buckets: z.array(ThroughputRowSchema).describe('[start, submitted, started, completed, failed, canceled, timeout]'),
      backlog: z.array(z.number()).optional().describe('per bucket: mean jobs waiting'),
      peak_backlog: ThroughputRowSchema.optional().describe('[start, mean jobs waiting] of the fullest bucket'),
    }),
  ),
  truncated: z.boolean(),
});
export type ThroughputOutput = z.infer<typeof ThroughputOutputSchema>;
