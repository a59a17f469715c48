/**
 * What every action tool shares: its dependencies (the command sender, approval threshold, wait),
 * the authorization decision (a pure function: own jobs unless admin), the job lookup it is
 * checked against (the read model, before anything is published), sending a command and waiting
 * for its row in `actions`, the outcome the tools answer, and the audit line every decision
 * (sent or refused) leaves.
 *
 * Refusals are tool errors (ActionRefusal) with the same words whether a job is missing or not
 * the caller's; the audit line keeps the real reason. A refusal that concerns a cluster is also
 * published as a `refusal` record on that cluster's commands topic (no scribe acts on it), so
 * `actions` shows attempts beside commands; those rows are for admins and approvers
 * (list_actions), as their reasons tell whose a job is.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { CommandSchema, FINAL_COMMAND_STATUSES, ROLE_ADMIN, ROLE_APPROVER, RefusalSchema, type Command, type CommandArgs } from '../../../schemas/commands/index.js';
import { OUTCOME_STATUSES, type ActionOutcome } from '../../../schemas/tools/actions.js';
import { requesterOf, type CommandSender, type TokenKeys } from '../../commandSender.js';
import { lookupJobRows, onSeveralClusters } from '../../findJob.js';
import { hasRole, type Identity } from '../../identity.js';
import { logStoreFailure, runTool, ToolInputError } from '../../results.js';
import { selectRows, type QueryDeps } from '../../sql.js';

/** One decision of the MCP service about an action request. */
export interface AuditEntry {
  at: string;
  tool: string;
  subject: string;
  user?: string;
  roles: string[];
  decision: 'sent' | 'refused';
  /** The action asked for (act_on_jobs' name does not say it). */
  action?: string;
  reason?: string;
  cluster?: string;
  job_ids?: string[];
  command_id?: string;
}

export interface ActionSettings {
  commands?: CommandSender;
  /** Keys of the bulk tools' confirmation tokens; per process when absent. */
  confirmKeys?: TokenKeys;
  /** Bulk actions on more jobs than this need an approver (an admin on others' jobs). */
  approvalThreshold: number;
  /** Bulk actions on more of the caller's own jobs than this need an approver. */
  ownApprovalThreshold: number;
  /** How long a tool waits for the scribe's answer before it answers `pending`. */
  actionTimeoutMs: number;
  actionPollMs: number;
  audit: (entry: AuditEntry) => void;
}

export type ActionDeps = QueryDeps & ActionSettings;

export const DEFAULT_APPROVAL_THRESHOLD = 10;
/** Higher than the general one: a user holding or canceling their own jobs risks only their own work. */
export const DEFAULT_OWN_APPROVAL_THRESHOLD = 200;
export const DEFAULT_ACTION_TIMEOUT_MS = 10_000;
/** A command the scribe has not picked up within this time is rejected as expired. */
export const COMMAND_TTL_S = 300;
/** A command awaiting approval waits this long for an approver. */
export const APPROVAL_TTL_S = 24 * 3600;

export const NO_SENDER =
  'this MCP service has no event log to send commands to, so it cannot act on jobs; start it where the event log is ' +
  '(`jobscribe up`, or `jobscribe mcp --kafka host:port` next to the clusters\' scribes)';

export function defaultAudit(entry: AuditEntry): void {
  process.stderr.write(`jobscribe audit ${JSON.stringify(entry)}\n`);
}

/** A refusal: `message` goes to the agent, `auditReason` (default the message) to the audit line. */
export class ActionRefusal extends ToolInputError {
  constructor(
    message: string,
    readonly auditReason: string = message,
    readonly context: Pick<AuditEntry, 'cluster' | 'job_ids' | 'command_id' | 'action'> = {},
  ) {
    super(message);
  }
}

export function audit(deps: ActionDeps, tool: string, entry: Omit<AuditEntry, 'at' | 'tool' | 'subject' | 'user' | 'roles'>): void {
  const id = deps.identity;
  deps.audit({
    at: new Date(deps.now()).toISOString(),
    tool,
    subject: id.subject,
    ...(id.user !== undefined && { user: id.user }),
    roles: [...id.roles],
    ...entry,
  });
}

/** The action each action tool asks for (a refusal record names it). */
const TOOL_ACTIONS: Record<string, string> = {
  cancel_job: 'cancel',
  cancel_jobs: 'cancel',
  hold_job: 'hold',
  release_job: 'release',
  set_urgency: 'urgency',
  signal_job: 'signal',
  submit_job: 'submit',
  approve_command: 'approve',
  reject_command: 'reject',
};

