/**
 * The Slurm half of the `jobs` fold: one Slurm event (schemas/slurm/events.ts) applied to a job.
 * Pure. Events whose seq is not above `last_seq` are ignored.
 *
 * sched_state is Slurm's own word (PENDING, RUNNING, SUSPENDED, then the final COMPLETED, FAILED,
 * CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ...), result the final word ('' while active).
 * `end` carries Slurm's final record (sacct's when accounting has it), whose times replace what
 * the polls saw: t_eligible is null for a job cancelled before it was eligible, t_start null for
 * one that never ran, exactly as sacct reports them.
 *
 * exit_code / signal (exit.ts, one rule for every scheduler): from the batch script's raw wait
 * status (squeue's exit_code, or the .batch step's ExitCode) when there is one, else from the
 * job's ExitCode "exit:signal": the exit status when it exited, else the signal (sacct prints a
 * job canceled or timed out while running as 0:0; its batch step says 0:15, SIGTERM). Null for
 * a job that never started (sacct's 0:0 is meaningless there), and for a job Slurm ended itself
 * (canceled, timed out) known only by its job-level 0:0 (a job completion log). oom: state
 * OUT_OF_MEMORY, or the SIG_OOM marker (sacct 0:125), which is no signal. The raw status
 * matters: sacct prints an exit status of 128 or more less 128 (a script exiting 139 shows 11:0,
 * seen on 22.05.8), so a job known from accounting alone after squeue forgot it carries that.
 * waitstatus: the raw wait status. Slurm has no urgency (null): its priority, and its nice value
 * in `nice`.
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import { parseSlurmEvent, unifiedSlurmResult } from '../../schemas/slurm/events.js';
import { expandHostlist } from './hostlist.js';
import { newJobRow, type JobRow } from './jobRow.js';
import { NO_END, fromExitSignalPair, fromWaitStatus, isSlurmOomStatus, SLURM_SIG_OOM_TERMSIG } from './exit.js';

type Obj = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Exception type the unified row shows for a Slurm final state ('' when none). */
const EXCEPTION_BY_STATE: Readonly<Record<string, string>> = {
  CANCELLED: 'cancel',
  TIMEOUT: 'timeout',
  DEADLINE: 'timeout',
  NODE_FAIL: 'node_fail',
  BOOT_FAIL: 'node_fail',
  OUT_OF_MEMORY: 'oom',
  PREEMPTED: 'preempt',
  UNKNOWN: 'lost',
};

export function evolveSlurmJob(job: JobRow | undefined, e: Envelope): JobRow | undefined {
  if (job && e.seq <= job.last_seq) return job;
  const parsed = parseSlurmEvent(e.name, e.context);
  const ctx: Obj = parsed.ok ? parsed.context : e.context;
  if (!job) {
    if (e.name !== 'submit') return undefined; // a job's history starts with submit
    job = newJob(e, ctx);
  } else {
    job = { ...job, last_seq: e.seq, last_event: e.name, last_event_ts: e.ts };
    applyEvent(job, e, ctx);
  }
  if (!job.user && e.user) job.user = e.user;
  job.wait_s = job.t_start !== null ? job.t_start - job.t_submit : null;
  job.run_s = job.t_start !== null && job.t_end !== null ? job.t_end - job.t_start : null;
  return job;
}

function newJob(e: Envelope, ctx: Obj): JobRow {
  const nice = num(ctx.nice) ?? 0;
  return newJobRow(e, {
    sched_state: 'PENDING',
    user: str(ctx.user) || e.user || '',
    userid: num(ctx.uid),
    queue: str(ctx.partition) ?? '',
    name: str(ctx.name) ?? '',
    ntasks: num(ctx.ntasks) ?? 0,
    ncores: num(ctx.ncpus) ?? 0,
    ngpus: num(ctx.ngpus) ?? 0,
    nnodes: num(ctx.nnodes) ?? 0,
    nice,
    priority: num(ctx.priority),
    dependencies: parseDependencies(str(ctx.dependency) ?? ''),
    time_limit_s: num(ctx.time_limit_s),
  });
}

