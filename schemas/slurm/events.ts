/**
 * Slurm job events: the transitions the Slurm poller (scribe/slurm) synthesizes. Slurm 22.05 has
 * no job event stream, so the scribe diffs successive `squeue --json` snapshots and back-fills
 * from `sacct`. Each event has a zod schema for its context; `raw` keeps the polled record(s).
 *
 * Vocabulary (one job's history, in order; the starred ones may repeat):
 *   submit                      the job exists (ts: Slurm's submit_time)
 *   eligible*                   it may start now (ts: Slurm's eligible_time; again after a release)
 *   hold* / release*            held (JobHeldUser / JobHeldAdmin) / no longer held   (ts: poll)
 *   priority*                   Slurm priority or nice changed while pending           (ts: poll)
 *   update*                     time limit, partition or name changed                 (ts: poll)
 *   dependency_never_satisfied  the job's dependency can never be met; it stays pending (ts: poll)
 *   start                       resources allocated, running (ts: Slurm's start_time)
 *   suspend* / resume*          (ts: Slurm's suspend_time)
 *   requeue*                    back to pending for another run (ts: Slurm's new submit_time)
 *   end                         final: COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL,
 *                               OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL, DEADLINE (ts: end_time)
 * `ts_source` is 'poll' when Slurm keeps no time for the change and `ts` is when the scribe saw it.
 */
import { z } from 'zod';

const uint = z.number().int().min(0);
const epoch = z.number().finite().min(0);

/** Where a fact came from: a squeue snapshot, or accounting (sacct) when squeue no longer had it. */
export const SlurmFactSourceSchema = z.enum(['squeue', 'sacct', 'jobcomp']);

export const SlurmEventContexts = {
  submit: z
    .object({
      name: z.string(),
      user: z.string(),
      uid: uint.nullable(),
      account: z.string(),
      partition: z.string(),
      qos: z.string(),
      priority: z.number().nullable(),
      nice: z.number().int().nullable(),
      /** null: no limit of its own (unlimited or the partition's). */
      time_limit_s: z.number().nullable(),
      ntasks: uint.nullable(),
      ncpus: uint.nullable(),
      nnodes: uint.nullable(),
      ngpus: uint.nullable(),
      /** Slurm's dependency string as submitted ("afterok:3(unfulfilled)"), '' when none. */
      dependency: z.string(),
      array_job_id: uint.nullable(),
      array_task_id: uint.nullable(),
      /** Unsplit array tasks of a pending array record ("1-3"), null otherwise. */
      array_tasks: z.string().nullable(),
      state: z.string(),
      reason: z.string(),
      source: SlurmFactSourceSchema,
    })
    .loose(),
  eligible: z.object({ reason: z.string().optional() }).loose(),
  hold: z.object({ by: z.enum(['user', 'admin']), reason: z.string() }).loose(),
  release: z.object({ priority: z.number().nullable() }).loose(),
  priority: z.object({ priority: z.number().nullable(), nice: z.number().int().nullable() }).loose(),
  update: z
    .object({ time_limit_s: z.number().nullable().optional(), partition: z.string().optional(), name: z.string().optional() })
    .loose(),
  dependency_never_satisfied: z.object({ dependency: z.string(), reason: z.string() }).loose(),
  start: z
    .object({
      nodes: z.string(),
      nnodes: uint.nullable(),
      ncpus: uint.nullable(),
      ntasks: uint.nullable(),
      ngpus: uint.nullable(),
      partition: z.string(),
      time_limit_s: z.number().nullable(),
      source: SlurmFactSourceSchema,
    })
    .loose(),
  suspend: z.object({}).loose(),
  resume: z.object({}).loose(),
  requeue: z.object({ restart_count: uint, state: z.string(), reason: z.string() }).loose(),
  end: z
    .object({
      /** Slurm's final state word. */
      state: z.string(),
      reason: z.string(),
      /** The job's exit code and signal as accounting reports them (sacct ExitCode "3:0"). */
      exit_code: z.number().int().nullable(),
      signal: z.number().int().nullable(),
      /** Highest exit code / signal of any step (sacct DerivedExitCode). */
      derived_exit_code: z.number().int().nullable(),
      derived_signal: z.number().int().nullable(),
      /** The batch script's raw wait status (squeue exit_code, or the .batch step), null without one. */
      wait_status: z.number().int().nullable(),
      nodes: z.string(),
      nnodes: uint.nullable(),
      ncpus: uint.nullable(),
      time_limit_s: z.number().nullable(),
      /** Slurm's final times for the run, null where Slurm has none (never eligible, never started). */
      submit_time: epoch.nullable(),
      eligible_time: epoch.nullable(),
      start_time: epoch.nullable(),
      end_time: epoch.nullable(),
      source: z.enum(['squeue', 'sacct', 'jobcomp', 'none']),
    })
    .loose(),
} as const;

export type SlurmEventName = keyof typeof SlurmEventContexts;
export const SLURM_EVENT_NAMES = Object.keys(SlurmEventContexts) as SlurmEventName[];
export type SlurmEventContext<N extends SlurmEventName> = z.infer<(typeof SlurmEventContexts)[N]>;

export function isSlurmEventName(name: string): name is SlurmEventName {
  return Object.hasOwn(SlurmEventContexts, name);
}

export type SlurmEventParse =
  | { ok: true; known: true; name: SlurmEventName; context: Record<string, unknown> }
  | { ok: true; known: false; name: string; context: Record<string, unknown> }
  | { ok: false; reason: string };

/** Validates a known event's context; unknown names pass through as `known: false`. */
export function parseSlurmEvent(name: string, context: Record<string, unknown> | undefined): SlurmEventParse {
  const ctx = context ?? {};
  if (!isSlurmEventName(name)) return { ok: true, known: false, name, context: ctx };
  const parsed = SlurmEventContexts[name].safeParse(ctx);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'context'}: ${i.message}`).join('; ');
    return { ok: false, reason: `slurm event "${name}" has a bad context: ${why}` };
  }
  return { ok: true, known: true, name, context: parsed.data };
}

/** `raw` of a Slurm envelope: the squeue record and/or the sacct lines the event was read from. */
export const SlurmRawSchema = z
  .object({
    squeue: z.record(z.string(), z.unknown()).optional(),
    sacct: z.array(z.record(z.string(), z.string())).optional(),
  })
  .loose();
export type SlurmRaw = z.infer<typeof SlurmRawSchema>;

/** Final Slurm states (squeue `job_state` / sacct `State`). */
export const SLURM_FINAL_STATES: ReadonlySet<string> = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'REVOKED',
]);
/** sacct `--state` abbreviations of the final states (for "jobs that ended in this window"). */
export const SACCT_FINAL_STATE_CODES = 'CA,CD,F,NF,OOM,TO,PR,BF,DL';

/** Slurm's final state word → the unified state of the `jobs` table. */
export function unifiedSlurmResult(state: string): 'completed' | 'failed' | 'canceled' | 'timeout' {
  switch (state) {
    case 'COMPLETED':
      return 'completed';
    case 'CANCELLED':
      return 'canceled';
    case 'TIMEOUT':
    case 'DEADLINE':
      return 'timeout';
    default:
      return 'failed';
  }
}
