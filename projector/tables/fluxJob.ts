/**
 * The Flux rules of the `jobs` fold: flux-core 0.88's job-list state machine and result
 * (src/modules/job-list/job_state.c), its jobspec / R counts (job_data.c, libjob/jj.c) and
 * `flux jobs`' returncode (python flux/job/info.py). Pure. test/unit/jobsFold.unit.test.ts
 * checks every job of the real journals against `flux jobs -a --json`. One deliberate
 * difference: t_eligible is job-list's t_sched only for a job not held there (see noteEligible).
 * Another: exit_code is not `flux jobs`' returncode (-signal, -128 for canceled, 1 for a job that
 * failed before it ran) but the rule of exit.ts for every scheduler: the exit status when the
 * job's processes exited, else null, with the signal apart. fluxReturnCode still derives
 * returncode, for the comparison with `flux jobs`.
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import { newJobRow, type JobRow, type JobStateName } from './jobRow.js';
import { expandHostlist, idset } from './hostlist.js';
import { fromWaitStatus } from './exit.js';

// States (RFC 21, as job-list applies them): submit → NEW, validate → DEPEND, depend → PRIORITY,
// priority → SCHED (only from PRIORITY), alloc → RUN, finish or a fatal (severity 0) exception →
// CLEANUP, clean → INACTIVE; flux-restart takes SCHED back to PRIORITY (t_eligible is kept). A
// state is only ever entered forwards, so a late alloc after a fatal exception leaves the job in
// CLEANUP.
// `invalidate` (journal only) means the submission was rejected: the job never existed, so its
// row ends deleted (is_deleted = 1, INACTIVE without a result).

const FLUX_STATES = ['NEW', 'DEPEND', 'PRIORITY', 'SCHED', 'RUN', 'CLEANUP', 'INACTIVE'] as const;
type FluxState = (typeof FLUX_STATES)[number];
const rank = (s: string) => FLUX_STATES.indexOf(s as FluxState);
const isPending = (s: string) => rank(s) >= 0 && rank(s) < rank('RUN');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function evolveFluxJob(prev: JobRow | undefined, e: Envelope): JobRow | undefined {
  if (!prev && e.name !== 'submit') return undefined;
  const job: JobRow = prev ? { ...prev } : submitted(e);
  job.last_seq = e.seq;
  job.last_event = e.name;
  job.last_event_ts = e.ts;
  if (!job.user && e.user) job.user = e.user;
  if (prev) apply(job, e);
  noteEligible(job, e.ts);
  job.held = isPending(job.sched_state) && job.urgency === 0 && job.is_deleted === 0;
  job.state = unifiedState(job);
  job.wait_s = job.t_start === null ? null : job.t_start - job.t_submit;
  job.run_s = job.t_start === null || job.t_end === null ? null : job.t_end - job.t_start;
  return job;
}

function submitted(e: Envelope): JobRow {
  const job = newJobRow(e, { sched_state: 'NEW', userid: num(e.context.userid) ?? null, urgency: num(e.context.urgency) ?? 16 });
  const jobspec = rawMember(e, 'jobspec');
  if (jobspec) applyJobspec(job, jobspec);
  return job;
}

const rawMember = (e: Envelope, key: 'jobspec' | 'R'): Obj | undefined => {
  const v = isObj(e.raw) ? e.raw[key] : undefined;
  return isObj(v) ? v : undefined;
};

/** Enters `to` if it lies ahead of the current state; says whether it did. */
function advance(job: JobRow, to: FluxState, ts: number): boolean {
  if (rank(to) <= rank(job.sched_state)) return false;
  job.sched_state = to;
  if (to === 'RUN') job.t_start = ts;
  else if (to === 'CLEANUP') job.t_end = ts;
  else if (to === 'INACTIVE') job.t_inactive = ts;
  return true;
}

/**
 * t_eligible: the first moment the job is schedulable, in SCHED and not held (urgency > 0): its
 * first SCHED, or for a job held there (submitted with urgency 0, or held before it got there)
 * the urgency event that releases it. Kept from then on: after a broker restart (flux-restart)
 * the job passes PRIORITY → SCHED again but has been eligible since the first time. As Slurm's
 * EligibleTime (slurmJob.ts), a hold is not eligible wait (job_timeline's eligible_wait_s).
 */
function noteEligible(job: JobRow, ts: number): void {
  if (job.t_eligible === null && job.sched_state === 'SCHED' && job.urgency !== null && job.urgency > 0) job.t_eligible = ts;
}

