/**
 * `utilization`: core-, node- and GPU-hours used per cluster and time bucket, against capacity.
 */
import { z } from 'zod';
import { BUCKETS, BucketSchema, TimeOutSchema, WindowOutShape, filterShape } from './analytics.js';

export const UtilizationInputSchema = z.strictObject({
  ...filterShape('-24h'),
  bucket: BucketSchema.optional(),
  top_by: z.enum(['user', 'queue'], { error: 'must be user or queue' }).optional(),
  top: z.number().int().min(1).max(100).default(10),
});
export type UtilizationInput = z.infer<typeof UtilizationInputSchema>;

export const CAPACITY_SOURCES = ['configured', 'observed'] as const;

export const UsageSchema = z.object({
  core_hours: z.number(),
  node_hours: z.number(),
  gpu_hours: z.number(),
  core_util: z.number().nullable(),
  node_util: z.number().nullable(),
});
export type Usage = z.infer<typeof UsageSchema>;

/** A bucket as a row (typed loosely, as throughput's): [start, core_hours, node_hours, core_util, node_util]. */
export const UsageRowSchema = z.array(z.union([TimeOutSchema, z.number()]).nullable());
export type UsageRow = [string, number, number, number | null, number | null];

export const UtilizationOutputSchema = z.object({
  ...WindowOutShape,
  bucket: z.enum(BUCKETS),
  clusters: z.array(
    UsageSchema.extend({
      cluster: z.string(),
      capacity: z.object({
        nodes: z.number(),
        cores: z.number(),
        gpus: z.number().nullable(),
        source: z.enum(CAPACITY_SOURCES),
      }),
      buckets: z.array(UsageRowSchema).describe('[start, core_hours, node_hours, core_util, node_util]'),
    }),
  ),
  top: z
    .array(z.array(z.union([z.string(), z.number()])))
    .optional()
    .describe('[cluster, user|queue, core_hours, gpu_hours, core share]'),
  truncated: z.boolean(),
});
export type UtilizationOutput = z.infer<typeof UtilizationOutputSchema>;
