/**
 * The action tools: single-job actions, submit, the bulk actions, approvals, command
 * status and the actions list. `registerActionTools` resolves their settings from McpDeps.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import type { McpDeps } from '../../server.js';
import type { QueryDeps } from '../../sql.js';
import { registerApprovals } from './approvals.js';
import { registerBulkActions } from './bulkActions.js';
import { DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_APPROVAL_THRESHOLD, DEFAULT_OWN_APPROVAL_THRESHOLD, defaultAudit, type ActionDeps } from './common.js';
import { registerJobActions } from './jobActions.js';
import { registerActionStatus } from './status.js';

export { DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_APPROVAL_THRESHOLD, DEFAULT_OWN_APPROVAL_THRESHOLD, type AuditEntry } from './common.js';

export function actionDeps(q: QueryDeps, deps: McpDeps): ActionDeps {
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

export function registerActionTools(server: McpServer, q: QueryDeps, deps: McpDeps): void {
  const a = actionDeps(q, deps);
  registerJobActions(server, a);
  registerBulkActions(server, a);
  registerApprovals(server, a);
  registerActionStatus(server, a);
}
