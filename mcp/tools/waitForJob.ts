/**
 * `wait_for_job`: answers when a job reaches a state (by default: when it ends), or after
 * `timeout_s` (at most 110 s, under the 2-4 minutes clients give a tool call) with `call_again`.
 * It watches the read model (the job's row, as get_job reads it, with the caller's visibility)
 * once a second and sends `notifications/progress` on every state change when the call carries a
 * progress token, so a client shows the job moving and keeps the call alive.
 *
 * The rule of when to stop is pure (`waitOutcome`); the loop is the only I/O.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { McpServer } from '@modelcontextprotocol/server';
import { JOB_STATES, type JobState } from '../../schemas/tools/common.js';
import { WaitedJobSchema, WaitForJobInputSchema, WaitForJobOutputSchema, type WaitForJobInput, type WaitForJobOutput } from '../../schemas/tools/waitForJob.js';
import { findJob } from '../findJob.js';
import { runTool, toolResult } from '../results.js';
import { jobDetail } from '../rows.js';
import type { QueryDeps } from '../sql.js';

const ENDED: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled', 'timeout']);
const POLL_MS = 1000;

/** Whether the wait is over for a job now in `state`, having begun in `first`. */
export function waitOutcome(until: WaitForJobInput['until_state'], first: string, state: string): { reached: boolean; hopeless: boolean } {
  const ended = ENDED.has(state);
  if (until === 'ended') return { reached: ended, hopeless: false };
  if (until === 'changed') return { reached: state !== first, hopeless: false };
  if (state === until) return { reached: true, hopeless: false };
  // A job never leaves an end state, and never goes back to pending once it ran.
  const hopeless = ended || (until === 'pending' && state === 'running');
  return { reached: false, hopeless };
}

export function registerWaitForJob(server: McpServer, deps: QueryDeps & { pollMs?: number }): void {
  server.registerTool(
    'wait_for_job',
    {
      title: 'Wait for job',
      description:
        "Waits until a job reaches until_state (default 'ended': completed/failed/canceled/timeout; 'changed': any change) " +
        'or timeout_s passes (max 110), sending progress notifications on each state change. Answers where the job stands ' +
        '(get_job has the rest), whether the state was reached, and call_again when it may still get there.',
      inputSchema: WaitForJobInputSchema,
      outputSchema: WaitForJobOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'wait_for_job', async () => {
        const signal = ctx.mcpReq.signal;
        const started = Date.now();
        const progressToken = ctx.mcpReq._meta?.progressToken;
        let row = await findJob(deps, args, signal);
        const first = row.state;
        const seen: string[] = [first];
        let outcome = waitOutcome(args.until_state, first, row.state);
        while (!outcome.reached && !outcome.hopeless && !signal.aborted && Date.now() - started < args.timeout_s * 1000) {
          // an abort (the client gave up) ends the wait: the loop sees signal.aborted
          await sleep(Math.max(0, Math.min(deps.pollMs ?? POLL_MS, args.timeout_s * 1000 - (Date.now() - started))), undefined, { signal }).catch(() => undefined);
          if (signal.aborted) break;
          row = await findJob(deps, args, signal);
          if (row.state !== seen.at(-1)) {
            seen.push(row.state);
            if (progressToken !== undefined) {
              await ctx.mcpReq.notify({
                method: 'notifications/progress',
                params: { progressToken, progress: seen.length - 1, message: `${row.cluster} job ${args.job_id}: ${row.state}` },
              });
            }
          }
          outcome = waitOutcome(args.until_state, first, row.state);
        }
        const out: WaitForJobOutput = {
          job: WaitedJobSchema.parse(jobDetail(row)),
          reached: outcome.reached,
          waited_s: Math.round((Date.now() - started) / 100) / 10,
          states_seen: seen.filter((s): s is JobState => (JOB_STATES as readonly string[]).includes(s)),
          call_again: !outcome.reached && !outcome.hopeless,
        };
        return toolResult(out);
      }),
  );
}
