/**
 * The action tools' contracts: cancel_job, hold_job, release_job, set_urgency, signal_job,
 * submit_job, the bulk cancel_jobs and act_on_jobs (dry run + confirmation token), approve_command /
 * reject_command, command_status and list_actions. Every action answers an ActionOutcome: the
 * command's row in `actions` (schemas/clickhouse/005_actions.sql) as far as it got, or `pending`
 * when the scribe has not answered within the wait.
 */
import { z } from 'zod';
import { BULK_ACTIONS } from '../commands/index.js';
import { Int, IsoTimeSchema, JobIdArgSchema, ClusterNameSchema } from './common.js';

// ---- inputs --------------------------------------------------------------------------------

const ClusterOfJob = ClusterNameSchema.optional().describe('needed only if the id is on several clusters');

export const JobActionInputSchema = z.strictObject({
  cluster: ClusterOfJob,
  job_id: JobIdArgSchema,
});

export const CancelJobInputSchema = JobActionInputSchema.extend({
  note: z.string().max(1024).optional().describe('kept with the cancel'),
});

/** Flux: urgency 0 (held) .. 31 (expedite), default 16, users up to 16. Slurm: the job's priority. */
export const FLUX_URGENCY_MAX = 31;
const UrgencySchema = z
  .number({ error: 'must be a whole number >= 0' })
  .int({ error: 'must be a whole number >= 0' })
  .min(0, { error: 'must be a whole number >= 0' })
  // The upper bound is the scheduler's: Flux 31 (checked before sending), Slurm 4294967293 (the scribe's).
  .meta({ maximum: undefined });
export const SetUrgencyInputSchema = JobActionInputSchema.extend({
  urgency: UrgencySchema.describe('Flux 0-31 (0 holds, 16 default, >16 admins); Slurm priority'),
});

export const SignalJobInputSchema = JobActionInputSchema.extend({
  signal: z
    .union([z.number().int().min(1).max(64), z.string().regex(/^(SIG)?[A-Z][A-Z0-9]*$|^[0-9]{1,2}$/)], {
      error: 'must be a signal number 1..64 or a name such as "TERM", "SIGUSR1"',
    })
    .default('TERM')
    .describe('number 1..64 or name (TERM, SIGUSR1); default TERM'),
});

export const SubmitJobInputSchema = z.strictObject({
  cluster: ClusterNameSchema.describe('cluster to submit to'),
  submit: z
    .record(z.string(), z.unknown())
    .describe('scheduler-specific: Flux { jobspec, urgency? }; Slurm { script | command, ... }'),
});

export const BULK_STATES = ['pending', 'running'] as const;

export const CancelJobsInputSchema = z.strictObject({
  cluster: ClusterNameSchema.describe('cluster whose jobs to cancel (required)'),
  user: z.string().min(1).max(256).optional().describe('exact user name (plain users: only their own)'),
  queue: z.string().min(1).max(256).optional().describe('exact queue / partition'),
  state: z
    .union([z.enum(BULK_STATES), z.array(z.enum(BULK_STATES)).min(1).max(2)], { error: 'must be pending, running, or both as a list' })
    .optional()
    .describe('pending, running or both (default both)'),
  name: z.string().min(1).max(256).optional().describe('case-insensitive substring of the job name'),
  note: z.string().max(1024).optional().describe('reason kept with each cancel'),
  confirm: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .describe('confirm_token from the dry run, with the same filters; omit to get the dry run'),
});
export type CancelJobsInput = z.infer<typeof CancelJobsInputSchema>;

/** act_on_jobs: cancel_jobs' filters and two calls, for any bulk action (BULK_ACTIONS). */
export const ActOnJobsInputSchema = CancelJobsInputSchema.extend({
  cluster: ClusterNameSchema.describe('cluster whose jobs to act on (required)'),
  action: z.enum(BULK_ACTIONS, { error: `must be one of ${BULK_ACTIONS.join(', ')}` }),
  state: CancelJobsInputSchema.shape.state.describe('cancel: pending, running or both (default both); others: pending only'),
  urgency: UrgencySchema.optional().describe('action urgency: Flux 0-31 (16 default, >16 admins); Slurm: admins only, the priority'),
  note: z.string().max(1024).optional().describe('cancel: reason kept with each cancel'),
});
export type ActOnJobsInput = z.infer<typeof ActOnJobsInputSchema>;

