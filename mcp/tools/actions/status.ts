/**
 * `command_status` (one command by id) and `list_actions` (recent commands, newest first): the
 * `actions` audit table as ActionOutcomes. Admins and approvers see every command and every
 * request the service refused; anyone else only the commands they asked for (others, and
 * refusals, whose reasons may tell whose a job is, read as missing).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  ActionAnswerSchema,
  CommandIdInputSchema,
  ListActionsInputSchema,
  ListActionsOutputSchema,
  type ActionOutput,
  type ListActionsOutput,
} from '../../../schemas/tools/actions.js';
import type { Identity } from '../../identity.js';
import { runTool, toolResult, ToolInputError } from '../../results.js';
import { selectRows } from '../../sql.js';
import { ACTION_COLUMNS, isAdmin, isApprover, loadActionRow, outcomeFromRow, type ActionDeps, type StoredAction } from './common.js';

function seesAll(identity: Identity): boolean {
  return isAdmin(identity) || isApprover(identity);
}

export function registerActionStatus(server: McpServer, deps: ActionDeps): void {
  server.registerTool(
    'command_status',
    {
      title: 'Command status',
      description: 'What became of a command an action tool sent (by command_id): pending, awaiting_approval, accepted, rejected or failed, with per-job results.',
      inputSchema: CommandIdInputSchema,
      outputSchema: ActionAnswerSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input, ctx) =>
      runTool(deps, 'command_status', async () => {
        const row = await loadActionRow(deps, input.command_id, ctx.mcpReq.signal);
        if (!row || (!seesAll(deps.identity) && (row.requested_by !== deps.identity.subject || row.status === 'refused'))) {
          throw new ToolInputError(
            `no command ${input.command_id} that you may see is recorded yet; a command just sent appears within seconds, else check the id`,
          );
        }
        const out: ActionOutput = { command: outcomeFromRow(row) };
        return toolResult(out);
      }),
  );

  server.registerTool(
    'list_actions',
    {
      title: 'List actions',
      description: 'Recent commands (newest first) with who asked, approvals and outcome, and (admins) refused requests; filter by cluster, status, requested_by. Non-admins see their own.',
      inputSchema: ListActionsInputSchema,
      outputSchema: ListActionsOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input, ctx) =>
      runTool(deps, 'list_actions', async () => {
        // A row holding only a result (its command not folded yet, or a result under a command id
        // this cluster never had) is no command to list.
        const where: string[] = ["requested_by != ''"];
        const params: Record<string, unknown> = { lim: input.limit + 1 };
        let requestedBy = input.requested_by;
        if (!seesAll(deps.identity)) {
          if (requestedBy !== undefined && requestedBy !== deps.identity.subject) {
            throw new ToolInputError(`requested_by '${requestedBy}': you may list only your own commands (${deps.identity.subject}); drop requested_by`);
          }
          requestedBy = deps.identity.subject;
          where.push("status != 'refused'");
        }
        if (input.cluster !== undefined) {
          where.push('cluster = {cluster:String}');
          params.cluster = input.cluster;
        }
        if (input.status !== undefined) {
          where.push('status = {status:String}');
          params.status = input.status;
        }
        if (requestedBy !== undefined) {
          where.push('requested_by = {rb:String}');
          params.rb = requestedBy;
        }
        const rows = await selectRows<StoredAction>(
          deps,
          `SELECT ${ACTION_COLUMNS} FROM {db:Identifier}.actions FINAL
           ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY issued_at DESC, command_id
           LIMIT {lim:UInt32}`,
          params,
          ctx.mcpReq.signal,
        );
        const out: ListActionsOutput = { actions: rows.slice(0, input.limit).map(outcomeFromRow), truncated: rows.length > input.limit };
        return toolResult(out);
      }),
  );
}
