/**
 * The action tools: single-job actions, submit, the bulk actions, approvals, command
 * status and the actions list. `registerActionTools` resolves their settings from McpDeps.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import type { CommandSender, TokenKeys } from '../../commandSender.js';
import type { QueryDeps } from '../../sql.js';
import { registerApprovals } from './approvals.js';
import { registerBulkActions } from './bulkActions.js';
import { DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_APPROVAL_THRESHOLD, DEFAULT_OWN_APPROVAL_THRESHOLD, defaultAudit, type ActionDeps, type AuditEntry } from './common.js';
import { registerJobActions } from './jobActions.js';
import { registerActionStatus } from './status.js';

export { DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_APPROVAL_THRESHOLD, DEFAULT_OWN_APPROVAL_THRESHOLD, type AuditEntry } from './common.js';

/** The action tools' settings (part of McpDeps). */
export interface ActionSettings {
  /** Where the action tools send commands (mcp/commandSender.ts); without it they answer that this service cannot act. */
  commands?: CommandSender;
  /** Keys of cancel_jobs' confirmation tokens (mcp/commandSender.ts); default per process. Give every instance behind one address the same (keyringTokenKeys). */
  confirmKeys?: TokenKeys;
  /** Bulk actions on more jobs than this need a second identity's approval. Default 10. */
  approvalThreshold?: number;
  /** Bulk actions on more of the caller's own jobs (its scheduler user owns each) than this need one. Default 200. */
  ownApprovalThreshold?: number;
  /** How long an action tool waits for the scribe's result before answering `pending`. Default 10 000 ms. */
  actionTimeoutMs?: number;
  /** Receives every action decision, sent or refused (this folder). Default: a JSON line on stderr. */
  audit?: (entry: AuditEntry) => void;
}

export function actionDeps(q: QueryDeps, deps: ActionSettings): ActionDeps {
  const approvalThreshold = deps.approvalThreshold ?? DEFAULT_APPROVAL_THRESHOLD;
  const ownApprovalThreshold = deps.ownApprovalThreshold ?? DEFAULT_OWN_APPROVAL_THRESHOLD;
  const actionTimeoutMs = deps.actionTimeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
  for (const [name, n] of [['approvalThreshold', approvalThreshold], ['ownApprovalThreshold', ownApprovalThreshold]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got ${n}`);
  }
  if (!(actionTimeoutMs >= 0)) throw new Error(`actionTimeoutMs must be >= 0, got ${actionTimeoutMs}`);
  return {
    ...q,
    ...(deps.commands && { commands: deps.commands }),
    ...(deps.confirmKeys && { confirmKeys: deps.confirmKeys }),
    approvalThreshold,
    ownApprovalThreshold,
    actionTimeoutMs,
    actionPollMs: Math.max(10, Math.min(250, actionTimeoutMs / 20)),
    audit: deps.audit ?? defaultAudit,
  };
}

export function registerActionTools(server: McpServer, q: QueryDeps, deps: ActionSettings): void {
  const a = actionDeps(q, deps);
  registerJobActions(server, a);
  registerBulkActions(server, a);
  registerApprovals(server, a);
  registerActionStatus(server, a);
}