function apply(job: JobRow, e: Envelope): void {
  const ctx = e.context;
  switch (e.name) {
    case 'validate':
      advance(job, 'DEPEND', e.ts);
      break;
    case 'invalidate':
      job.is_deleted = 1;
      advance(job, 'INACTIVE', e.ts);
      break;
    case 'depend':
      advance(job, 'PRIORITY', e.ts);
      break;
    case 'priority':
      job.priority = num(ctx.priority) ?? job.priority;
      if (job.sched_state === 'PRIORITY') advance(job, 'SCHED', e.ts);
      break;
    case 'flux-restart':
      if (job.sched_state === 'SCHED') job.sched_state = 'PRIORITY';
      break;
    case 'urgency':
      job.urgency = num(ctx.urgency) ?? job.urgency;
      break;
    case 'dependency-add': {
      const d = str(ctx.description);
      if (d !== undefined && !job.dependencies.includes(d)) job.dependencies = [...job.dependencies, d];
      break;
    }
    case 'dependency-remove':
      job.dependencies = job.dependencies.filter((d) => d !== ctx.description);
      break;
    case 'jobspec-update':
      // Applied in any state, as flux-core 0.88's job-list does and as the job-manager
      // does to its own jobspec (job-manager/event.c), whose copy a backlog carries: a running
      // job's `flux update ID duration=10m` shows the same 600 s whether the job was read live
      // or from a backlog, and it is the limit the job-manager now enforces.
      applyJobspecUpdate(job, ctx);
      break;
    case 'alloc': {
      const R = rawMember(e, 'R');
      if (advance(job, 'RUN', e.ts) && R) applyR(job, R);
      break;
    }
    case 'exception': {
      // job-list keeps the most severe exception, the first one among equals.
      const severity = num(ctx.severity) ?? 0;
      if (job.exception_severity === null || severity < job.exception_severity) {
        job.exception_type = str(ctx.type) ?? '';
        job.exception_severity = severity;
        job.exception_note = str(ctx.note) ?? '';
      }
      if (ctx.type === 'oom') job.oom = true;
      if (severity === 0) advance(job, 'CLEANUP', e.ts);
      break;
    }
    case 'finish': {
      const status = num(ctx.status);
      if (status === undefined) break;
      job.waitstatus = status;
      // Known from finish on: status 0 and no fatal exception before it (job-list).
      job.success = status === 0 && job.exception_severity !== 0;
      Object.assign(job, fromWaitStatus(status));
      if (job.sched_state === 'RUN') advance(job, 'CLEANUP', e.ts);
      break;
    }
    case 'clean':
      if (advance(job, 'INACTIVE', e.ts) && job.is_deleted === 0) {
        job.success = job.success === true;
        job.result = fluxResult(job);
      }
      break;
    default:
      // submit (again), start, release, free, memo, annotations, prolog/epilog, resource-update,
      // set-flags, debug and names unknown to us: nothing in the row changes.
      break;
  }
}

/** job-list's result: COMPLETED if successful, else by the kept exception's type, else FAILED. */
function fluxResult(job: JobRow): string {
  if (job.success) return 'COMPLETED';
  if (job.exception_type === 'cancel') return 'CANCELED';
  if (job.exception_type === 'timeout') return 'TIMEOUT';
  return 'FAILED';
}

/**
 * `flux jobs`' returncode (flux/job/info.py): the exit status when the job shell exited, minus
 * the signal number when it was killed by one (tasks killed by a signal make the shell exit with
 * 128+signal); with no wait status, -128 for CANCELED, 1 for FAILED, otherwise none.
 */
export function fluxReturnCode(waitstatus: number | null, result: string): number | null {
  if (waitstatus === null) return result === 'CANCELED' ? -128 : result === 'FAILED' ? 1 : null;
  const termsig = waitstatus & 0x7f;
  if (termsig === 0) return (waitstatus >> 8) & 0xff; // WIFEXITED
  if (termsig !== 0x7f) return -termsig; // WIFSIGNALED
  return null; // stopped: neither
}

function unifiedState(job: JobRow): JobStateName {
  if (isPending(job.sched_state)) return 'pending';
  if (job.sched_state === 'RUN') return 'running';
  if (job.sched_state === 'CLEANUP') return job.t_start === null ? 'pending' : 'running';
  const byResult: Record<string, JobStateName> = { COMPLETED: 'completed', CANCELED: 'canceled', TIMEOUT: 'timeout' };
  return byResult[job.result] ?? 'failed';
}

// ---------------------------------------------------------------------------------------------
// Flux jobspec (RFC 14, version 1) and R (RFC 20), read as job-list reads them.

