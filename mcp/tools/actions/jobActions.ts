/**
 * The single-job action tools — cancel_job, hold_job, release_job, set_urgency, signal_job — and
 * submit_job. Each checks the job against the read model (own jobs unless admin), sends one
 * command to the job's cluster and answers the scribe's result (or `pending`). submit_job runs
 * as the caller's scheduler user (on_behalf_of), admins' too; an identity without one is refused.
 */
import type { CallToolResult, McpServer, ToolAnnotations } from '@modelcontextprotocol/server';
import type { z } from 'zod';
import type { Command, CommandArgs } from '../../../schemas/commands/index.js';
import {
  ActionAnswerSchema,
  CancelJobInputSchema,
  JobActionInputSchema,
  SetUrgencyInputSchema,
  SignalJobInputSchema,
  SubmitJobInputSchema,
  FLUX_URGENCY_MAX,
  type ActionOutput,
} from '../../../schemas/tools/actions.js';
import { toolResult } from '../../results.js';
import { ActionRefusal, buildCommand, findActionJob, runAction, sendCommand, submitUser, type ActionDeps, type ActionJobRow } from './common.js';

interface JobActionSpec<I> {
  name: string;
  title: string;
  description: string;
  action: Exclude<Command['action'], 'submit'>;
  verb: string;
  inputSchema: z.ZodType<I>;
  annotations: ToolAnnotations;
  args(input: I): CommandArgs;
  /** Refuses arguments that do not fit the job's scheduler (a message for the agent), else undefined. */
  check?(input: I, job: ActionJobRow): string | undefined;
}

/** Changes the scheduler (not read-only); the domain is the clusters jobscribe knows (closed world). */
const ACTS = { readOnlyHint: false, openWorldHint: false } as const;
const WAITS = 'Waits for the result, else answers pending (see command_status).';

function jobActionConfig<I>(spec: JobActionSpec<I>) {
  return {
    title: spec.title,
    description: `${spec.description} Own jobs only unless admin. ${WAITS}`,
    outputSchema: ActionAnswerSchema,
    annotations: { ...ACTS, ...spec.annotations },
  };
}

function jobActionHandler<I extends { cluster?: string | undefined; job_id: string }>(deps: ActionDeps, spec: JobActionSpec<I>) {
  return (input: I, ctx: { mcpReq: { signal: AbortSignal } }): Promise<CallToolResult> =>
    runAction(deps, spec.name, async () => {
      const signal = ctx.mcpReq.signal;
      const job = await findActionJob(deps, input, spec.verb, signal);
      const problem = spec.check?.(input, job);
      if (problem) throw new ActionRefusal(problem, problem, { cluster: job.cluster, job_ids: [job.job_id_s] });
      const command = buildCommand(deps, { cluster: job.cluster, action: spec.action, job_ids: [job.job_id_s], args: spec.args(input) });
      const out: ActionOutput = { command: await sendCommand(deps, spec.name, command, signal) };
      return toolResult(out);
    });
}

function registerJobAction<I extends { cluster?: string | undefined; job_id: string }>(
  server: McpServer,
  deps: ActionDeps,
  spec: JobActionSpec<I> & { inputSchema: typeof JobActionInputSchema | typeof CancelJobInputSchema | typeof SetUrgencyInputSchema | typeof SignalJobInputSchema },
): void {
  // One registration shape for the five tools; the SDK's overloads cannot follow a generic schema.
  (server.registerTool.bind(server) as (name: string, config: object, cb: ReturnType<typeof jobActionHandler<I>>) => void)(
    spec.name,
    { ...jobActionConfig(spec), inputSchema: spec.inputSchema },
    jobActionHandler(deps, spec),
  );
}

export function registerJobActions(server: McpServer, deps: ActionDeps): void {
  registerJobAction(server, deps, {
    name: 'cancel_job',
    title: 'Cancel job',
    description: 'Cancel one pending or running job.',
    action: 'cancel',
    verb: 'cancel',
    inputSchema: CancelJobInputSchema,
    annotations: { destructiveHint: true, idempotentHint: false },
    args: (a) => (a.note !== undefined ? { note: a.note } : {}),
  });
  registerJobAction(server, deps, {
    name: 'hold_job',
    title: 'Hold job',
    description: 'Hold a pending job (urgency 0) so it is not scheduled until released.',
    action: 'hold',
    verb: 'hold',
    inputSchema: JobActionInputSchema,
    annotations: { destructiveHint: false, idempotentHint: true },
    args: () => ({}),
  });
  registerJobAction(server, deps, {
    name: 'release_job',
    title: 'Release job',
    description: 'Release a held job (back to the default urgency 16).',
    action: 'release',
    verb: 'release',
    inputSchema: JobActionInputSchema,
    annotations: { destructiveHint: false, idempotentHint: true },
    args: () => ({}),
  });
  registerJobAction(server, deps, {
    name: 'set_urgency',
    title: 'Set urgency',
    description: "Set a pending job's urgency (Slurm: priority).",
    action: 'urgency',
    verb: 'reprioritize',
    inputSchema: SetUrgencyInputSchema,
    annotations: { destructiveHint: false, idempotentHint: true },
    args: (a) => ({ urgency: a.urgency }),
    check: (a, job) =>
      job.scheduler === 'flux' && a.urgency > FLUX_URGENCY_MAX ? `urgency ${a.urgency}: a Flux job's urgency is 0..${FLUX_URGENCY_MAX} (16 is the default)` : undefined,
  });
  registerJobAction(server, deps, {
    name: 'signal_job',
    title: 'Signal job',
    description: 'Send a signal (default TERM) to a running job\'s tasks.',
    action: 'signal',
    verb: 'signal',
    inputSchema: SignalJobInputSchema,
    annotations: { destructiveHint: true, idempotentHint: false },
    args: (a) => ({ signal: a.signal }),
  });

  server.registerTool(
    'submit_job',
    {
      title: 'Submit job',
      description: `Submit a job to a cluster as your scheduler user (an identity without one cannot submit). ${WAITS}`,
      inputSchema: SubmitJobInputSchema,
      outputSchema: ActionAnswerSchema,
      annotations: { ...ACTS, destructiveHint: false, idempotentHint: false },
    },
    (input, ctx) =>
      runAction(deps, 'submit_job', async () => {
        const user = submitUser(deps.identity);
        const command = buildCommand(deps, { cluster: input.cluster, action: 'submit', job_ids: [], args: { submit: input.submit }, on_behalf_of: user });
        const out: ActionOutput = { command: await sendCommand(deps, 'submit_job', command, ctx.mcpReq.signal) };
        return toolResult(out);
      }),
  );
}
