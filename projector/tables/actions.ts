/**
 * The `actions` read model (schemas/clickhouse/005_actions.sql): one row per command, the audit
 * of who asked for what, who approved or rejected it, and what the scheduler did. Pure fold of
 * the command's records, which arrive on two topics (command and approval on the commands
 * topic, the result on the events topic) in either order between the topics:
 *
 *   command         fills the request columns; status 'requested' unless already further
 *                   (a submit names no job: its job_ids are the new job's id from its result)
 *   approval        approve by an approver who is not the requester (samePerson: neither
 *                   their subject nor their scheduler user) → approved_by/at; reject by an
 *                   approver or the requester → rejected_by (others are ignored, as the scribe
 *                   ignores them; the log keeps them)
 *   command-result  awaiting_approval, then the first final status (accepted | rejected |
 *                   failed) sticks: a later final result (a redelivered command past its
 *                   expiry, a forged copy) never overwrites it; its `decided_by` (the
 *                   approval the scribe acted on) fills approved_by/at or rejected_by as the
 *                   approval record would, whichever of the two is folded first
 *
 *   refusal         a request the MCP service refused (nothing was sent), or a record a
 *                   scribe refused (forged, unsigned, misplaced, an approval that does not
 *                   count): its own row (its own id), status 'refused', the reason; final at
 *                   once. It never touches a row that holds a command: a refusal id equal to
 *                   a command's is not a refusal of ours
 *
 * `version` grows by one per folded record, so the row written last is the one kept.
 * Times are DateTime64(3) text, as the table stores and returns them.
 */
import {
  FINAL_COMMAND_STATUSES,
  ROLE_APPROVER,
  samePerson,
  type Approval,
  type Command,
  type CommandRecord,
  type CommandResult,
  type Refusal,
} from '../../schemas/commands/index.js';
import { millisToDateTime64 } from '../../schemas/clickhouse/time.js';

export type ActionStatus = 'requested' | CommandResult['status'] | 'refused';

export interface ActionRow {
  cluster: string;
  command_id: string;
  action: string;
  job_ids: string[];
  args: string;
  requested_by: string;
  requested_user: string;
  requested_roles: string[];
  on_behalf_of: string;
  issued_at: string;
  expires_at: string;
  approval_required: boolean;
  approved_by: string;
  approved_at: string | null;
  rejected_by: string;
  status: ActionStatus;
  reason: string;
  results: string;
  result_at: string | null;
  scribe_id: string;
  version: number;
}

const EPOCH = millisToDateTime64(0);
const dt = (seconds: number) => millisToDateTime64(seconds * 1000);

const RANK: Record<ActionStatus, number> = { requested: 1, awaiting_approval: 2, accepted: 3, rejected: 3, failed: 3, refused: 3 };

export function isFinal(status: ActionStatus): boolean {
  return status === 'refused' || (FINAL_COMMAND_STATUSES as readonly string[]).includes(status);
}

/** The row of a command known only by id (its other records have not been folded yet). */
function emptyActionRow(cluster: string, commandId: string): ActionRow {
  return {
    cluster,
    command_id: commandId,
    action: '',
    job_ids: [],
    args: '{}',
    requested_by: '',
    requested_user: '',
    requested_roles: [],
    on_behalf_of: '',
    issued_at: EPOCH,
    expires_at: EPOCH,
    approval_required: false,
    approved_by: '',
    approved_at: null,
    rejected_by: '',
    status: 'requested',
    reason: '',
    results: '[]',
    result_at: null,
    scribe_id: '',
    version: 0,
  };
}

export function actionKey(cluster: string, commandId: string): string {
  return `${cluster}/${commandId}`;
}

/** Applies one record to a command's row. Pure; folding the same record again changes nothing but `version`. */
export function evolveAction(prior: ActionRow | undefined, r: CommandRecord): ActionRow {
  const row: ActionRow = { ...(prior ?? emptyActionRow(r.cluster, r.command_id)), version: (prior?.version ?? 0) + 1 };
  switch (r.kind) {
    case 'command':
      return foldCommand(row, r);
    case 'approval':
      return foldApproval(row, r);
    case 'command-result':
      return foldResult(row, r);
    case 'refusal':
      return foldRefusal(row, r);
  }
}

function foldRefusal(row: ActionRow, r: Refusal): ActionRow {
  if ((row.requested_by !== '' || row.status !== 'requested') && row.status !== 'refused') return row;
  const by = r.tool === 'scribe' ? `the ${r.cluster} scribe` : `the MCP service (${r.tool})`;
  return {
    ...row,
    action: r.action,
    job_ids: r.job_ids,
    requested_by: r.requested_by.subject,
    requested_user: r.requested_by.user ?? '',
    requested_roles: r.requested_by.roles,
    issued_at: dt(r.at),
    expires_at: dt(r.at),
    status: 'refused',
    reason: `refused by ${by}: ${r.reason}`,
    result_at: dt(r.at),
  };
}

function foldCommand(row: ActionRow, c: Command): ActionRow {
  return {
    ...row,
    action: c.action,
    job_ids: c.action === 'submit' ? row.job_ids : c.job_ids,
    args: JSON.stringify(c.args ?? {}),
    requested_by: c.requested_by.subject,
    requested_user: c.requested_by.user ?? '',
    requested_roles: c.requested_by.roles,
    on_behalf_of: c.on_behalf_of ?? '',
    issued_at: dt(c.issued_at),
    expires_at: dt(c.expires_at),
    approval_required: c.approval_required,
  };
}

function foldApproval(row: ActionRow, a: Approval): ActionRow {
  const approver = a.by.roles.includes(ROLE_APPROVER);
  const requester = row.requested_by !== '' && samePerson(a.by, { subject: row.requested_by, user: row.requested_user || undefined });
  if (a.decision === 'approve') {
    if (!approver || requester || row.requested_by === '') return row;
    return { ...row, approved_by: a.by.subject, approved_at: dt(a.at) };
  }
  if (!approver && !requester) return row;
  return { ...row, rejected_by: a.by.subject };
}

function foldResult(row: ActionRow, r: CommandResult): ActionRow {
  if (isFinal(row.status) || RANK[r.status] < RANK[row.status]) return row;
  const d = r.decided_by;
  // A submit's job is the one its result names (the command carries none); a result folded
  // before its command fills them too, and the command then keeps them only for a submit.
  const named = r.results.map((x) => x.job_id).filter((id) => id !== '');
  return {
    ...row,
    ...((row.action === 'submit' || row.action === '') && { job_ids: named }),
    ...(d?.decision === 'approve' && { approved_by: d.subject, approved_at: dt(d.at) }),
    ...(d?.decision === 'reject' && { rejected_by: d.subject }),
    status: r.status,
    reason: r.reason ?? '',
    results: JSON.stringify(r.results),
    result_at: dt(r.at),
    scribe_id: r.scribe.id,
  };
}

/** Folds a batch's records onto the prior rows; returns the rows that changed (final state per command). */
export function projectActions(records: readonly CommandRecord[], prior: ReadonlyMap<string, ActionRow>): Map<string, ActionRow> {
  const changed = new Map<string, ActionRow>();
  for (const r of records) {
    const key = actionKey(r.cluster, r.command_id);
    changed.set(key, evolveAction(changed.get(key) ?? prior.get(key), r));
  }
  return changed;
}

/** A row as `SELECT *` returns it (JSONEachRow) → ActionRow. */
export function actionFromSelectRow(x: Record<string, unknown>): ActionRow {
  return {
    ...(x as unknown as ActionRow),
    approval_required: Boolean(x.approval_required),
    version: Number(x.version),
  };
}
