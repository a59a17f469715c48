/**
 * Command records, version 1: how an action travels from the MCP service to a cluster's scribe
 * and how its outcome comes back (README "Actions and signing").
 *
 *   command         MCP service → `<prefix>.<cluster>.commands`, key = command_id
 *   approval        MCP service → `<prefix>.<cluster>.commands`, key = command_id
 *   refusal         MCP service → `<prefix>.<cluster>.commands`, key = command_id (a request it
 *                   refused; audit only: no scribe acts on it), or
 *                   scribe      → `<prefix>.<cluster>.events`,   key = command_id (a record it
 *                   refused: unsigned, forged, undecodable, for another cluster, an approval
 *                   that does not count); its own id, never the refused record's, so it cannot
 *                   change the state of a genuine command with that id
 *   command-result  scribe      → `<prefix>.<cluster>.events`,   key = `<cluster>:command:<id>`
 *
 * Each is one JSON object with `v` and `kind`, signed (when a key is configured) with
 * `signature` = HMAC-SHA256 over its canonical JSON without `signature` (log/signing.ts). A
 * receiver checks the signature on the JSON object as received, before parsing it here (parsing
 * may drop or default fields). Times are seconds since the epoch.
 *
 * Not here: signing (log/signing.ts), executing (scribe/commandLoop.ts), folding into `actions`
 * (projector/tables/actions.ts), authorizing (mcp/).
 */
import { z } from 'zod';
import { ClusterIdSchema, JobIdSchema } from '../../ids.js';
import { EpochSecondsSchema, RecordSignatureSchema, ScribeIdentitySchema } from '../../envelope/v1/envelope.js';
import { formatIssues, jsonObjectOf } from '../../envelope/index.js';

export const COMMANDS_VERSION = 1 as const;

/** Log message header `content-type` of each record kind (job envelopes keep theirs). */
export const COMMAND_CONTENT_TYPE = 'application/vnd.jobscribe.command+json';
export const APPROVAL_CONTENT_TYPE = 'application/vnd.jobscribe.approval+json';
export const COMMAND_RESULT_CONTENT_TYPE = 'application/vnd.jobscribe.command-result+json';
export const REFUSAL_CONTENT_TYPE = 'application/vnd.jobscribe.refusal+json';

/** The actions a command may ask for (SchedulerSource.act understands each). */
export const ACTIONS = ['cancel', 'hold', 'release', 'urgency', 'signal', 'submit'] as const;
export const ActionSchema = z.enum(ACTIONS);
export type Action = z.infer<typeof ActionSchema>;
/** The actions one command may apply to many jobs (the bulk tools); signal and submit name one job or none. */
export const BULK_ACTIONS = ['cancel', 'hold', 'release', 'urgency'] as const satisfies readonly Action[];
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** Roles that change what an identity may do. */
export const ROLE_ADMIN = 'admin';
export const ROLE_APPROVER = 'approver';

/** Who asked (or approved): the MCP identity, its scheduler user when mapped, and its roles. */
export const RequesterSchema = z.object({
  subject: z.string().min(1).max(256),
  user: z.string().min(1).max(256).optional(),
  roles: z.array(z.string().min(1).max(64)).max(32),
});
export type Requester = z.infer<typeof RequesterSchema>;

/**
 * "Nobody approves their own command": are two requesters (a command's requester and an
 * approver) the same person? Same scheduler user when both have one (two tokens of alice, or
 * her token and her OAuth login), or the same identity subject (token name / OAuth `sub`).
 * Pure; the MCP service, the scribe and the projector all decide with it.
 */
export function samePerson(a: Pick<Requester, 'subject' | 'user'>, b: Pick<Requester, 'subject' | 'user'>): boolean {
  if (a.subject === b.subject) return true;
  return a.user !== undefined && a.user !== '' && a.user === b.user;
}

