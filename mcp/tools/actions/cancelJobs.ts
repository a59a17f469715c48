/**
 * `cancel_jobs`: cancel every pending/running job of one cluster matching a filter, in two calls.
 * The first (no `confirm`) is a dry run: how many jobs, the first few, and a confirmation token
 * bound to the caller, the exact filters and the resolved job id set (mcp/commands.ts). The
 * second, with the token, re-resolves the set and sends one cancel command for it only if the
 * set is unchanged; more jobs than the approval threshold make it a command awaiting approval.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { CancelJobsInputSchema, CancelJobsOutputSchema, DRY_RUN_SHOWN, type CancelJobsInput, type CancelJobsOutput } from '../../../schemas/tools/actions.js';
import { checkConfirmationToken, confirmationToken, type BulkPlan } from '../../commands.js';
import { toolResult } from '../../results.js';
import { selectRows } from '../../sql.js';
import { ActionRefusal, NO_SENDER, buildCommand, isAdmin, requireActor, runAction, sendCommand, type ActionDeps } from './common.js';

/** How long a dry run's token confirms its set. */
export const CONFIRM_TTL_S = 300;

interface BulkJobRow {
  job_id_s: string;
  user: string;
  queue: string;
  name: string;
  state: string;
}

/** The filters as the token binds them (absent = null, states sorted). */
export type BulkFilter = { cluster: string; user: string | null; queue: string | null; states: string[]; name: string | null };

/** The caller's filters, with a plain user's own user forced in. */
export function bulkFilter(input: CancelJobsInput, deps: ActionDeps): BulkFilter {
  const identity = deps.identity;
  let user = input.user ?? null;
  if (!isAdmin(identity)) {
    if (user !== null && user !== identity.user) {
      throw new ActionRefusal(`user '${user}': you may cancel only your own jobs (user ${identity.user}); drop user or set it to ${identity.user}`, `not owner: bulk filter for user ${user}`, {
        cluster: input.cluster,
      });
    }
    user = identity.user ?? null;
  }
  const states = input.state === undefined ? ['pending', 'running'] : [...new Set([input.state].flat())].sort();
  return { cluster: input.cluster, user, queue: input.queue ?? null, states, name: input.name ?? null };
}

async function resolveJobs(deps: ActionDeps, filter: BulkFilter, signal?: AbortSignal): Promise<BulkJobRow[]> {
  const where = ['cluster = {cluster:String}', 'state IN {states:Array(String)}'];
  const params: Record<string, unknown> = { cluster: filter.cluster, states: filter.states };
  if (filter.user !== null) {
    where.push('user = {user:String}');
    params.user = filter.user;
  }
  if (filter.queue !== null) {
    where.push('queue = {queue:String}');
    params.queue = filter.queue;
  }
  if (filter.name !== null) {
    where.push('positionCaseInsensitiveUTF8(name, {name:String}) > 0');
    params.name = filter.name;
  }
  const rows = await selectRows<BulkJobRow>(
    deps,
    `SELECT toString(job_id) AS job_id_s, user, queue, name, state
     FROM {db:Identifier}.jobs FINAL
     WHERE ${where.join(' AND ')}
     ORDER BY job_id
     LIMIT {lim:UInt32}`,
    { ...params, lim: deps.limits.maxRows + 1 },
    signal,
  );
  if (rows.length > deps.limits.maxRows) {
    throw new ActionRefusal(`more than ${deps.limits.maxRows} jobs match; narrow the filter (user, queue, state, name) and cancel in parts`, 'bulk set too large', {
      cluster: filter.cluster,
    });
  }
  return rows;
}

export function registerCancelJobs(server: McpServer, deps: ActionDeps): void {
  server.registerTool(
    'cancel_jobs',
    {
      title: 'Cancel jobs (bulk)',
      description:
        'Cancel all pending/running jobs of a cluster matching user, queue, state, name. First call (no confirm): a dry run ' +
        `listing the matches and a confirm_token; call again with the same filters and confirm to cancel. Above the approval ` +
        'threshold the command waits for an approver (approve_command).',
      inputSchema: CancelJobsInputSchema,
      outputSchema: CancelJobsOutputSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (input, ctx) =>
      runAction(deps, 'cancel_jobs', async () => {
        const signal = ctx.mcpReq.signal;
        requireActor(deps.identity);
        if (!deps.commands) throw new ActionRefusal(NO_SENDER, 'no command sender', { cluster: input.cluster });
        const filter = bulkFilter(input, deps);
        const jobs = await resolveJobs(deps, filter, signal);
        const plan: BulkPlan = { subject: deps.identity.subject, filter, jobIds: jobs.map((j) => j.job_id_s) };
        const approvalRequired = jobs.length > deps.approvalThreshold;
        const nowS = Math.floor(deps.now() / 1000);

        if (input.confirm === undefined) {
          const expiresAt = nowS + CONFIRM_TTL_S;
          const out: CancelJobsOutput = {
            dry_run: true,
            count: jobs.length,
            jobs: jobs.slice(0, DRY_RUN_SHOWN).map((j) => ({ job_id: j.job_id_s, user: j.user, queue: j.queue, name: j.name, state: j.state })),
            approval_required: approvalRequired,
            ...(jobs.length > 0
              ? {
                  confirm_token: confirmationToken(plan, expiresAt, deps.confirmKeys),
                  token_expires_at: new Date(expiresAt * 1000).toISOString(),
                  next_step:
                    `nothing was canceled; to cancel these ${jobs.length} jobs call cancel_jobs again with the same filters and confirm = confirm_token` +
                    (approvalRequired ? ` (more than ${deps.approvalThreshold} jobs: the command will then wait for an approver)` : ''),
                }
              : { next_step: 'no pending or running job matches; nothing to cancel' }),
          };
          return toolResult(out);
        }

        const check = checkConfirmationToken(input.confirm, plan, nowS, deps.confirmKeys);
        if (!check.ok) {
          const why =
            check.reason === 'expired'
              ? 'the confirm_token has expired'
              : check.reason === 'malformed'
                ? 'confirm is not a confirm_token that cancel_jobs returned'
                : 'the confirm_token does not match: the filters differ from the dry run, or the set of matching jobs changed since';
          throw new ActionRefusal(`${why}; nothing was canceled. Call cancel_jobs without confirm for a new dry run`, `confirmation refused: ${check.reason}`, {
            cluster: input.cluster,
          });
        }
        const command = buildCommand(deps, {
          cluster: input.cluster,
          action: 'cancel',
          job_ids: plan.jobIds as string[],
          args: input.note !== undefined ? { note: input.note } : {},
          approval_required: approvalRequired,
        });
        const outcome = await sendCommand(deps, 'cancel_jobs', command, signal);
        const out: CancelJobsOutput = {
          dry_run: false,
          count: jobs.length,
          approval_required: approvalRequired,
          command: outcome,
          ...(outcome.next_step && { next_step: outcome.next_step }),
        };
        return toolResult(out);
      }),
  );
}
