/**
 * The bulk action tools: `act_on_jobs` (cancel, hold, release or set the urgency of every
 * matching job of one cluster) and `cancel_jobs` (the same with action cancel, kept for the
 * agents that know it), in two calls. The first (no `confirm`) is a dry run: how many jobs, the
 * first few, and a confirmation token bound to the caller, the action (and urgency), the exact
 * filters and the resolved job id set (mcp/commandSender.ts). The second, with the token, re-resolves
 * the set and sends one command for it only if the set is unchanged. More jobs than the approval
 * threshold make it a command awaiting approval: `ownApprovalThreshold` when the caller's own
 * scheduler user owns every job, else `approvalThreshold` (bulkApproval).
 *
 * Which jobs an action takes: cancel pending and/or running ones; hold pending ones not held;
 * release held ones; urgency pending ones. Slurm has no urgency: its priority is for its
 * administrators, so a plain user's bulk urgency on a Slurm cluster is refused (an admin's sets
 * the priority, as set_urgency does).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import type { BulkAction, CommandArgs } from '../../../schemas/commands/index.js';
import {
  ActOnJobsInputSchema,
  CancelJobsInputSchema,
  CancelJobsOutputSchema,
  DRY_RUN_SHOWN,
  FLUX_URGENCY_MAX,
  type ActOnJobsInput,
  type CancelJobsOutput,
} from '../../../schemas/tools/actions.js';
import { checkConfirmationToken, confirmationToken, type BulkPlan } from '../../commandSender.js';
import type { Identity } from '../../identity.js';
import { toolResult } from '../../results.js';
import { selectRows } from '../../sql.js';
import { ActionRefusal, NO_SENDER, buildCommand, isAdmin, requireActor, runAction, sendCommand, type ActionDeps } from './common.js';

/** How long a dry run's token confirms its set. */
export const CONFIRM_TTL_S = 300;
/** A Flux user (not the instance owner) may set urgency up to this. */
const FLUX_USER_URGENCY_MAX = 16;

interface BulkJobRow {
  job_id_s: string;
  user: string;
  queue: string;
  name: string;
  state: string;
  scheduler: string;
}

/** How each action reads in the tools' answers. */
const WORDS: Record<BulkAction, { verb: string; done: string; which: string }> = {
  cancel: { verb: 'cancel', done: 'canceled', which: 'pending or running' },
  hold: { verb: 'hold', done: 'held', which: 'pending job that is not held' },
  release: { verb: 'release', done: 'released', which: 'held' },
  urgency: { verb: 'set the urgency of', done: 'changed', which: 'pending' },
};

/** The request as the token binds it (absent = null, states sorted). */
export type BulkFilter = {
  cluster: string;
  action: BulkAction;
  urgency: number | null;
  user: string | null;
  queue: string | null;
  states: string[];
  name: string | null;
};

/** The caller's request, with a plain user's own user forced in and the action's states checked. */
export function bulkFilter(input: ActOnJobsInput, identity: Identity): BulkFilter {
  const { action, cluster } = input;
  const words = WORDS[action];
  let user = input.user ?? null;
  if (!isAdmin(identity)) {
    if (user !== null && user !== identity.user) {
      throw new ActionRefusal(
        `user '${user}': you may ${words.verb} only your own jobs (user ${identity.user}); drop user or set it to ${identity.user}`,
        `not owner: bulk filter for user ${user}`,
        { cluster, action },
      );
    }
    user = identity.user ?? null;
  }
  const given = input.state === undefined ? undefined : [...new Set([input.state].flat())].sort();
  if (action !== 'cancel' && given !== undefined && given.some((s) => s !== 'pending')) {
    throw new ActionRefusal(`state: only pending jobs can be ${words.done} (${action}); drop state or set it to pending`, `bad state for ${action}`, { cluster, action });
  }
  if ((action === 'urgency') !== (input.urgency !== undefined)) {
    const why = action === 'urgency' ? 'action urgency needs urgency (Flux 0-31, 16 is the default)' : `urgency is only for action urgency, not ${action}`;
    throw new ActionRefusal(why, why, { cluster, action });
  }
  if (input.note !== undefined && action !== 'cancel') {
    throw new ActionRefusal(`note is only for action cancel, not ${action}`, 'note without cancel', { cluster, action });
  }
  const states = given ?? (action === 'cancel' ? ['pending', 'running'] : ['pending']);
  return { cluster, action, urgency: input.urgency ?? null, user, queue: input.queue ?? null, states, name: input.name ?? null };
}