function applyEvent(job: JobRow, e: Envelope, ctx: Obj): void {
  if (job.result && e.name !== 'requeue') return; // nothing but a requeue follows the end
  switch (e.name) {
    case 'eligible':
      job.t_eligible = e.ts;
      break;
    case 'hold':
      job.held = true;
      job.priority = 0;
      break;
    case 'release':
      job.held = false;
      if (num(ctx.priority) !== null) job.priority = num(ctx.priority);
      break;
    case 'priority': {
      job.priority = num(ctx.priority);
      job.nice = num(ctx.nice) ?? 0;
      break;
    }
    case 'update':
      if ('time_limit_s' in ctx) job.time_limit_s = num(ctx.time_limit_s);
      if (str(ctx.partition)) job.queue = str(ctx.partition)!;
      if (str(ctx.name) !== undefined) job.name = str(ctx.name)!;
      break;
    case 'dependency_never_satisfied':
      job.exception_type = 'dependency';
      job.exception_severity = 1; // not fatal: Slurm leaves the job pending
      job.exception_note = `${str(ctx.reason) ?? 'DependencyNeverSatisfied'} (${str(ctx.dependency) ?? ''})`;
      break;
    case 'start':
      job.sched_state = 'RUNNING';
      job.state = 'running';
      job.held = false;
      job.t_start = e.ts;
      applyAllocation(job, ctx);
      break;
    case 'suspend':
      job.sched_state = 'SUSPENDED';
      break;
    case 'resume':
      job.sched_state = 'RUNNING';
      break;
    case 'requeue':
      job.sched_state = str(ctx.state) && !/^(COMPLETING|RUNNING)$/.test(str(ctx.state)!) ? str(ctx.state)! : 'PENDING';
      job.state = 'pending';
      job.result = '';
      job.success = null;
      job.exit_code = null;
      job.signal = null;
      job.signal_name = '';
      job.oom = false;
      job.waitstatus = null;
      job.t_start = null;
      job.t_end = null;
      job.t_inactive = null;
      job.t_eligible = null;
      job.exception_type = '';
      job.exception_severity = null;
      job.exception_note = '';
      break;
    case 'end':
      applyEnd(job, e, ctx);
      break;
    default:
      break; // submit again, unknown names: no change
  }
}

function applyAllocation(job: JobRow, ctx: Obj): void {
  const nodes = str(ctx.nodes);
  if (nodes) job.nodes = expandHostlist(nodes);
  job.nnodes = num(ctx.nnodes) ?? (job.nodes.length || job.nnodes);
  job.ncores = num(ctx.ncpus) ?? job.ncores;
  job.ntasks = num(ctx.ntasks) ?? job.ntasks;
  job.ngpus = num(ctx.ngpus) ?? job.ngpus;
  if (str(ctx.partition)) job.queue = str(ctx.partition)!;
  if (num(ctx.time_limit_s) !== null) job.time_limit_s = num(ctx.time_limit_s);
}

function applyEnd(job: JobRow, e: Envelope, ctx: Obj): void {
  const state = str(ctx.state) ?? 'UNKNOWN';
  job.sched_state = state;
  job.result = state;
  job.state = unifiedSlurmResult(state);
  job.success = state === 'COMPLETED';
  job.held = false;
  // Slurm's final times replace the polled ones (null where Slurm has none)
  if ('submit_time' in ctx && num(ctx.submit_time) !== null) job.t_submit = num(ctx.submit_time)!;
  if ('eligible_time' in ctx) job.t_eligible = num(ctx.eligible_time);
  if ('start_time' in ctx) job.t_start = num(ctx.start_time);
  job.t_end = num(ctx.end_time) ?? e.ts;
  job.t_inactive = job.t_end;
  if (job.t_start !== null) applyAllocation(job, ctx);
  const signal = num(ctx.signal);
  const ws = num(ctx.wait_status);
  const fromWs = fromWaitStatus(ws);
  const told = fromWs.exit_code !== null || fromWs.signal !== null;
  // 0:0 from a job Slurm ended itself (cancel, time limit, node failure) records no status: the
  // batch step had it (0:15), but a job completion log or squeue without one does not say
  const unrecorded = !told && state !== 'COMPLETED' && state !== 'FAILED' && !num(ctx.exit_code) && !signal;
  Object.assign(job, job.t_start === null || unrecorded ? NO_END : told ? fromWs : fromExitSignalPair(num(ctx.exit_code), signal));
  job.oom = state === 'OUT_OF_MEMORY' || signal === SLURM_SIG_OOM_TERMSIG || isSlurmOomStatus(ws);
  job.waitstatus = ws;
  job.exception_type = EXCEPTION_BY_STATE[state] ?? '';
  job.exception_severity = job.exception_type ? 0 : null;
  // sacct's Reason is the last reason the job waited for: telling for a job that did not
  // complete (DependencyNeverSatisfied, JobHeldUser), noise for one that did
  const reason = str(ctx.reason) ?? '';
  job.exception_note = state !== 'COMPLETED' && reason && reason !== 'None' ? reason : '';
}

/** Slurm's dependency string → its clauses: "afterok:3(unfulfilled),afterany:5" → ["afterok:3", "afterany:5"]. */
export function parseDependencies(dependency: string): string[] {
  if (!dependency || dependency === '(null)') return [];
  return dependency
    .split(/[,?]/)
    .map((d) => d.replace(/\([^)]*\)$/, '').trim())
    .filter((d) => d !== '');
}
