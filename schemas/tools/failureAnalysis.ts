/**
 * `failure_analysis`: the jobs that ended unsuccessfully in a window, counted per result,
 * exception type, exit code (jobs whose process exited), signal (by name), user, queue and node,
 * with example jobs.
 */
import { z } from 'zod';
import { WindowOutShape, filterShape, topSchema } from './analytics.js';

export const FAILURE_DIMENSIONS = ['result', 'exception_type', 'exit_code', 'signal', 'user', 'queue', 'node'] as const;
export type FailureDimension = (typeof FAILURE_DIMENSIONS)[number];
export const FAILURE_EXAMPLES = 3;

export const FailureAnalysisInputSchema = z.strictObject({
  ...filterShape('-24h'),
  include_canceled: z.boolean({ error: 'must be true or false' }).default(false),
  top: topSchema(5, 50).describe('values per dimension'),
});
export type FailureAnalysisInput = z.infer<typeof FailureAnalysisInputSchema>;

export const FailureValueSchema = z.object({
  value: z.string().nullable(),
  jobs: z.number(),
  examples: z.array(z.object({ cluster: z.string(), job_id: z.string() })),
});
export type FailureValue = z.infer<typeof FailureValueSchema>;

export const FailureAnalysisOutputSchema = z.object({
  ...WindowOutShape,
  ended: z.number().describe('all jobs ended in the window'),
  failures: z.number(),
  by: z.record(z.enum(FAILURE_DIMENSIONS), z.array(FailureValueSchema)),
});
export type FailureAnalysisOutput = z.infer<typeof FailureAnalysisOutputSchema>;