/**
 * runTool, plus an audit line for every refusal (ToolInputError) of an action tool, and a
 * `refusal` record in the log for an ActionRefusal that names a cluster (best effort: a log that
 * cannot take it is logged, the agent still gets the refusal).
 */
export function runAction(deps: ActionDeps, tool: string, body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  return runTool(deps, tool, async () => {
    try {
      return await body();
    } catch (err) {
      if (err instanceof ToolInputError) {
        const refusal = err instanceof ActionRefusal ? err : undefined;
        audit(deps, tool, { decision: 'refused', reason: refusal?.auditReason ?? err.message, ...refusal?.context });
        if (refusal?.context.cluster !== undefined && deps.commands) await recordRefusal(deps, deps.commands, tool, refusal);
      }
      throw err;
    }
  });
}

async function recordRefusal(deps: ActionDeps, sender: CommandSender, tool: string, refusal: ActionRefusal): Promise<void> {
  try {
    const record = RefusalSchema.parse({
      v: 1,
      kind: 'refusal',
      command_id: randomUUID(),
      cluster: refusal.context.cluster,
      action: refusal.context.action ?? TOOL_ACTIONS[tool] ?? tool,
      job_ids: refusal.context.job_ids ?? [],
      requested_by: requesterOf(deps.identity),
      tool,
      reason: refusal.auditReason.slice(0, 4096),
      at: Math.round(deps.now()) / 1000,
    });
    await sender.send(record);
  } catch (err) {
    logStoreFailure(deps, `${tool}: recording the refusal in the log`, err);
  }
}

export function isAdmin(identity: Identity): boolean {
  return hasRole(identity, ROLE_ADMIN);
}

export function isApprover(identity: Identity): boolean {
  return hasRole(identity, ROLE_APPROVER);
}

export type Decision = { ok: true } | { ok: false; reason: string };

/** May `identity` act on a job owned by `jobUser`? Admins on any; others on their own only. */
export function authorizeJobAction(identity: Identity, jobUser: string): Decision {
  if (isAdmin(identity)) return { ok: true };
  if (identity.user === undefined) return { ok: false, reason: `identity ${identity.subject} maps to no scheduler user` };
  if (identity.user !== jobUser) return { ok: false, reason: `not owner: the job belongs to ${jobUser}, not ${identity.user}` };
  return { ok: true };
}

/** The scheduler user a command runs as: the caller's own for plain users; admins act with the scribe's authority. */
export function onBehalfOf(identity: Identity): string | undefined {
  return isAdmin(identity) ? undefined : identity.user;
}

/**
 * The scheduler user a submit runs as: the caller's own, admins' too (a job runs as whoever
 * submitted it, and the scribe never submits as itself). Refuses an identity without one.
 */
export function submitUser(identity: Identity): string {
  if (identity.user === undefined) {
    throw new ActionRefusal(
      `this identity (${identity.subject}) is not mapped to a scheduler user, so it cannot submit: a job is submitted only as ` +
        "the requesting user, never as the scribe's; ask an administrator to give the identity a user (tokens file `user`, or the OAuth user claim)",
    );
  }
  return identity.user;
}

/** Refuses early an identity that may act on no job at all. */
export function requireActor(identity: Identity): void {
  if (!isAdmin(identity) && identity.user === undefined) {
    throw new ActionRefusal(
      `this identity (${identity.subject}) is not mapped to a scheduler user, so it may act on no jobs; ask an administrator to map it`,
    );
  }
}

// ---- the job an action is checked against ----------------------------------------------------

export interface ActionJobRow {
  cluster: string;
  scheduler: string;
  job_id_s: string;
  user: string;
  state: string;
}

const FINISHED = new Set(['completed', 'failed', 'canceled', 'timeout']);

/**
 * The job (by id, optional cluster) the caller may act on. Missing and not-yours answer the same
 * words; a finished job is refused with its state (there is nothing left to do).
 */
