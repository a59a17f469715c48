/**
 * `approve_command` / `reject_command`: the second person of a bulk action. An approve needs the
 * `approver` role and another person than the requester (samePerson: neither the requester's
 * identity subject nor their scheduler user, so a second token of the same user does not
 * count); a reject, an approver or the requester (withdrawing). The decision is an `approval` record (signed like commands) on the
 * command's cluster's commands topic; the scribe executes or ends the command and the tool
 * answers what came of it. The scribe checks all of this again (scribe/commandLoop.ts).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { ApprovalSchema, FINAL_COMMAND_STATUSES, samePerson, type Requester } from '../../../schemas/commands/index.js';
import { ActionAnswerSchema, DecisionInputSchema, type ActionOutput } from '../../../schemas/tools/actions.js';
import { requesterOf } from '../../commandSender.js';
import { toolResult } from '../../results.js';
import {
  ActionRefusal,
  NO_SENDER,
  audit,
  isApprover,
  loadActionRow,
  outcomeFromRow,
  runAction,
  waitForAction,
  type ActionDeps,
  type StoredAction,
} from './common.js';

type DecisionKind = 'approve' | 'reject';

/** The requester of a command as its `actions` row records it. */
function requesterOfRow(row: Pick<StoredAction, 'requested_by' | 'requested_user'>): Pick<Requester, 'subject' | 'user'> {
  return { subject: row.requested_by, ...(row.requested_user !== '' && { user: row.requested_user }) };
}

/** Why `deps.identity` may not take this decision on `row` (undefined: it may). Pure. */
export function decisionRefusal(deps: Pick<ActionDeps, 'identity'>, decision: DecisionKind, row: StoredAction, nowMs: number): string | undefined {
  const id = deps.identity;
  // Its result (events topic) can be folded before the command itself (commands topic).
  if (row.requested_by === '') return `command ${row.command_id} is not fully recorded yet; try again in a few seconds`;
  if (!row.approval_required) return `command ${row.command_id} needs no approval (it ran, or runs, without one)`;
  if (row.status !== 'requested' && row.status !== 'awaiting_approval') {
    return `command ${row.command_id} is already ${row.status}${row.reason ? ` (${row.reason})` : ''}; there is nothing to ${decision}`;
  }
  if (nowMs > Number(row.expires_ms)) return `command ${row.command_id} expired at ${new Date(Number(row.expires_ms)).toISOString()}; the requester may ask again`;
  if (decision === 'approve' && samePerson(requesterOfRow(row), id)) {
    const you = row.requested_by === id.subject ? `you (${id.subject})` : `you (scheduler user ${id.user}, as ${row.requested_by})`;
    return `${you} requested command ${row.command_id}; a different person with the approver role must approve it`;
  }
  return undefined;
}

function registerDecision(server: McpServer, deps: ActionDeps, decision: DecisionKind): void {
  const tool = `${decision}_command`;
  server.registerTool(
    tool,
    {
      title: decision === 'approve' ? 'Approve command' : 'Reject command',
      description:
        decision === 'approve'
          ? "Approve another identity's command that awaits approval (bulk actions); it then executes. Needs the approver role."
          : 'Reject a command that awaits approval (approvers), or withdraw your own.',
      inputSchema: DecisionInputSchema,
      outputSchema: ActionAnswerSchema,
      annotations: { readOnlyHint: false, destructiveHint: decision === 'approve', idempotentHint: true, openWorldHint: false },
    },
    (input, ctx) =>
      runAction(deps, tool, async () => {
        const signal = ctx.mcpReq.signal;
        const id = deps.identity;
        const context = { command_id: input.command_id };
        if (decision === 'approve' && !isApprover(id)) {
          throw new ActionRefusal(`approve_command needs the approver role; ${id.subject} does not hold it`, 'not an approver', context);
        }
        if (!deps.commands) throw new ActionRefusal(NO_SENDER, 'no command sender', context);
        const row = await loadActionRow(deps, input.command_id, signal);
        // A plain user sees (and may withdraw) only their own commands: others read as missing.
        if (!row || (!isApprover(id) && !samePerson(requesterOfRow(row), id))) {
          throw new ActionRefusal(`no command ${input.command_id} that you may ${decision} is recorded; check the command_id (list_actions)`, row ? 'not requester nor approver' : 'no such command', context);
        }
        const refusal = decisionRefusal(deps, decision, row, deps.now());
        if (refusal) throw new ActionRefusal(refusal, refusal, { ...context, cluster: row.cluster });
        const approval = ApprovalSchema.parse({
          v: 1,
          kind: 'approval',
          command_id: row.command_id,
          cluster: row.cluster,
          decision,
          by: requesterOf(id),
          at: Math.round(deps.now()) / 1000,
          ...(input.reason !== undefined && { reason: input.reason }),
        });
        await deps.commands.send(approval);
        audit(deps, tool, { decision: 'sent', cluster: row.cluster, job_ids: row.job_ids, command_id: row.command_id, ...(input.reason && { reason: input.reason }) });
        const after = await waitForAction(deps, row.command_id, FINAL_COMMAND_STATUSES, signal, row.cluster);
        const outcome = outcomeFromRow(after ?? row);
        if (outcome.status === 'awaiting_approval') {
          outcome.status = 'pending';
          outcome.next_step = `the ${row.cluster} scribe has not answered the ${decision} yet; call command_status with this command_id later`;
        }
        const out: ActionOutput = { command: outcome };
        return toolResult(out);
      }),
  );
}

/**
 * approve_command is listed only to identities that may approve (approver or admin): to anyone
 * else it is a tool that can only refuse, and its definition costs every plain user's agent
 * context. reject_command stays for everyone: it is also how a requester withdraws.
 */
export function registerApprovals(server: McpServer, deps: ActionDeps): void {
  if (isApprover(deps.identity)) registerDecision(server, deps, 'approve');
  registerDecision(server, deps, 'reject');
}