/**
 * Does a bulk action on jobs owned by `owners` need an approver? When the caller's own scheduler
 * user owns every job, above `ownApprovalThreshold` jobs; otherwise (an admin on others' jobs)
 * above `approvalThreshold`. Pure.
 */
export function bulkApproval(
  identity: Pick<Identity, 'user'>,
  owners: readonly string[],
  thresholds: { approvalThreshold: number; ownApprovalThreshold: number },
): { required: boolean; own: boolean; threshold: number } {
  const own = identity.user !== undefined && owners.every((u) => u === identity.user);
  const threshold = own ? thresholds.ownApprovalThreshold : thresholds.approvalThreshold;
  return { required: owners.length > threshold, own, threshold };
}

async function resolveJobs(deps: ActionDeps, filter: BulkFilter, signal?: AbortSignal): Promise<BulkJobRow[]> {
  const where = ['cluster = {cluster:String}', 'state IN {states:Array(String)}'];
  const params: Record<string, unknown> = { cluster: filter.cluster, states: filter.states };
  if (filter.action === 'hold') where.push('NOT held');
  if (filter.action === 'release') where.push('held');
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
    `SELECT toString(job_id) AS job_id_s, user, queue, name, state, scheduler
     FROM {db:Identifier}.jobs FINAL
     WHERE ${where.join(' AND ')}
     ORDER BY job_id
     LIMIT {lim:UInt32}`,
    { ...params, lim: deps.limits.maxRows + 1 },
    signal,
  );
  if (rows.length > deps.limits.maxRows) {
    throw new ActionRefusal(`more than ${deps.limits.maxRows} jobs match; narrow the filter (user, queue, state, name) and ${WORDS[filter.action].verb} them in parts`, 'bulk set too large', {
      cluster: filter.cluster,
      action: filter.action,
    });
  }
  return rows;
}

/** Refuses an urgency the jobs' scheduler will not take from this caller (before anything is sent). */
function checkUrgency(filter: BulkFilter, jobs: BulkJobRow[], identity: Identity): void {
  if (filter.action !== 'urgency' || filter.urgency === null || jobs.length === 0) return;
  const u = filter.urgency;
  const ctx = { cluster: filter.cluster, action: filter.action };
  if (jobs.some((j) => j.scheduler === 'slurm') && !isAdmin(identity)) {
    const why =
      `Slurm has no urgency: a job's priority on ${filter.cluster} (Slurm) is set only by its administrators; ` +
      'ask one, or use action hold / release to keep jobs from starting';
    throw new ActionRefusal(why, 'urgency on Slurm by a non-admin', ctx);
  }
  if (jobs.some((j) => j.scheduler === 'flux')) {
    const max = isAdmin(identity) ? FLUX_URGENCY_MAX : FLUX_USER_URGENCY_MAX;
    if (u > max) {
      const why = `urgency ${u}: a Flux job's urgency is 0..${FLUX_URGENCY_MAX} (16 is the default)${isAdmin(identity) ? '' : `, and only up to ${FLUX_USER_URGENCY_MAX} for its owner`}`;
      throw new ActionRefusal(why, why, ctx);
    }
  }
}

function commandArgs(input: ActOnJobsInput): CommandArgs {
  if (input.action === 'cancel') return input.note !== undefined ? { note: input.note } : {};
  if (input.action === 'urgency') return { urgency: input.urgency! };
  return {};
}