export const CommandArgsSchema = z
  .object({
    /** urgency: the new urgency (Flux 0..31; Slurm: the priority). */
    urgency: z.number().int().optional(),
    /** signal: a number (15) or a name (TERM, SIGUSR1). */
    signal: z.union([z.number().int().min(1).max(64), z.string().regex(/^(SIG)?[A-Z][A-Z0-9]*$|^[0-9]{1,2}$/)]).optional(),
    /** cancel: the note kept with the cancel exception. */
    note: z.string().max(1024).optional(),
    /** submit: scheduler-specific (Flux: { jobspec, urgency?, flags? }; Slurm: { script | command, ... }). */
    submit: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type CommandArgs = z.infer<typeof CommandArgsSchema>;

export const CommandSchema = z
  .object({
    v: z.literal(COMMANDS_VERSION),
    kind: z.literal('command'),
    command_id: z.uuid(),
    cluster: ClusterIdSchema,
    action: ActionSchema,
    /** One id for single-job actions, many for a bulk one (BULK_ACTIONS), none for submit. */
    job_ids: z.array(JobIdSchema).max(100_000),
    args: CommandArgsSchema.default({}),
    requested_by: RequesterSchema,
    /**
     * Scheduler user the action runs as and whose ownership is checked (else requested_by.user).
     * A submit always runs as this user (else requested_by.user), an admin's too, and is rejected
     * by the scribe when there is neither: a job is never submitted as the scribe itself.
     */
    on_behalf_of: z.string().min(1).max(256).optional(),
    issued_at: EpochSecondsSchema,
    expires_at: EpochSecondsSchema,
    approval_required: z.boolean(),
    signature: RecordSignatureSchema.optional(),
  })
  .refine((c) => c.expires_at >= c.issued_at, { message: 'expires_at is before issued_at', path: ['expires_at'] })
  .refine((c) => (c.action === 'submit' ? c.job_ids.length === 0 : c.job_ids.length > 0), {
    message: 'submit takes no job_ids; every other action needs at least one',
    path: ['job_ids'],
  })
  .refine((c) => (BULK_ACTIONS as readonly string[]).includes(c.action) || c.job_ids.length <= 1, {
    message: `only ${BULK_ACTIONS.join(', ')} may name several jobs`,
    path: ['job_ids'],
  });
export type Command = z.infer<typeof CommandSchema>;
export type CommandInput = z.input<typeof CommandSchema>;

export const ApprovalSchema = z.object({
  v: z.literal(COMMANDS_VERSION),
  kind: z.literal('approval'),
  command_id: z.uuid(),
  cluster: ClusterIdSchema,
  decision: z.enum(['approve', 'reject']),
  by: RequesterSchema,
  at: EpochSecondsSchema,
  reason: z.string().max(1024).optional(),
  signature: RecordSignatureSchema.optional(),
});
export type Approval = z.infer<typeof ApprovalSchema>;

/**
 * An action request the MCP service refused before anything was sent (not the caller's job, a
 * finished job, a bad confirmation, not an approver), or a record a scribe refused (`tool`
 * `scribe`: unsigned, forged, undecodable, misplaced, an approval that does not count):
 * recorded so `actions` shows attempts too, in a row of their own. `command_id` is the
 * refusal's own id (a scribe derives it from the refused record: SCRIBE_REFUSAL_LIMITS);
 * `action` is the requested action or, for a refused approval, `approve` / `reject`.
 */
export const RefusalSchema = z.object({
  v: z.literal(COMMANDS_VERSION),
  kind: z.literal('refusal'),
  command_id: z.uuid(),
  cluster: ClusterIdSchema,
  action: z.string().min(1).max(64),
  job_ids: z.array(JobIdSchema).max(100_000),
  requested_by: RequesterSchema,
  /** The tool that refused (cancel_job, cancel_jobs, approve_command, …). */
  tool: z.string().min(1).max(64),
  reason: z.string().max(4096),
  at: EpochSecondsSchema,
  /** A scribe's refusal: the command id the refused record claimed, when it named one. */
  refers_to: z.uuid().optional(),
  /** A scribe's refusal: SHA-256 (hex) of the refused record's bytes as received. */
  digest: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** A scribe's refusal: the scribe that refused. */
  scribe: ScribeIdentitySchema.optional(),
  signature: RecordSignatureSchema.optional(),
});
export type Refusal = z.infer<typeof RefusalSchema>;

/**
 * What a scribe copies from a record it refuses into its refusal (and so into `actions`): the
 * sender chose these values, so they are few and short.
 */
export const SCRIBE_REFUSAL_LIMITS = { jobIds: 20, reason: 1024, subject: 256 } as const;

export const COMMAND_STATUSES = ['accepted', 'rejected', 'failed', 'awaiting_approval'] as const;
export const CommandStatusSchema = z.enum(COMMAND_STATUSES);
export type CommandStatus = z.infer<typeof CommandStatusSchema>;
/** Statuses after which nothing more happens to a command. */
export const FINAL_COMMAND_STATUSES: readonly CommandStatus[] = ['accepted', 'rejected', 'failed'];

export const JobActionResultSchema = z.object({
  job_id: z.string().max(64),
  ok: z.boolean(),
  /** The scheduler's refusal, for ok: false (code: no_such_job | not_permitted | invalid | unsupported | failed). */
  code: z.string().max(64).optional(),
  error: z.string().max(4096).optional(),
  /** What the scheduler answered (e.g. { old_urgency, urgency }). */
  response: z.record(z.string(), z.unknown()).optional(),
});
export type JobActionResult = z.infer<typeof JobActionResultSchema>;

export const CommandResultSchema = z.object({
  v: z.literal(COMMANDS_VERSION),
  kind: z.literal('command-result'),
  command_id: z.uuid(),
  cluster: ClusterIdSchema,
  /** accepted: the scheduler did it (for every job, or `results` says which failed). */
  status: CommandStatusSchema,
  reason: z.string().max(4096).optional(),
  results: z.array(JobActionResultSchema),
  /**
   * The approval the scribe decided an approval_required command on (approve → executed, reject →
   * rejected), so the result alone says who decided: it travels on the events topic and may be
   * folded before the approval record itself.
   */
  decided_by: z.object({ decision: z.enum(['approve', 'reject']), subject: z.string().min(1).max(256), at: EpochSecondsSchema }).optional(),
  at: EpochSecondsSchema,
  scribe: ScribeIdentitySchema,
  signature: RecordSignatureSchema.optional(),
});
export type CommandResult = z.infer<typeof CommandResultSchema>;

export type CommandRecord = Command | Approval | Refusal | CommandResult;

/** Log message key of a command or an approval (one command's records stay in order). */
export function commandKey(r: Pick<Command, 'command_id'>): string {
  return r.command_id;
}

/** Log message key of a command result on the events topic. */
export function commandResultKey(r: Pick<CommandResult, 'cluster' | 'command_id'>): string {
  return `${r.cluster}:command:${r.command_id}`;
}

/** The log message (key, value, headers) carrying a record; sign it before. */
export function commandRecordMessage(r: CommandRecord): { key: string; value: string; headers: Record<string, string> } {
  const contentType = CONTENT_TYPE_OF[r.kind];
  return {
    key: r.kind === 'command-result' ? commandResultKey(r) : commandKey(r),
    value: JSON.stringify(r),
    headers: { 'content-type': contentType, 'schema-version': String(r.v) },
  };
}

export type DecodedCommandRecord =
  | { ok: true; record: CommandRecord; json: Record<string, unknown> }
  | { ok: false; reason: string; json?: Record<string, unknown> };

const SCHEMA_OF = { command: CommandSchema, approval: ApprovalSchema, refusal: RefusalSchema, 'command-result': CommandResultSchema } as const;
const CONTENT_TYPE_OF: Record<CommandRecord['kind'], string> = {
  command: COMMAND_CONTENT_TYPE,
  approval: APPROVAL_CONTENT_TYPE,
  refusal: REFUSAL_CONTENT_TYPE,
  'command-result': COMMAND_RESULT_CONTENT_TYPE,
};

/**
 * Parses a log message value as one of the command record kinds. `json` is the object as
 * received (what a signature covers). `expect` limits the kinds accepted; `given` is the text's
 * JSON.parse result when the caller already has it.
 */
export function decodeCommandRecord(
  text: string,
  expect: readonly CommandRecord['kind'][] = ['command', 'approval', 'refusal', 'command-result'],
  given?: unknown,
): DecodedCommandRecord {
  const obj = jsonObjectOf(text, given, 'record');
  if (!obj.ok) return obj;
  const json = obj.json;
  const kind = json.kind;
  if (typeof kind !== 'string' || !(expect as readonly string[]).includes(kind)) {
    return { ok: false, reason: `unexpected record kind ${JSON.stringify(kind)} (expected ${expect.join(' | ')})`, json };
  }
  if (json.v !== COMMANDS_VERSION) return { ok: false, reason: `unknown ${kind} version ${JSON.stringify(json.v)}`, json };
  const parsed = SCHEMA_OF[kind as CommandRecord['kind']].safeParse(json);
  if (!parsed.success) {
    return { ok: false, reason: `invalid ${kind}: ${formatIssues(parsed.error, 5)}`, json };
  }
  return { ok: true, record: parsed.data, json };
}
