/**
 * The Flux half of the `jobs` fold: one Flux event applied to a job, deriving state, result,
 * returncode and times the way flux-core 0.88's job-list and `flux jobs` do (checked against
 * the real `flux jobs -a --json` output in test/unit/jobsFold.unit.test.ts). Pure.
 *
 * States (RFC 21): submit → NEW, validate → DEPEND (invalidate: the job never existed),
 * depend → PRIORITY, priority → SCHED, alloc → RUN, finish or a fatal exception → CLEANUP,
 * clean → INACTIVE. Result at the end: the first fatal exception decides (cancel → CANCELED,
 * timeout → TIMEOUT, any other → FAILED); without one, wait status 0 → COMPLETED, else FAILED.
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import { parseFluxEvent } from '../../schemas/flux/events.js';
import type { JobRow, JobStateName } from './jobs.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function evolveFluxJob(job: JobRow | undefined, e: Envelope): JobRow | undefined {
  if (job && e.seq <= job.last_seq) return job;
  const parsed = parseFluxEvent(e.name, e.context);
  const ctx: Obj = parsed.ok ? (parsed.event.context as Obj) : e.context;
  const raw = isObj(e.raw) ? e.raw : {};

  if (!job) {
    if (e.name !== 'submit') return undefined; // a job's history starts with submit
    job = newJob(e, ctx, raw);
  } else {
    job = { ...job, last_seq: e.seq, last_event: e.name, last_event_ts: e.ts };
    applyEvent(job, e, ctx, raw);
  }
  if (!job.user && e.user) job.user = e.user;
  return deriveOutcome(job);
}

function newJob(e: Envelope, ctx: Obj, raw: Obj): JobRow {
  const job: JobRow = {
    cluster: e.cluster,
    scheduler: 'flux',
    job_id: e.job_id,
    user: e.user ?? '',
    userid: num(ctx.userid) ?? null,
    queue: '',
    name: '',
    ntasks: 0,
    ncores: 0,
    ngpus: 0,
    nnodes: 0,
    nodes: [],
    state: 'pending',
    sched_state: 'NEW',
    result: '',
    success: null,
    exit_code: null,
    waitstatus: null,
    exception_type: '',
    exception_severity: null,
    exception_note: '',
    urgency: num(ctx.urgency) ?? 16,
    priority: null,
    held: false,
    dependencies: [],
    time_limit_s: null,
    t_submit: e.ts,
    t_eligible: null,
    t_start: null,
    t_end: null,
    t_inactive: null,
    wait_s: null,
    run_s: null,
    last_seq: e.seq,
    last_event: e.name,
    last_event_ts: e.ts,
    is_deleted: 0,
  };
  if (isObj(raw.jobspec)) applyJobspec(job, raw.jobspec);
  return job;
}

function applyEvent(job: JobRow, e: Envelope, ctx: Obj, raw: Obj): void {
  const active = job.sched_state !== 'INACTIVE';
  switch (e.name) {
    case 'validate':
      if (job.sched_state === 'NEW') job.sched_state = 'DEPEND';
      break;
    case 'invalidate':
      job.sched_state = 'INACTIVE';
      job.is_deleted = 1;
      break;
    case 'depend':
      if (job.sched_state === 'DEPEND') job.sched_state = 'PRIORITY';
      break;
    case 'priority':
      job.priority = num(ctx.priority) ?? job.priority;
      if (job.sched_state === 'PRIORITY') {
        job.sched_state = 'SCHED';
        job.t_eligible = e.ts;
      }
      break;
    case 'urgency':
      job.urgency = num(ctx.urgency) ?? job.urgency;
      break;
    case 'dependency-add': {
      const d = String(ctx.description ?? '');
      if (d && !job.dependencies.includes(d)) job.dependencies = [...job.dependencies, d];
      break;
    }
    case 'dependency-remove': {
      const d = String(ctx.description ?? '');
      job.dependencies = job.dependencies.filter((x) => x !== d);
      break;
    }
    case 'jobspec-update': {
      const duration = num(ctx['attributes.system.duration']);
      if (duration !== undefined) job.time_limit_s = duration > 0 ? duration : null;
      const queue = ctx['attributes.system.queue'];
      if (typeof queue === 'string') job.queue = queue;
      break;
    }
    case 'alloc':
      if (job.sched_state === 'SCHED') {
        job.sched_state = 'RUN';
        job.t_start = e.ts;
      }
      if (isObj(raw.R)) applyR(job, raw.R);
      break;
    case 'exception': {
      const severity = num(ctx.severity) ?? 0;
      // The most severe exception is kept (the first among equals), as job-list does.
      if (job.exception_severity === null || severity < job.exception_severity) {
        job.exception_type = String(ctx.type ?? '');
        job.exception_severity = severity;
        job.exception_note = String(ctx.note ?? '');
      }
      if (severity === 0 && active && job.sched_state !== 'CLEANUP') {
        if (!job.result) job.result = fatalResult(String(ctx.type ?? ''));
        enterCleanup(job, e.ts);
      } else if (severity === 0 && !job.result) {
        job.result = fatalResult(String(ctx.type ?? ''));
      }
      break;
    }
    case 'finish': {
      const status = num(ctx.status);
      if (status !== undefined) job.waitstatus = status;
      if (job.sched_state === 'RUN') enterCleanup(job, e.ts);
      break;
    }
    case 'clean':
      job.sched_state = 'INACTIVE';
      job.t_inactive = e.ts;
      break;
    default:
      break; // start, release, free, memo, annotations, prolog/epilog, unknown names: no state change
  }
}

function fatalResult(type: string): string {
  return type === 'cancel' ? 'CANCELED' : type === 'timeout' ? 'TIMEOUT' : 'FAILED';
}

function enterCleanup(job: JobRow, ts: number): void {
  job.sched_state = 'CLEANUP';
  job.t_end = ts;
}

/** Derived fields: held, unified state, result, success, returncode, wait and run time. */
function deriveOutcome(job: JobRow): JobRow {
  const pendingStates = ['NEW', 'DEPEND', 'PRIORITY', 'SCHED'];
  job.held = pendingStates.includes(job.sched_state) && job.urgency === 0;
  const inactive = job.sched_state === 'INACTIVE';
  if (inactive && !job.is_deleted) {
    if (!job.result) job.result = job.waitstatus === 0 ? 'COMPLETED' : 'FAILED';
    job.success = job.result === 'COMPLETED';
    job.exit_code = returnCode(job.waitstatus, job.result);
  }
  job.state = unifiedState(job);
  job.wait_s = job.t_start !== null ? job.t_start - job.t_submit : null;
  job.run_s = job.t_start !== null && job.t_end !== null ? job.t_end - job.t_start : null;
  return job;
}