export async function findActionJob(
  deps: ActionDeps,
  args: { cluster?: string | undefined; job_id: string },
  verb: string,
  signal?: AbortSignal,
): Promise<ActionJobRow> {
  requireActor(deps.identity);
  const { id, label, rows } = await lookupJobRows<ActionJobRow>(
    deps,
    'cluster, scheduler, toString(job_id) AS job_id_s, user, state',
    { job_id: args.job_id, cluster: args.cluster },
    signal,
    (message) => new ActionRefusal(message),
  );
  const mine = rows.filter((r) => authorizeJobAction(deps.identity, r.user).ok);
  const where = args.cluster !== undefined ? `on ${args.cluster}` : 'on any cluster';
  if (mine.length === 0) {
    const whose = isAdmin(deps.identity) ? '' : ` that you may act on (it does not exist or is not yours: you may act on ${deps.identity.user}'s jobs only)`;
    const auditReason = rows.length ? authorizeJobAction(deps.identity, rows[0]!.user) : undefined;
    // The cluster of someone else's job goes to the audit (and the refusal record), not to the agent.
    const cluster = args.cluster ?? rows[0]?.cluster;
    throw new ActionRefusal(
      `no job ${label} ${where}${whose}; try search_jobs`,
      auditReason && !auditReason.ok ? auditReason.reason : 'no such job',
      { ...(cluster !== undefined && { cluster }), job_ids: [id] },
    );
  }
  if (mine.length > 1) {
    throw new ActionRefusal(onSeveralClusters(label, mine.map((r) => r.cluster)));
  }
  const job = mine[0]!;
  if (FINISHED.has(job.state)) {
    throw new ActionRefusal(`job ${label} on ${job.cluster} has already ended (${job.state}); there is nothing to ${verb}`, `job already ${job.state}`, {
      cluster: job.cluster,
      job_ids: [job.job_id_s],
    });
  }
  return job;
}

// ---- commands, their rows, and the outcome answered -------------------------------------------

export function buildCommand(
  deps: ActionDeps,
  fields: { cluster: string; action: Command['action']; job_ids: string[]; args?: CommandArgs; approval_required?: boolean; on_behalf_of?: string },
): Command {
  const nowS = Math.round(deps.now()) / 1000;
  const approval = fields.approval_required ?? false;
  const behalf = fields.on_behalf_of ?? onBehalfOf(deps.identity);
  return CommandSchema.parse({
    v: 1,
    kind: 'command',
    command_id: randomUUID(),
    cluster: fields.cluster,
    action: fields.action,
    job_ids: fields.job_ids,
    args: fields.args ?? {},
    requested_by: requesterOf(deps.identity),
    ...(behalf !== undefined && { on_behalf_of: behalf }),
    issued_at: nowS,
    expires_at: nowS + (approval ? APPROVAL_TTL_S : COMMAND_TTL_S),
    approval_required: approval,
  });
}

export interface StoredAction {
  cluster: string;
  command_id: string;
  action: string;
  job_ids: string[];
  requested_by: string;
  /** The requester's scheduler user ('' when it had none). */
  requested_user: string;
  approval_required: boolean;
  approved_by: string;
  rejected_by: string;
  status: string;
  reason: string;
  results: string;
  issued_ms: string;
  expires_ms: string;
  result_ms: string | null;
}

export const ACTION_COLUMNS = `
  cluster, command_id, action, job_ids, requested_by, requested_user, approval_required, approved_by, rejected_by,
  status, reason, results,
  toString(toUnixTimestamp64Milli(issued_at)) AS issued_ms,
  toString(toUnixTimestamp64Milli(expires_at)) AS expires_ms,
  toString(toUnixTimestamp64Milli(result_at)) AS result_ms`;

/**
 * The `actions` row of a command id (on `cluster`, when known). A row that holds the command
 * itself comes before one that holds only a result under that id (another cluster's, or one a
 * command copied there was answered with by an older scribe): such a row never hides the
 * genuine command.
 */
export async function loadActionRow(deps: ActionDeps, commandId: string, signal?: AbortSignal, cluster?: string): Promise<StoredAction | undefined> {
  const rows = await selectRows<StoredAction>(
    deps,
    `SELECT ${ACTION_COLUMNS} FROM {db:Identifier}.actions FINAL
      WHERE command_id = {id:String}${cluster !== undefined ? ' AND cluster = {cluster:String}' : ''}
      ORDER BY requested_by = '', cluster LIMIT 1`,
    { id: commandId, ...(cluster !== undefined && { cluster }) },
    signal,
  );
  return rows[0];
}

const isoMs = (ms: string | number) => new Date(Number(ms)).toISOString();

function parseResults(text: string): ActionOutcome['results'] {
  if (!text) return undefined;
  try {
    const data = JSON.parse(text) as unknown;
    return Array.isArray(data) ? (data as NonNullable<ActionOutcome['results']>) : undefined;
  } catch {
    return undefined;
  }
}

