/**
 * The MCP prompts: short message templates that tell the agent which jobscribe tools to call, in
 * what order, and what to conclude. `diagnose_job` (one job's wait or failure), `queue_report`
 * (the queue now, per cluster), `user_report` (one user's jobs over a window). Arguments are
 * strings (MCP prompt arguments are); cluster, job id and user complete from the read model.
 * The texts are pure functions (`*Text`) so they can be checked without a server.
 */
import { completable, type GetPromptResult, type McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { ClusterIdSchema } from '../schemas/ids.js';
import { JobIdArgSchema, TimeArgSchema } from '../schemas/tools/common.js';
import { completeClusters, completeJobIds, completeUsers, safeCompletion } from './resources.js';
import type { QueryDeps } from './sql.js';

export const DEFAULT_USER_REPORT_WINDOW = '-7d';

function userMessage(description: string, text: string): GetPromptResult {
  return { description, messages: [{ role: 'user', content: { type: 'text', text } }] };
}

const onCluster = (cluster: string | undefined) => (cluster ? ` on cluster ${cluster}` : '');
const clusterArg = (cluster: string | undefined) => (cluster ? `, cluster "${cluster}"` : '');

export function diagnoseJobText(args: { cluster?: string | undefined; job_id: string }): string {
  const id = args.job_id.trim();
  const c = clusterArg(args.cluster);
  return [
    `Diagnose job ${id}${onCluster(args.cluster)} with the jobscribe tools.`,
    `1. get_job (job_id "${id}"${c}): note state, result, exit code, exception, held, dependencies, queue, requested cores/GPUs/nodes, time limit, wait_s and run_s.`,
    `2. job_timeline (job_id "${id}"${c}): find where the time went (queue wait, dependency wait, hold, run) and any exception, requeue or signal events.`,
    `3. If it waited long or is still pending: queue_summary${args.cluster ? ` (cluster "${args.cluster}")` : ''} and wait_time_stats for its cluster and queue over the last 7 days, to see whether that wait is usual for its size.`,
    '4. If it failed, was canceled or timed out: failure_analysis for its cluster and user over the last 7 days, to see whether the same exit code, exception or nodes hit other jobs.',
    'Conclude in a few sentences: what happened to the job, why (held, dependency, resources or priority, node or application failure, time limit), whether it is unusual, and what the user should change. ' +
      'Quote job ids, UTC times and numbers from the tool results; never guess a value the tools did not return.',
  ].join('\n');
}

export function queueReportText(args: { cluster?: string | undefined }): string {
  const scope = args.cluster ? `cluster ${args.cluster}` : 'every cluster';
  const c = args.cluster ? ` (cluster "${args.cluster}")` : '';
  return [
    `Report on the queue of ${scope} with the jobscribe tools.`,
    `1. cluster_status${c}: if a cluster is stale or lagging, say so first: the counts below may be behind.`,
    `2. queue_summary${c} grouped by queue, then by user: pending, held and running jobs, the oldest pending jobs, and why jobs are pending (held, dependency, resources or priority).`,
    `3. wait_time_stats and throughput${c} for the last 24 hours: p50/p90 queue wait per queue, and jobs submitted/started/completed per hour.`,
    'Conclude: per cluster, its health and backlog; which queues and users hold most pending work; the oldest pending jobs and why they wait; whether today’s waits are unusual. ' +
      'Use only numbers the tools returned.',
  ].join('\n');
}

export function userReportText(args: { user: string; window?: string | undefined }): string {
  const window = args.window?.trim() || DEFAULT_USER_REPORT_WINDOW;
  return [
    `Report on the jobs of user ${args.user} since ${window} with the jobscribe tools.`,
    `1. user_summary (user "${args.user}", since ${window}): jobs by state, core-hours, typical waits and run times.`,
    `2. search_jobs (user "${args.user}", submitted_after "${window}"): the recent jobs; again with state "failed" for failures.`,
    `3. failure_analysis for user "${args.user}" since ${window}: failures by result, exit code, exception and node, with examples.`,
    `4. wait_time_stats since ${window} for the queues the user used, to compare the user's waits with everyone's.`,
    'Conclude: how much the user ran, how often jobs failed and the main causes (with example job ids), whether their waits are longer than usual and why, and concrete advice (time limits, resource requests, queues). ' +
      'Use only numbers the tools returned.',
  ].join('\n');
}

export function registerPrompts(server: McpServer, deps: QueryDeps): void {
  const clusterArgSchema = () =>
    completable(
      ClusterIdSchema.describe('cluster name as jobscribe records it; omit when the id is unique'),
      (value: string) => safeCompletion(deps, 'cluster', () => completeClusters(deps, value)),
    ).optional();

  server.registerPrompt(
    'diagnose_job',
    {
      title: 'Diagnose a job',
      description: 'Why did this job wait so long, fail or get canceled? Walks get_job, job_timeline and the comparison tools.',
      argsSchema: z.object({
        cluster: clusterArgSchema(),
        job_id: completable(
          JobIdArgSchema.describe('job id: decimal or Flux f58 (ƒRcvRGc7)'),
          (value: string, context) => safeCompletion(deps, 'job id', () => completeJobIds(deps, context?.arguments?.cluster || undefined, value)),
        ),
      }),
    },
    (args) => userMessage(`Diagnose job ${args.job_id}${onCluster(args.cluster)}`, diagnoseJobText(args)),
  );

  server.registerPrompt(
    'queue_report',
    {
      title: 'Queue report',
      description: 'What is queued now, how healthy the data is, who waits and why; per cluster or for one.',
      argsSchema: z.object({ cluster: clusterArgSchema() }),
    },
    (args) => userMessage(`Queue report for ${args.cluster ? `cluster ${args.cluster}` : 'every cluster'}`, queueReportText(args)),
  );

  server.registerPrompt(
    'user_report',
    {
      title: 'User report',
      description: "One user's jobs over a window: volume, failures and their causes, waits compared with everyone's.",
      argsSchema: z.object({
        user: completable(z.string().min(1).max(256).describe('scheduler user name'), (value: string) =>
          safeCompletion(deps, 'user', () => completeUsers(deps, value)),
        ),
        window: TimeArgSchema.optional()
          .describe(`start of the window: "-7d" (default), "-24h", "-2w" or an ISO-8601 date`),
      }),
    },
    (args) => userMessage(`Report on user ${args.user}`, userReportText(args)),
  );
}