/** flux-core's returncode: exit code, 128+signal when signaled, -128 canceled before running. */
export function returnCode(waitstatus: number | null, result: string): number | null {
  if (waitstatus === null) return result === 'CANCELED' ? -128 : result ? 1 : null;
  const signal = waitstatus & 0x7f;
  if (signal !== 0) return 128 + signal;
  return (waitstatus >> 8) & 0xff;
}

function unifiedState(job: JobRow): JobStateName {
  switch (job.sched_state) {
    case 'RUN':
      return 'running';
    case 'CLEANUP':
      return job.t_start !== null ? 'running' : 'pending';
    case 'INACTIVE':
      return ({ COMPLETED: 'completed', FAILED: 'failed', CANCELED: 'canceled', TIMEOUT: 'timeout' } as const)[job.result as 'COMPLETED'] ?? 'failed';
    default:
      return 'pending';
  }
}

/** Requested sizes, name, queue and time limit from the jobspec (RFC 14). */
function applyJobspec(job: JobRow, spec: Obj): void {
  const attrs = isObj(spec.attributes) ? spec.attributes : {};
  const system = isObj(attrs.system) ? attrs.system : {};
  const tasks = Array.isArray(spec.tasks) ? spec.tasks.filter(isObj) : [];
  const jobName = isObj(system.job) && typeof system.job.name === 'string' ? system.job.name : undefined;
  const command = Array.isArray(tasks[0]?.command) ? String(tasks[0]!.command[0] ?? '') : '';
  job.name = jobName ?? command.split('/').pop() ?? '';
  if (typeof system.queue === 'string') job.queue = system.queue;
  const duration = num(system.duration);
  job.time_limit_s = duration && duration > 0 ? duration : null;

  const counts = countResources(Array.isArray(spec.resources) ? spec.resources : [], 1);
  job.nnodes = counts.nodes;
  job.ncores = counts.cores;
  job.ngpus = counts.gpus;
  const count = isObj(tasks[0]?.count) ? tasks[0]!.count : {};
  const perSlot = num(count.per_slot);
  const total = num(count.total);
  job.ntasks = total ?? (perSlot ?? 1) * counts.slots;
}