function nextStep(status: ActionOutcome['status'], cluster: string): string | undefined {
  switch (status) {
    case 'pending':
      return `the ${cluster} scribe has not answered yet; call command_status with this command_id later`;
    case 'awaiting_approval':
      return 'needs approval: another identity with the approver role calls approve_command (or reject_command) with this command_id';
    default:
      return undefined;
  }
}

export function outcomeFromRow(row: StoredAction): ActionOutcome {
  const status: ActionOutcome['status'] =
    (OUTCOME_STATUSES as readonly string[]).includes(row.status) ? (row.status as ActionOutcome['status']) : 'pending';
  const results = parseResults(row.results);
  const step = nextStep(status, row.cluster);
  return {
    command_id: row.command_id,
    cluster: row.cluster,
    action: row.action,
    status,
    job_ids: row.job_ids,
    ...(row.reason && { reason: row.reason }),
    ...(results && results.length > 0 && { results }),
    approval_required: Boolean(row.approval_required),
    requested_by: row.requested_by,
    ...(row.approved_by && { approved_by: row.approved_by }),
    issued_at: isoMs(row.issued_ms),
    expires_at: isoMs(row.expires_ms),
    ...(step && { next_step: step }),
  };
}

/** The outcome of a command no row of `actions` shows yet. */
export function outcomeFromCommand(command: Command, status: 'pending' | 'awaiting_approval'): ActionOutcome {
  const step = nextStep(status, command.cluster);
  return {
    command_id: command.command_id,
    cluster: command.cluster,
    action: command.action,
    status,
    job_ids: command.job_ids,
    approval_required: command.approval_required,
    requested_by: command.requested_by.subject,
    issued_at: isoMs(command.issued_at * 1000),
    expires_at: isoMs(command.expires_at * 1000),
    ...(step && { next_step: step }),
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Polls `actions` for a command until its status is one of `until` or the wait is over; returns
 * the last row seen (undefined when none). Store errors while polling are logged, not thrown:
 * the command is on its way whatever the read model says.
 */
export async function waitForAction(
  deps: ActionDeps,
  commandId: string,
  until: readonly string[],
  signal?: AbortSignal,
  cluster?: string,
): Promise<StoredAction | undefined> {
  const deadline = performance.now() + deps.actionTimeoutMs;
  let last: StoredAction | undefined;
  let reported = false;
  for (;;) {
    try {
      last = (await loadActionRow(deps, commandId, signal, cluster)) ?? last;
      if (last && until.includes(last.status)) return last;
    } catch (err) {
      if (!reported) deps.logError(`jobscribe mcp: reading actions for command ${commandId}: ${(err as Error).message}`);
      reported = true;
    }
    if (signal?.aborted || performance.now() >= deadline) return last;
    await sleep(Math.min(deps.actionPollMs, Math.max(1, deadline - performance.now())), signal);
  }
}

/**
 * Publishes a command and answers its outcome: at once `awaiting_approval` for one that needs
 * an approver, else the scribe's final result, or `pending` when it did not come within the wait.
 */
export async function sendCommand(deps: ActionDeps, tool: string, command: Command, signal?: AbortSignal): Promise<ActionOutcome> {
  if (!deps.commands) throw new ActionRefusal(NO_SENDER, 'no command sender', { cluster: command.cluster, job_ids: command.job_ids });
  await deps.commands.send(command);
  audit(deps, tool, { decision: 'sent', action: command.action, cluster: command.cluster, job_ids: command.job_ids, command_id: command.command_id });
  if (command.approval_required) return outcomeFromCommand(command, 'awaiting_approval');
  const row = await waitForAction(deps, command.command_id, FINAL_COMMAND_STATUSES, signal, command.cluster);
  if (!row || !FINAL_COMMAND_STATUSES.includes(row.status as never)) return outcomeFromCommand(command, 'pending');
  // The result (events topic) may be folded before the command (commands topic): the request
  // fields come from the command as sent; a submit's job_ids (its new job) from the row.
  const { command_id, cluster, action, job_ids, approval_required, requested_by, issued_at, expires_at } = outcomeFromCommand(command, 'pending');
  const out = outcomeFromRow(row);
  return { ...out, command_id, cluster, action, job_ids: action === 'submit' ? out.job_ids : job_ids, approval_required, requested_by, issued_at, expires_at };
}