/** Name, queue, time limit and requested counts. */
function applyJobspec(job: JobRow, spec: Obj): void {
  const system = dig(spec, 'attributes', 'system');
  const tasks = Array.isArray(spec.tasks) ? spec.tasks : [];
  const task0 = isObj(tasks[0]) ? tasks[0] : {};
  const arg0 = Array.isArray(task0.command) ? str(task0.command[0]) : undefined;
  job.name = str(dig(system, 'job')?.name) ?? (arg0 === undefined ? '' : commandName(arg0));
  job.queue = str(system?.queue) ?? '';
  job.time_limit_s = timeLimit(system?.duration);

  // libjob/jj.c: one count per resource type (the last one seen wins), slots × nodes.
  const jj = { node: 0, slot: 0, core: 0, gpu: 0 };
  let exclusive = false;
  const walk = (level: unknown): void => {
    for (const r of Array.isArray(level) ? level : []) {
      if (!isObj(r) || !(r.type === 'node' || r.type === 'slot' || r.type === 'core' || r.type === 'gpu')) continue;
      jj[r.type] = num(r.count) ?? 0;
      if (r.type === 'node' && r.exclusive === true) exclusive = true;
      walk(r.with);
    }
  };
  walk(spec.resources);
  if (jj.slot <= 0 || jj.core <= 0) return; // not a V1 jobspec: counts unknown, as in job-list
  const nslots = jj.node > 0 ? jj.slot * jj.node : jj.slot;

  job.nnodes = jj.node; // 0 = unknown until R
  job.ncores = jj.node > 0 && exclusive ? 0 : nslots * jj.core; // exclusive nodes: from R
  job.ngpus = nslots * jj.gpu;
  const perResource = dig(system, 'shell', 'options', 'per-resource');
  const perCount = num(perResource?.count) ?? 1;
  if (perResource?.type === 'node') job.ntasks = jj.node > 0 ? jj.node * perCount : 0; // else from R
  else if (perResource?.type === 'core') job.ntasks = jj.node > 0 ? 0 : nslots * jj.core * perCount;
  else job.ntasks = num(dig(task0, 'count')?.total) ?? nslots;
}

/** jobspec-update: dotted jobspec paths (or enclosing objects) and their new values. */
function applyJobspecUpdate(job: JobRow, updates: Obj): void {
  for (const [key, value] of Object.entries(updates)) {
    const at = (path: string): unknown => {
      if (key === path) return value;
      if (!path.startsWith(key + '.')) return undefined;
      return path
        .slice(key.length + 1)
        .split('.')
        .reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), value);
    };
    const duration = at('attributes.system.duration');
    if (duration !== undefined) job.time_limit_s = timeLimit(duration);
    const queue = str(at('attributes.system.queue'));
    if (queue !== undefined) job.queue = queue;
    const name = str(at('attributes.system.job.name'));
    if (name !== undefined) job.name = name;
  }
}

/** Allocated nodes and cores (and gpus) from R: job-list's parse_R. */
function applyR(job: JobRow, R: Obj): void {
  const execution = dig(R, 'execution');
  const perRank = new Map<number, { core: Set<number>; gpu: Set<number> }>();
  for (const entry of Array.isArray(execution?.R_lite) ? execution.R_lite : []) {
    if (!isObj(entry)) continue;
    const children = isObj(entry.children) ? entry.children : {};
    for (const r of idset(entry.rank)) {
      const node = perRank.get(r) ?? { core: new Set<number>(), gpu: new Set<number>() };
      for (const c of idset(children.core)) node.core.add(c);
      for (const g of idset(children.gpu)) node.gpu.add(g);
      perRank.set(r, node);
    }
  }
  if (perRank.size > 0) {
    job.nnodes = perRank.size;
    job.ncores = [...perRank.values()].reduce((n, node) => n + node.core.size, 0);
    job.ngpus = [...perRank.values()].reduce((n, node) => n + node.gpu.size, 0);
  }
  const nodelist = Array.isArray(execution?.nodelist) ? execution.nodelist : [];
  const nodes = nodelist.flatMap((h) => (typeof h === 'string' ? expandHostlist(h) : []));
  if (nodes.length > 0) job.nodes = nodes;
}

function dig(o: unknown, ...path: string[]): Obj | undefined {
  let v = o;
  for (const k of path) v = isObj(v) ? v[k] : undefined;
  return isObj(v) ? v : undefined;
}

/** job-list's job name from the command: the basename, or the whole path if it ends in '/'. */
function commandName(arg0: string): string {
  const base = arg0.slice(arg0.lastIndexOf('/') + 1);
  return base === '' ? arg0 : base;
}

/** attributes.system.duration: seconds, 0 meaning unlimited. */
function timeLimit(duration: unknown): number | null {
  const d = num(duration);
  return d !== undefined && d > 0 ? d : null;
}