interface Counts {
  nodes: number;
  slots: number;
  cores: number;
  gpus: number;
}

function countResources(resources: unknown[], multiplier: number): Counts {
  const out: Counts = { nodes: 0, slots: 0, cores: 0, gpus: 0 };
  for (const r of resources) {
    if (!isObj(r)) continue;
    const count = multiplier * (num(r.count) ?? (isObj(r.count) ? num(r.count.min) ?? 1 : 1));
    const inner = countResources(Array.isArray(r.with) ? r.with : [], count);
    if (r.type === 'node') out.nodes += count;
    if (r.type === 'slot') out.slots += count;
    if (r.type === 'core') out.cores += count;
    if (r.type === 'gpu') out.gpus += count;
    out.nodes += inner.nodes;
    out.slots += inner.slots;
    out.cores += inner.cores;
    out.gpus += inner.gpus;
  }
  return out;
}

/** Allocated nodes and cores from R (RFC 20). */
function applyR(job: JobRow, R: Obj): void {
  const exec = isObj(R.execution) ? R.execution : {};
  const nodes = (Array.isArray(exec.nodelist) ? exec.nodelist : []).flatMap((h) => expandHostlist(String(h)));
  if (nodes.length > 0) {
    job.nodes = nodes;
    job.nnodes = nodes.length;
  }
  let cores = 0;
  let gpus = 0;
  for (const entry of Array.isArray(exec.R_lite) ? exec.R_lite.filter(isObj) : []) {
    const ranks = idsetSize(String(entry.rank ?? ''));
    const children = isObj(entry.children) ? entry.children : {};
    cores += ranks * idsetSize(String(children.core ?? ''));
    gpus += ranks * idsetSize(String(children.gpu ?? ''));
  }
  if (cores > 0) job.ncores = cores;
  if (gpus > 0) job.ngpus = gpus;
}

/** Size of an RFC 22 idset such as "0-3,7" or "[0-1]". */
export function idsetSize(idset: string): number {
  const body = idset.replace(/^\[|\]$/g, '').trim();
  if (!body) return 0;
  let n = 0;
  for (const part of body.split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b! - a! + 1;
  }
  return n;
}

/** Expands an RFC 29 hostlist such as "node[0-2,5]" or "a1,b[3-4]" into host names. */
export function expandHostlist(hostlist: string): string[] {
  const out: string[] = [];
  for (const m of hostlist.matchAll(/([^,[\]]+)(?:\[([^\]]*)\])?([^,[\]]*)/g)) {
    const [, prefix = '', ranges, suffix = ''] = m;
    if (!prefix && !ranges) continue;
    if (ranges === undefined) {
      out.push(prefix + suffix);
      continue;
    }
    for (const part of ranges.split(',')) {
      const [a, b] = part.split('-');
      if (b === undefined) out.push(prefix + a + suffix);
      else for (let i = Number(a); i <= Number(b); i++) out.push(prefix + String(i).padStart(a!.length, '0') + suffix);
    }
  }
  return out;
}