const CommandIdSchema = z.uuid({ error: 'must be a command_id as an action tool returned it (a UUID)' });

export const CommandIdInputSchema = z.strictObject({ command_id: CommandIdSchema });

export const DecisionInputSchema = z.strictObject({
  command_id: CommandIdSchema,
  reason: z.string().max(1024).optional().describe('kept with the decision'),
});

export const ACTION_ROW_STATUSES = ['requested', 'awaiting_approval', 'accepted', 'rejected', 'failed', 'refused'] as const;

export const ListActionsInputSchema = z.strictObject({
  cluster: ClusterNameSchema.optional(),
  status: z.enum(ACTION_ROW_STATUSES).optional(),
  requested_by: z.string().min(1).max(256).optional().describe('subject that asked'),
  limit: z.number().int().min(1).max(200).default(50),
});
export type ListActionsInput = z.infer<typeof ListActionsInputSchema>;

// ---- outputs -------------------------------------------------------------------------------

/** pending: not answered yet (ask command_status later); the others as in `actions.status` (refused: by the MCP service, nothing sent). */
export const OUTCOME_STATUSES = ['pending', 'awaiting_approval', 'accepted', 'rejected', 'failed', 'refused'] as const;

export const JobActionResultOutSchema = z.object({
  job_id: z.string(),
  ok: z.boolean(),
  code: z.string().optional(),
  error: z.string().optional(),
  response: z.looseObject({}).optional(),
});

export const ActionOutcomeSchema = z.object({
  command_id: z.string(),
  cluster: z.string(),
  action: z.string(),
  status: z.enum(OUTCOME_STATUSES),
  job_ids: z.array(z.string()),
  reason: z.string().optional(),
  /** Per job, once the scribe answered. */
  results: z.array(JobActionResultOutSchema).optional(),
  approval_required: z.boolean(),
  requested_by: z.string(),
  approved_by: z.string().optional(),
  issued_at: IsoTimeSchema,
  expires_at: IsoTimeSchema,
  next_step: z.string().optional(),
});
export type ActionOutcome = z.infer<typeof ActionOutcomeSchema>;

export const ActionOutputSchema = z.object({ command: ActionOutcomeSchema });

/**
 * The output schema the action tools publish: the fields an agent acts on. Their answers are
 * the whole ActionOutputSchema (who asked, approvals, times); publishing all of it for each of
 * nine tools would cost ~1,200 tokens of every agent's context for fields it rarely reads.
 */
const CommandAnswerSchema = z.looseObject({
    command_id: z.string(),
    status: z.enum(OUTCOME_STATUSES),
    reason: z.string().optional(),
    results: z.array(z.looseObject({ job_id: z.string(), ok: z.boolean(), error: z.string().optional() })).optional(),
    next_step: z.string().optional(),
});
export const ActionAnswerSchema = z.looseObject({ command: CommandAnswerSchema });
export type ActionOutput = z.infer<typeof ActionOutputSchema>;

export const DRY_RUN_SHOWN = 50;

export const BulkJobSchema = z.object({
  job_id: z.string(),
  user: z.string(),
  queue: z.string(),
  name: z.string(),
  state: z.string(),
});

/** What cancel_jobs and act_on_jobs answer. */
export const CancelJobsOutputSchema = z.object({
  /** true: nothing was sent; call again with confirm = confirm_token to act on these jobs. */
  dry_run: z.boolean(),
  count: Int,
  jobs: z.array(BulkJobSchema).optional().describe(`the first ${DRY_RUN_SHOWN} matches`),
  confirm_token: z.string().optional(),
  token_expires_at: IsoTimeSchema.optional(),
  approval_required: z.boolean(),
  command: CommandAnswerSchema.optional(),
  next_step: z.string().optional(),
});
export type CancelJobsOutput = z.infer<typeof CancelJobsOutputSchema>;

export const ListActionsOutputSchema = z.object({ actions: z.array(ActionOutcomeSchema), truncated: z.boolean() });
export type ListActionsOutput = z.infer<typeof ListActionsOutputSchema>;
