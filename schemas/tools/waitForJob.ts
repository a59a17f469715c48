/** Contract of `wait_for_job`: block until a job reaches a state (or ends), at most ~2 minutes a call. */
import { z } from 'zod';
import { ClusterArgSchema, JobIdArgSchema, JobStateSchema } from './common.js';
import { JobDetailSchema } from './getJob.js';

/** Clients give a tool call 2-4 minutes; stay below the shortest, and say when to call again. */
export const WAIT_MAX_S = 110;

export const WaitForJobInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  job_id: JobIdArgSchema,
  until_state: z
    .union([JobStateSchema, z.literal('ended'), z.literal('changed')])
    .default('ended')
    .describe("stop when the job is in this state; 'ended' (default): completed, failed, canceled or timeout; 'changed': any state change"),
  timeout_s: z.number().min(1).max(WAIT_MAX_S).default(60).describe(`seconds to wait at most (1-${WAIT_MAX_S})`),
});
export type WaitForJobInput = z.infer<typeof WaitForJobInputSchema>;

export const WaitForJobOutputSchema = z.object({
  job: JobDetailSchema,
  reached: z.boolean().describe('the job is in the asked state'),
  waited_s: z.number(),
  states_seen: z.array(JobStateSchema).describe('states in the order they were seen, the first one when the call began'),
  call_again: z.boolean().describe('not reached yet and the job can still get there: call again to keep waiting'),
});
export type WaitForJobOutput = z.infer<typeof WaitForJobOutputSchema>;