async function bulkAction(deps: ActionDeps, tool: string, input: ActOnJobsInput, signal?: AbortSignal) {
  requireActor(deps.identity);
  const { action, cluster } = input;
  if (!deps.commands) throw new ActionRefusal(NO_SENDER, 'no command sender', { cluster, action });
  const words = WORDS[action];
  const filter = bulkFilter(input, deps.identity);
  const jobs = await resolveJobs(deps, filter, signal);
  checkUrgency(filter, jobs, deps.identity);
  const plan: BulkPlan = { subject: deps.identity.subject, filter, jobIds: jobs.map((j) => j.job_id_s) };
  const approval = bulkApproval(
    deps.identity,
    jobs.map((j) => j.user),
    deps,
  );
  const nowS = Math.floor(deps.now() / 1000);
  const again = tool === 'cancel_jobs' ? 'cancel_jobs again with the same filters' : `${tool} again with the same arguments`;

  if (input.confirm === undefined) {
    const expiresAt = nowS + CONFIRM_TTL_S;
    const waits = approval.required
      ? ` (more than ${approval.threshold} ${approval.own ? 'of your own ' : ''}jobs: the command will then wait for an approver)`
      : '';
    const out: CancelJobsOutput = {
      dry_run: true,
      count: jobs.length,
      jobs: jobs.slice(0, DRY_RUN_SHOWN).map((j) => ({ job_id: j.job_id_s, user: j.user, queue: j.queue, name: j.name, state: j.state })),
      approval_required: approval.required,
      ...(jobs.length > 0
        ? {
            confirm_token: confirmationToken(plan, expiresAt, deps.confirmKeys),
            token_expires_at: new Date(expiresAt * 1000).toISOString(),
            next_step: `nothing was ${words.done}; to ${words.verb} these ${jobs.length} jobs call ${again} and confirm = confirm_token${waits}`,
          }
        : { next_step: `no ${words.which} job matches; nothing to ${words.verb}` }),
    };
    return toolResult(out);
  }

  const check = checkConfirmationToken(input.confirm, plan, nowS, deps.confirmKeys);
  if (!check.ok) {
    const why =
      check.reason === 'expired'
        ? 'the confirm_token has expired'
        : check.reason === 'malformed'
          ? `confirm is not a confirm_token that ${tool} returned`
          : 'the confirm_token does not match: the action or filters differ from the dry run, or the set of matching jobs changed since';
    throw new ActionRefusal(`${why}; nothing was ${words.done}. Call ${tool} without confirm for a new dry run`, `confirmation refused: ${check.reason}`, { cluster, action });
  }
  const command = buildCommand(deps, {
    cluster,
    action,
    job_ids: plan.jobIds as string[],
    args: commandArgs(input),
    approval_required: approval.required,
  });
  const outcome = await sendCommand(deps, tool, command, signal);
  const out: CancelJobsOutput = {
    dry_run: false,
    count: jobs.length,
    approval_required: approval.required,
    command: outcome,
    ...(outcome.next_step && { next_step: outcome.next_step }),
  };
  return toolResult(out);
}

const TWO_CALLS =
  'First call (no confirm): a dry run listing the matches and a confirm_token; call again with the same arguments and confirm. ' +
  'Above the approval threshold the command waits for an approver (approve_command).';

export function registerBulkActions(server: McpServer, deps: ActionDeps): void {
  server.registerTool(
    'act_on_jobs',
    {
      title: 'Act on jobs (bulk)',
      description:
        'Cancel, hold, release or set the urgency of all jobs of a cluster matching user, queue, state, name (hold takes pending ' +
        `jobs not held, release held ones). ${TWO_CALLS}`,
      inputSchema: ActOnJobsInputSchema,
      outputSchema: CancelJobsOutputSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (input, ctx) => runAction(deps, 'act_on_jobs', () => bulkAction(deps, 'act_on_jobs', input, ctx.mcpReq.signal)),
  );
  server.registerTool(
    'cancel_jobs',
    {
      title: 'Cancel jobs (bulk)',
      description: `act_on_jobs with action cancel: cancel all pending/running jobs of a cluster matching user, queue, state, name. ${TWO_CALLS}`,
      inputSchema: CancelJobsInputSchema,
      outputSchema: CancelJobsOutputSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (input, ctx) => runAction(deps, 'cancel_jobs', () => bulkAction(deps, 'cancel_jobs', { ...input, action: 'cancel' }, ctx.mcpReq.signal)),
  );
}
