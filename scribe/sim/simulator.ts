/**
 * The simulated Flux instance: a discrete-event state machine over a timer heap, driven by the
 * seeded PRNG. It emits job events in the exact shapes and per-job order of the flux-core 0.88
 * job-manager journal (see test/fixtures/flux), with a stable per-job `seq`:
 *
 *   submit [dependency-add [dependency-remove]] validate [dependency-remove] depend priority
 *   [urgency [priority]]* alloc start [exception] finish release free clean
 *
 * and the short forms: pending cancel / unsatisfiable / failed dependency end with
 * `exception clean`; a dependency on an already failed job is `submit dependency-add invalidate`.
 *
 * Pure and synchronous: no wall clock, no I/O. `checkpoint()` serializes the whole state (clock,
 * PRNG, timers, active jobs, counters) — restoring it and continuing yields exactly the events an
 * uninterrupted run would. Memory and checkpoint size are bounded by the number of active jobs.
 */
import type { ActionRequest, ActionResult, OwnerResult, SourceEvent } from '../source.js';
import { parseJobId } from '../../schemas/ids.js';
import { CheckpointError } from '../checkpoint.js';
import {
  Resources,
  allocR,
  buildCluster,
  resourceSummary,
  unsatisfiableNote,
  type AllocEntry,
  type SimCluster,
} from './cluster.js';
import { nextFluid, type FluidState } from './fluid.js';
import { TimerHeap, type Timer } from './heap.js';
import { instanceStartOf, parseSimOptions, type SimOptions, type SimOptionsInput } from './options.js';
import { Rng, type RngState } from './random.js';
import {
  OUT_EXEC,
  OUT_EXIT,
  OUT_OK,
  OUT_SIGNAL,
  OUT_TIMEOUT,
  buildJobspec,
  drawBurst,
  drawFate,
  drawShape,
  drawUnsatisfiable,
  drawUser,
  type JobShape,
} from './workload.js';

// Job states. ALLOCATING = resources taken, alloc event not yet posted (still SCHED for Flux);
// STARTING = alloc posted, start not yet (Flux RUN).
const NEW = 0;
const DEPEND = 1;
const SCHED = 2;
const ALLOCATING = 3;
const STARTING = 4;
const RUN = 5;
const CLEANUP = 6;

/** Flux's state name for each internal state. */
const FLUX_STATE = ['NEW', 'DEPEND', 'SCHED', 'SCHED', 'RUN', 'RUN', 'CLEANUP'] as const;
export type FluxJobState = 'NEW' | 'DEPEND' | 'SCHED' | 'RUN' | 'CLEANUP';

export const FLUX_PRIORITY_MAX = 4294967295;

export const RESULTS = ['COMPLETED', 'FAILED', 'CANCELED', 'TIMEOUT'] as const;
export type SimResult = (typeof RESULTS)[number];
const R_COMPLETED = 0;
const R_FAILED = 1;
const R_CANCELED = 2;
const R_TIMEOUT = 3;

export const SCENARIOS = [
  'exit_nonzero',
  'signaled',
  'exec_error',
  'timeout',
  'canceled_pending',
  'canceled_held',
  'canceled_running',
  'held',
  'released',
  'expedited',
  'dependency_waited',
  'dependency_satisfied',
  'dependency_failed',
  'unsatisfiable',
  'invalidated',
  'killed',
  'array_copies',
  'multinode',
  'gpu',
  'waited_for_resources',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** An active job (plain JSON: checkpoints hold these as they are). */
interface Job {
  id: string;
  /** Submission number (FCFS tie-break). */
  n: number;
  u: number;
  q: number;
  nn: number;
  ns: number;
  cps: number;
  gps: number;
  ex: boolean;
  /** Duration limit (s). */
  dur: number;
  /** Natural runtime (µs). */
  run: number;
  out: number;
  code: number;
  rs?: 1;
  urg: number;
  /** Priority, -1 before the first priority event. */
  pr: number;
  st: number;
  seq: number;
  tok: number;
  /** Dependency: parent id, description, scheme. */
  dep?: { p: string; d: string; s: string };
  /** Waiting on its dependency. */
  w?: 1;
  /** Dependents waiting on this job. */
  kids?: string[];
  /** A follow-up dependent job is due but not yet validated: record this job's result. */
  kid?: 1;
  al?: AllocEntry[];
  /** R starttime (µs). */
  t0?: number;
  /** Fatal exception type raised. */
  exc?: string;
  /** Terminated by a signal (act). */
  kill?: 1;
  status?: number;
  crun?: number;
  /** Command (argv[0]) for the exec-error note. */
  cmd0?: string;
  /** Unsatisfiable-request note. */
  un?: string;
  /** Job started only after waiting for resources (for the scenario counter). */
  qd?: 1;
}

interface Counters {
  submitted: number;
  invalidated: number;
  events: number;
  byUser: number[][];
  byQueue: number[][];
  scenarios: Record<string, number>;
}

interface CheckpointV1 {
  kind: 'jobscribe-sim';
  v: 1;
  options: SimOptions;
  now: number;
  rng: RngState;
  tn: number;
  jn: number;
  fluid: FluidState;
  schedAt: number;
  depDone: Record<string, number>;
  timers: Timer[];
  jobs: Job[];
  counters: Counters;
}

export interface ResultTally {
  jobs: number;
  COMPLETED: number;
  FAILED: number;
  CANCELED: number;
  TIMEOUT: number;
  /** Still active (pending or running). */
  active: number;
}

export interface SimStats {
  /** Simulated time now (s). */
  time: number;
  submitted: number;
  invalidated: number;
  /** Jobs that exist for Flux: submitted minus invalidated. */
  jobs: number;
  events: number;
  results: ResultTally;
  byUser: Record<string, ResultTally>;
  byQueue: Record<string, ResultTally>;
  /** Active jobs: pending = NEW/DEPEND/SCHED, running = RUN/CLEANUP (as the events show them). */
  active: { pending: number; running: number };
  /** Active jobs per Flux state. */
  states: Record<FluxJobState, number>;
  scenarios: Record<Scenario, number>;
}

const SUBMIT_KINDS = new Set(['arr', 'bst', 'kid']);
const RECENT_MAX = 8192;

/** The job's state as its events so far put it (a fatal exception moves RUN to CLEANUP). */
function fluxState(j: Job): FluxJobState {
  return j.exc ? 'CLEANUP' : FLUX_STATE[j.st]!;
}

function priorityOf(urgency: number): number {
  return urgency === 31 ? FLUX_PRIORITY_MAX : urgency;
}

/** Takes `nextBatch(65536, t)` until it comes back empty, handing each event to `each`. */
export function takeBatchesUntil(source: { nextBatch(max: number, until?: number): SourceEvent[] }, t: number, each: (e: SourceEvent) => void): void {
  for (;;) {
    const batch = source.nextBatch(65536, t);
    if (batch.length === 0) return;
    for (const e of batch) each(e);
  }
}

export class Simulator {
  readonly options: SimOptions;
  readonly cluster: SimCluster;
  private readonly rng: Rng;
  private readonly heap: TimerHeap;
  private now: number;
  private tn: number;
  private jn: number;
  private readonly fluid: FluidState;
  private schedAt: number;
  private readonly depDone: Record<string, number>;
  private readonly counters: Counters;
  private readonly jobs = new Map<string, Job>();
  private readonly queued: Job[][];
  private readonly res: Resources;
  private readonly userNames: string[];
  private readonly startMs: number;
  private readonly untilUs: number | undefined;
  private subTimers = 0;
  private out: SourceEvent[] = [];
  /** Recently inactive jobs, for action errors (a ring of ids + a set); not checkpointed. */
  private readonly recent = new Set<string>();
  private readonly recentRing: string[] = [];
  private recentAt = 0;

  constructor(input?: SimOptionsInput, restore?: CheckpointV1) {
    this.options = parseSimOptions(restore?.options ?? input);
    const o = this.options;
    this.cluster = buildCluster(o);
    this.res = new Resources(this.cluster);
    this.queued = this.cluster.queues.map(() => []);
    this.userNames = this.cluster.users.map((u) => u.name);
    this.startMs = Math.round(instanceStartOf(o) * 1000);
    this.untilUs = o.untilTime === undefined ? undefined : Math.round(o.untilTime * 1e6);
    if (restore) {
      this.now = restore.now;
      this.rng = new Rng(restore.rng);
      this.tn = restore.tn;
      this.jn = restore.jn;
      this.fluid = { ...restore.fluid };
      this.schedAt = restore.schedAt;
      this.depDone = { ...restore.depDone };
      this.counters = structuredClone(restore.counters);
      this.heap = new TimerHeap(restore.timers.slice());
      for (const t of restore.timers) if (SUBMIT_KINDS.has(t.k)) this.subTimers++;
      for (const j of restore.jobs) {
        this.jobs.set(j.id, j);
        if (j.al) this.res.take(j.al);
        if (j.st === SCHED && j.pr > 0 && !j.un) this.enqueue(j);
      }
    } else {
      this.now = Math.round(o.epoch * 1e6);
      this.rng = new Rng(o.seed);
      this.tn = 0;
      this.jn = 0;
      this.fluid = { ms: -1, seq: 0 };
      this.schedAt = -1;
      this.depDone = {};
      this.counters = {
        submitted: 0,
        invalidated: 0,
        events: 0,
        byUser: this.cluster.users.map(() => [0, 0, 0, 0]),
        byQueue: this.cluster.queues.map(() => [0, 0, 0, 0]),
        scenarios: Object.fromEntries(SCENARIOS.map((s) => [s, 0])),
      };
      this.heap = new TimerHeap();
      if (this.canSubmit()) this.timer(this.now + this.interarrival(), 'arr');
    }
  }

  /** Restores a simulator from `checkpoint()` output (its options travel with it). */
  static restore(checkpoint: string): Simulator {
    const cp = JSON.parse(checkpoint) as CheckpointV1;
    if (cp?.kind !== 'jobscribe-sim' || cp.v !== 1) throw new CheckpointError('not a jobscribe-sim checkpoint (v1)');
    return new Simulator(undefined, cp);
  }

  /** The complete state as JSON. */
  checkpoint(): string {
    if (this.out.length > 0) throw new Error('checkpoint with undelivered events: take them first (nextBatch)');
    const cp: CheckpointV1 = {
      kind: 'jobscribe-sim',
      v: 1,
      options: this.options,
      now: this.now,
      rng: this.rng.state(),
      tn: this.tn,
      jn: this.jn,
      fluid: this.fluid,
      schedAt: this.schedAt,
      depDone: this.depDone,
      timers: this.heap.toJSON(),
      jobs: [...this.jobs.values()],
      counters: this.counters,
    };
    return JSON.stringify(cp);
  }

  /** Simulated time (s). */
  get time(): number {
    return this.now / 1e6;
  }

  /** Number of active jobs. */
  get activeJobs(): number {
    return this.jobs.size;
  }

  /** Time (s) of the next due timer, if any. */
  nextTime(): number | undefined {
    const t = this.heap.peek();
    return t === undefined ? undefined : t.t / 1e6;
  }

  /**
   * Nothing more will happen: all submissions made (maxJobs) and inactive, or `untilTime`
   * reached. Never true for an endless simulation.
   */
  get finished(): boolean {
    if (this.out.length > 0) return false;
    if (!this.canSubmit() && this.jobs.size === 0 && this.subTimers === 0) return true;
    if (this.untilUs !== undefined) {
      const t = this.heap.peek();
      return t === undefined || t.t > this.untilUs;
    }
    return false;
  }

  /**
   * Fires timers in order until at least `max` events are out or the next timer is later than
   * `until` (s) / `untilTime`. Events of one timer are never split. Returns the events (first any
   * produced by actions since the last call).
   */
  nextBatch(max = this.options.batchSize, until?: number): SourceEvent[] {
    let lim = until === undefined ? Infinity : Math.round(until * 1e6);
    if (this.untilUs !== undefined && this.untilUs < lim) lim = this.untilUs;
    if (!this.canSubmit() && this.jobs.size === 0 && this.subTimers === 0) lim = -Infinity;
    const heap = this.heap;
    while (this.out.length < max) {
      const t = heap.peek();
      if (t === undefined || t.t > lim) break;
      heap.pop();
      if (t.t > this.now) this.now = t.t;
      this.fire(t);
    }
    const batch = this.out;
    this.out = [];
    return batch;
  }

  /** Fires timers until at least one event is out (or nothing is due); returns the events. */
  step(): SourceEvent[] {
    return this.nextBatch(1);
  }

  /** All events up to `t` (s); the clock then reads max(now, t) (capped at untilTime). */
  advanceTo(t: number): SourceEvent[] {
    const all: SourceEvent[] = [];
    takeBatchesUntil(this, t, (e) => all.push(e));
    this.setClock(t);
    return all;
  }

  /** Moves the clock forward to `t` (s) without firing anything (caller fired what is due). */
  setClock(t: number): void {
    let us = Math.round(t * 1e6);
    if (this.untilUs !== undefined && us > this.untilUs) us = this.untilUs;
    const next = this.heap.peek();
    if (next !== undefined && next.t < us) us = next.t;
    if (us > this.now) this.now = us;
  }

  // -------------------------------------------------------------------------------------------
  // Statistics (ground truth)

  stats(): SimStats {
    const tally = (arr: number[]): ResultTally => ({
      jobs: arr[0]! + arr[1]! + arr[2]! + arr[3]!,
      COMPLETED: arr[0]!,
      FAILED: arr[1]!,
      CANCELED: arr[2]!,
      TIMEOUT: arr[3]!,
      active: 0,
    });
    const byUser: Record<string, ResultTally> = {};
    const byQueue: Record<string, ResultTally> = {};
    const total = [0, 0, 0, 0];
    this.cluster.users.forEach((u, i) => {
      const a = this.counters.byUser[i]!;
      for (let k = 0; k < 4; k++) total[k]! += a[k]!;
      byUser[u.name] = tally(a);
    });
    this.cluster.queues.forEach((q, i) => (byQueue[q.name] = tally(this.counters.byQueue[i]!)));
    const results = tally(total);
    let pending = 0;
    let running = 0;
    const states: Record<FluxJobState, number> = { NEW: 0, DEPEND: 0, SCHED: 0, RUN: 0, CLEANUP: 0 };
    for (const j of this.jobs.values()) {
      if (j.st <= ALLOCATING) pending++;
      else running++;
      states[fluxState(j)]++;
      for (const t of [results, byUser[this.userNames[j.u]!]!, byQueue[this.cluster.queues[j.q]!.name]!]) {
        t.active++;
        t.jobs++;
      }
    }
    return {
      time: this.time,
      submitted: this.counters.submitted,
      invalidated: this.counters.invalidated,
      jobs: this.counters.submitted - this.counters.invalidated,
      events: this.counters.events,
      results,
      byUser,
      byQueue,
      active: { pending, running },
      states,
      scenarios: { ...this.counters.scenarios } as Record<Scenario, number>,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Actions

  /** The user owning an active job (inactive jobs are no longer acted on). */
  owner(jobId: string): OwnerResult {
    const id = parseJobId(String(jobId));
    const job = id === undefined ? undefined : this.jobs.get(id);
    if (id === undefined || !job) {
      if (id !== undefined && this.recent.has(id)) return { ok: false, code: 'no_such_job', message: `job ${id} is inactive` };
      return { ok: false, code: 'no_such_job', message: `unknown job id ${jobId}` };
    }
    return { ok: true, user: this.userNames[job.u]! };
  }

  /** Executes an action now (simulated time); its events come out with the next batch. */
  act(req: ActionRequest): ActionResult {
    if (req.action === 'submit') return { ok: false, code: 'unsupported', message: 'the simulator does not take submissions' };
    if (!['cancel', 'hold', 'release', 'urgency', 'signal'].includes(req.action)) {
      return { ok: false, code: 'unsupported', message: `unknown action ${String(req.action)}` };
    }
    if (req.job_id === undefined) return { ok: false, code: 'invalid', message: 'job_id is required' };
    const id = parseJobId(String(req.job_id));
    const job = id === undefined ? undefined : this.jobs.get(id);
    if (id === undefined || !job) {
      if (id !== undefined && this.recent.has(id)) return { ok: false, code: 'invalid', message: `job ${id} is inactive` };
      return { ok: false, code: 'no_such_job', message: `unknown job id ${req.job_id}` };
    }
    const c = this.cluster;
    let uid = c.ownerUid;
    let admin = true;
    if (req.user !== undefined && req.user !== c.ownerUser) {
      const u = c.users.find((x) => x.name === req.user);
      admin = false;
      if (!u || u.uid !== c.users[job.u]!.uid) {
        const what = req.action === 'cancel' || req.action === 'signal' ? 'raise exceptions on' : 'reprioritize';
        return { ok: false, code: 'not_permitted', message: `guests can only ${what} their own jobs (${req.user} does not own ${id})` };
      }
      uid = u.uid;
    }
    const args = req.args ?? {};
    switch (req.action) {
      case 'cancel': {
        const note = typeof args.note === 'string' ? args.note : req.user !== undefined ? `canceled by ${req.user}` : '';
        const err = this.cancel(job, note, uid, true);
        return err ? { ok: false, code: 'invalid', message: err } : { ok: true, job_id: id, detail: { state: this.jobs.has(id) ? fluxState(job) : 'INACTIVE' } };
      }
      case 'signal': {
        const signum = args.signum === undefined ? 15 : Number(args.signum);
        if (!Number.isInteger(signum) || signum < 1 || signum > 64) return { ok: false, code: 'invalid', message: 'signum must be 1..64' };
        if (job.st !== RUN || job.exc || job.kill) return { ok: false, code: 'invalid', message: `job ${id} is not running` };
        if ([17, 18, 19, 20, 23, 28].includes(signum)) return { ok: true, job_id: id, detail: { effect: 'none' } };
        job.kill = 1;
        job.tok++;
        this.count('killed');
        this.jobTimer(this.now + this.lat(20, 60), 'fin', job, (128 + signum) << 8);
        return { ok: true, job_id: id };
      }
      default: {
        let urgency: number;
        if (req.action === 'hold') urgency = 0;
        else if (req.action === 'release') urgency = 16;
        else {
          urgency = Number(args.urgency);
          if (!Number.isInteger(urgency) || urgency < 0 || urgency > 31) return { ok: false, code: 'invalid', message: 'urgency value is out of range (0-31)' };
        }
        if (!admin && urgency > Math.max(16, job.urg)) return { ok: false, code: 'not_permitted', message: 'guests can only adjust urgency <= default' };
        const old = job.urg;
        const err = this.setUrgency(job, urgency, uid);
        return err ? { ok: false, code: 'invalid', message: err } : { ok: true, job_id: id, detail: { old_urgency: old, urgency } };
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private timer(t: number, k: string, p?: unknown): void {
    const tm: Timer = { t, n: this.tn++, k };
    if (p !== undefined) tm.p = p;
    if (SUBMIT_KINDS.has(k)) this.subTimers++;
    this.heap.push(tm);
  }

  private jobTimer(t: number, k: string, job: Job, p?: unknown): void {
    const tm: Timer = { t, n: this.tn++, k, j: job.id, x: job.tok };
    if (p !== undefined) tm.p = p;
    this.heap.push(tm);
  }

  /** A latency of lo..hi milliseconds, in µs. */
  private lat(lo: number, hi: number): number {
    return Math.round((lo + (hi - lo) * this.rng.float()) * 1000);
  }

  private interarrival(): number {
    const rate = this.options.submitRate * (this.options.diurnal ? diurnalFactor(this.now / 1e6) : 1);
    return Math.max(1, Math.round(this.rng.exp(60e6 / rate)));
  }

  private canSubmit(): boolean {
    return this.options.maxJobs === undefined || this.jn < this.options.maxJobs;
  }

  private count(s: Scenario): void {
    this.counters.scenarios[s] = (this.counters.scenarios[s] ?? 0) + 1;
  }

  private fire(t: Timer): void {
    switch (t.k) {
      case 'arr':
        return this.onArrival();
      case 'bst':
        return this.onBurst(t.p as { s: JobShape; left: number });
      case 'kid':
        return this.onChild(t.p as { parent: string; scheme: 'afterok' | 'afterany'; u: number });
      case 'sch':
        if (t.t === this.schedAt) this.schedAt = -1;
        return this.schedule();
      case 'cxl': {
        const job = this.jobs.get(t.j!);
        const p = t.p as { note: string; uid: number };
        if (job) this.cancel(job, p.note, p.uid, false);
        return;
      }
      case 'urg': {
        const job = this.jobs.get(t.j!);
        const p = t.p as { urgency: number; uid: number; unheld?: 1 };
        if (!job || (p.unheld && job.urg === 0)) return;
        if (job.st === NEW) return void this.jobTimer(this.now + this.lat(20, 30), 'urg', job, p);
        if (job.st === DEPEND || job.st === SCHED) this.setUrgency(job, p.urgency, p.uid);
        return;
      }
    }
    const job = this.jobs.get(t.j!);
    if (!job || t.x !== job.tok) return;
    switch (t.k) {
      case 'v':
        return this.onValidate(job);
      case 'd':
        this.emit(job, 'depend');
        return this.enterSched(job);
      case 'dr':
        if (!job.w) return;
        delete job.w;
        this.count('dependency_satisfied');
        this.emit(job, 'dependency-remove', { description: job.dep!.d });
        this.emit(job, 'depend');
        return this.enterSched(job);
      case 'df':
        if (!job.w) return;
        delete job.w;
        this.count('dependency_failed');
        this.emit(job, 'exception', {
          type: 'dependency',
          severity: 0,
          note: `dependency ${job.dep!.d} can never be satisfied`,
          userid: this.cluster.ownerUid,
        });
        job.exc = 'dependency';
        this.emit(job, 'clean');
        return this.finalize(job);
      case 'un':
        if (job.st !== SCHED || job.pr === 0) return;
        this.count('unsatisfiable');
        this.emit(job, 'exception', { type: 'alloc', severity: 0, note: job.un!, userid: this.cluster.ownerUid });
        job.exc = 'alloc';
        this.emit(job, 'clean');
        return this.finalize(job);
      case 'al':
        return this.onAlloc(job);
      case 'st':
        return this.onStart(job);
      case 'end': {
        const status =
          job.out === OUT_OK ? 0 : job.out === OUT_EXIT ? job.code << 8 : job.rs ? job.code : (128 + job.code) << 8;
        if (job.out === OUT_EXIT) this.count('exit_nonzero');
        if (job.out === OUT_SIGNAL) this.count('signaled');
        return this.finish(job, status);
      }
      case 'exe': {
        this.count('exec_error');
        const host = this.cluster.name + String(job.al![0]![0]);
        this.emit(job, 'exception', {
          type: 'exec',
          severity: 0,
          note: `task 0 (host ${host}): start failed: ${job.cmd0}: No such file or directory`,
          userid: this.cluster.ownerUid,
        });
        job.exc = 'exec';
        job.tok++;
        return this.jobTimer(this.now + this.lat(1.5, 3), 'fin', job, 32512);
      }
      case 'to':
        this.count('timeout');
        this.emit(job, 'exception', { type: 'timeout', severity: 0, userid: this.cluster.ownerUid, note: 'resource allocation expired' });
        job.exc = 'timeout';
        job.tok++;
        return this.jobTimer(this.now + this.lat(5, 10), 'fin', job, 36352);
      case 'fin':
        return this.finish(job, t.p as number);
      case 'rel':
        this.emit(job, 'release', { ranks: 'all', final: true });
        return this.jobTimer(this.now + this.lat(0.05, 0.5), 'free', job);
      case 'free':
        this.emit(job, 'free');
        this.emit(job, 'clean');
        this.res.free(job.al!);
        this.finalize(job);
        return this.requestSched(this.now + this.lat(1, 4));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Submission

  private onArrival(): void {
    this.subTimers--;
    if (!this.canSubmit()) return;
    const rng = this.rng;
    const c = this.cluster;
    const u = drawUser(rng, c);
    const unsat = rng.chance(this.options.unsatisfiableRate);
    const shape = unsat ? drawUnsatisfiable(rng, c, u) : drawShape(rng, c, u);
    const copies = unsat ? 1 : drawBurst(rng, this.options, c, u);
    this.submit(shape);
    if (copies > 1 && this.canSubmit()) this.timer(this.now + this.lat(0.4, 2.5), 'bst', { s: shape, left: copies - 1 });
    if (this.canSubmit()) this.timer(this.now + this.interarrival(), 'arr');
  }

  private onBurst(p: { s: JobShape; left: number }): void {
    this.subTimers--;
    if (!this.canSubmit()) return;
    this.count('array_copies');
    this.submit(p.s);
    if (p.left > 1 && this.canSubmit()) this.timer(this.now + this.lat(0.4, 2.5), 'bst', { s: p.s, left: p.left - 1 });
  }

  private onChild(p: { parent: string; scheme: 'afterok' | 'afterany'; u: number }): void {
    this.subTimers--;
    if (!this.canSubmit()) {
      delete this.depDone[p.parent];
      const parent = this.jobs.get(p.parent);
      if (parent) delete parent.kid;
      return;
    }
    this.submit(drawShape(this.rng, this.cluster, p.u), p);
  }

  private submit(shape: JobShape, dep?: { parent: string; scheme: 'afterok' | 'afterany' }): void {
    const rng = this.rng;
    const c = this.cluster;
    const fate = drawFate(rng, this.options, shape);
    const un = unsatisfiableNote(c, shape.q, shape);
    if (un) {
      fate.held = false;
      delete fate.holdEnd;
    }
    // job-ingest assigns the id ~10 ms before the job-manager posts `submit`.
    const ms = Math.floor((this.now - this.lat(7, 14)) / 1000) - this.startMs;
    const id = nextFluid(this.fluid, ms);
    const urgency = fate.held ? 0 : 16;
    const job: Job = {
      id,
      n: ++this.jn,
      u: shape.u,
      q: shape.q,
      nn: shape.nn,
      ns: shape.ns,
      cps: shape.cps,
      gps: shape.gps,
      ex: shape.ex,
      dur: shape.dur,
      run: fate.run,
      out: fate.out,
      code: fate.code,
      urg: urgency,
      pr: -1,
      st: NEW,
      seq: 0,
      tok: 0,
    };
    if (fate.rawSignal) job.rs = 1;
    let spec = shape;
    if (fate.out === OUT_EXEC) {
      // A binary that is not there on the compute node (built elsewhere, wrong path).
      const base = shape.cmd[0]!.replace(/^.*\//, '');
      job.cmd0 = `${shape.cwd}/bin/${base}`;
      spec = { ...shape, cmd: [job.cmd0, ...shape.cmd.slice(1)] };
    }
    if (un) job.un = un;
    if (fate.cancelRun !== undefined) job.crun = fate.cancelRun;
    if (dep) {
      const d = `${dep.scheme === 'afterok' ? 'after-success' : 'after-finish'}=${dep.parent}`;
      job.dep = { p: dep.parent, d, s: dep.scheme };
    }
    this.jobs.set(id, job);
    this.counters.submitted++;
    if (shape.nn > 1 || (shape.nn === 0 && shape.ns * shape.cps > c.coresPerNode)) this.count('multinode');
    if (shape.gps > 0) this.count('gpu');
    const user = c.users[shape.u]!;
    const jobspec = buildJobspec(c, spec, dep && { scheme: dep.scheme, value: dep.parent });
    this.emit(job, 'submit', { userid: user.uid, urgency, flags: 0, version: 1 }, jobspec);
    if (fate.held) this.count('held');
    this.jobTimer(this.now + this.lat(12, 20), 'v', job);
    // Intents (fire later, whatever the job's state is then).
    if (fate.holdEnd) {
      const at = this.now + fate.holdEnd.after;
      if (fate.holdEnd.kind === 'cancel') this.jobTimer(at, 'cxl', job, { note: fate.cancelNote, uid: user.uid });
      else if (fate.holdEnd.kind === 'expedite') this.jobTimer(at, 'urg', job, { urgency: 31, uid: c.ownerUid });
      else this.jobTimer(at, 'urg', job, { urgency: 16, uid: user.uid });
    }
    if (fate.cancelAfter !== undefined) {
      this.jobTimer(this.now + fate.cancelAfter, 'cxl', job, {
        note: fate.cancelNote,
        uid: fate.cancelByAdmin ? c.ownerUid : user.uid,
      });
    }
    if (fate.expediteAfter !== undefined) {
      this.jobTimer(this.now + fate.expediteAfter, 'urg', job, { urgency: 31, uid: c.ownerUid, unheld: 1 });
    }
    if (fate.child && !un) {
      job.kid = 1;
      this.timer(this.now + fate.child.after, 'kid', { parent: id, scheme: fate.child.scheme, u: shape.u });
    }
  }

  private onValidate(job: Job): void {
    if (!job.dep) {
      this.emit(job, 'validate');
      job.st = DEPEND;
      return this.jobTimer(this.now + this.lat(12, 20), 'd', job);
    }
    const dep = job.dep;
    this.emit(job, 'dependency-add', { description: dep.d });
    const parent = this.jobs.get(dep.p);
    if (parent) {
      delete parent.kid;
      (parent.kids ??= []).push(job.id);
      job.w = 1;
      this.count('dependency_waited');
      this.emit(job, 'validate');
      job.st = DEPEND;
      return;
    }
    const done = this.depDone[dep.p];
    delete this.depDone[dep.p];
    // 1: parent completed; 0: it failed; 2 (or unknown): it never existed (invalidated).
    if (done === 1 || (done === 0 && dep.s === 'afterany')) {
      this.emit(job, 'dependency-remove', { description: dep.d });
      this.emit(job, 'validate');
      job.st = DEPEND;
      return this.jobTimer(this.now + this.lat(12, 20), 'd', job);
    }
    this.emit(job, 'invalidate');
    this.count('invalidated');
    this.counters.invalidated++;
    this.jobs.delete(job.id);
    if (job.kid) this.depDone[job.id] = 2;
  }

  /** Posts priority (after `depend`) and queues the job for the scheduler. */
  private enterSched(job: Job): void {
    job.st = SCHED;
    job.pr = priorityOf(job.urg);
    this.emit(job, 'priority', { priority: job.pr });
    this.toScheduler(job);
  }

  private toScheduler(job: Job): void {
    if (job.pr <= 0) return;
    if (job.un) return this.jobTimer(this.now + this.lat(1, 2), 'un', job);
    this.enqueue(job);
    this.requestSched(this.now + this.lat(2, 6));
  }

  // -------------------------------------------------------------------------------------------
  // Scheduling and execution

  private enqueue(job: Job): void {
    const list = this.queued[job.q]!;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = list[mid]!;
      if (m.pr > job.pr || (m.pr === job.pr && m.n < job.n)) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, job);
  }

  private dequeue(job: Job): void {
    const list = this.queued[job.q]!;
    const i = list.indexOf(job);
    if (i >= 0) list.splice(i, 1);
  }

  private requestSched(at: number): void {
    if (this.schedAt >= 0 && this.schedAt <= at) return;
    this.schedAt = at;
    this.timer(at, 'sch');
  }

  /** One scheduler pass: FCFS by priority per queue, looking past at most `schedDepth` blocked jobs. */
  private schedule(): void {
    const depth = this.options.schedDepth;
    let k = 0;
    for (let q = 0; q < this.queued.length; q++) {
      const list = this.queued[q]!;
      let blocked = 0;
      let i = 0;
      while (i < list.length && blocked < depth) {
        const job = list[i]!;
        const a = this.res.alloc(q, job);
        if (!a) {
          blocked++;
          job.qd = 1;
          i++;
          continue;
        }
        list.splice(i, 1);
        job.al = a;
        job.st = ALLOCATING;
        job.t0 = this.now + 150 * k++;
        this.jobTimer(job.t0 + this.lat(3, 10), 'al', job);
      }
    }
  }

  private onAlloc(job: Job): void {
    const t0 = job.t0! / 1e6;
    const expiration = job.dur > 0 ? t0 + job.dur : 0;
    const R = allocR(this.cluster, job.al!, t0, expiration, job.ns);
    const resource_summary = resourceSummary(job.al!);
    if (this.options.annotations) this.emit(job, 'annotations', { annotations: { sched: { resource_summary } } });
    this.emit(job, 'alloc', { annotations: { sched: { resource_summary } } }, undefined, R);
    job.st = STARTING;
    this.jobTimer(this.now + this.lat(7, 30), 'st', job);
  }

  private onStart(job: Job): void {
    this.emit(job, 'start');
    job.st = RUN;
    if (job.qd) this.count('waited_for_resources');
    let span = job.run;
    if (job.out === OUT_EXEC) this.jobTimer(this.now + this.lat(10, 20), 'exe', job);
    else if (job.out === OUT_TIMEOUT) {
      span = job.dur * 1e6;
      this.jobTimer(job.t0! + Math.round(job.dur * 1e6) + this.lat(1, 8), 'to', job);
    } else this.jobTimer(this.now + job.run, 'end', job);
    if (job.crun !== undefined && job.out !== OUT_EXEC) {
      this.jobTimer(this.now + Math.round(span * job.crun), 'cxl', job, { note: '', uid: this.cluster.users[job.u]!.uid });
    }
  }

  private finish(job: Job, status: number): void {
    job.status = status;
    this.emit(job, 'finish', { status });
    job.st = CLEANUP;
    this.jobTimer(this.now + this.lat(2, 9), 'rel', job);
  }

  /**
   * Raises a cancel exception. Returns an error message when the job cannot be canceled now
   * (workload intents ignore it). NEW and allocating jobs are retried a moment later.
   */
  private cancel(job: Job, note: string, uid: number, fromAct: boolean): string | undefined {
    switch (job.st) {
      case NEW:
      case ALLOCATING:
      case STARTING:
        this.jobTimer(this.now + this.lat(20, 30), 'cxl', job, { note, uid });
        return undefined;
      case DEPEND:
      case SCHED: {
        if (job.exc) return 'job is already terminating';
        this.count('canceled_pending');
        if (job.urg === 0) this.count('canceled_held');
        this.emit(job, 'exception', { type: 'cancel', severity: 0, note, userid: uid });
        job.exc = 'cancel';
        this.dequeue(job);
        delete job.w;
        this.emit(job, 'clean');
        this.finalize(job);
        return undefined;
      }
      case RUN:
        if (job.exc || job.kill) return fromAct ? 'job is already terminating' : undefined;
        this.count('canceled_running');
        this.emit(job, 'exception', { type: 'cancel', severity: 0, note, userid: uid });
        job.exc = 'cancel';
        job.tok++;
        this.jobTimer(this.now + this.lat(20, 60), 'fin', job, 36608);
        return undefined;
      default:
        return 'job is finishing (CLEANUP)';
    }
  }

  /** Posts an urgency change (and the new priority when it changed). Pending jobs only. */
  private setUrgency(job: Job, urgency: number, uid: number): string | undefined {
    if (job.st === NEW) {
      this.jobTimer(this.now + this.lat(20, 30), 'urg', job, { urgency, uid });
      return undefined;
    }
    if (job.st !== DEPEND && job.st !== SCHED) return 'urgency cannot be changed once resources are allocated';
    if (job.exc) return 'job is already terminating';
    const old = job.urg;
    this.emit(job, 'urgency', { userid: uid, urgency });
    job.urg = urgency;
    if (old === 0 && urgency > 0) this.count('released');
    if (old !== 0 && urgency === 0) this.count('held');
    if (urgency === 31 && old !== 31) this.count('expedited');
    if (job.st === SCHED) {
      const pr = priorityOf(urgency);
      if (pr !== job.pr) {
        this.dequeue(job);
        job.pr = pr;
        this.emit(job, 'priority', { priority: pr });
        this.toScheduler(job);
      }
    }
    return undefined;
  }

  /** The job is inactive (clean posted): count its result, wake dependents, forget it. */
  private finalize(job: Job): void {
    let r: number;
    if (job.exc) r = job.exc === 'cancel' ? R_CANCELED : job.exc === 'timeout' ? R_TIMEOUT : R_FAILED;
    else r = job.status === 0 ? R_COMPLETED : R_FAILED;
    this.counters.byUser[job.u]![r]!++;
    this.counters.byQueue[job.q]![r]!++;
    this.jobs.delete(job.id);
    const evicted = this.recentRing[this.recentAt];
    if (evicted !== undefined) this.recent.delete(evicted);
    this.recentRing[this.recentAt] = job.id;
    this.recentAt = (this.recentAt + 1) % RECENT_MAX;
    this.recent.add(job.id);
    if (job.kid) this.depDone[job.id] = r === R_COMPLETED ? 1 : 0;
    if (job.kids) {
      for (const kid of job.kids) {
        const child = this.jobs.get(kid);
        if (!child || !child.w) continue;
        const ok = r === R_COMPLETED || child.dep!.s === 'afterany';
        this.jobTimer(this.now + this.lat(0.05, 0.2), ok ? 'dr' : 'df', child);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private emit(
    job: Job,
    name: string,
    context?: Record<string, unknown>,
    jobspec?: Record<string, unknown>,
    R?: Record<string, unknown>,
  ): void {
    const ts = this.now / 1e6;
    const event = context ? { timestamp: ts, name, context } : { timestamp: ts, name };
    const raw: Record<string, unknown> = { id: job.id, event };
    if (jobspec) raw.jobspec = jobspec;
    if (R) raw.R = R;
    this.out.push({
      job_id: job.id,
      seq: job.seq++,
      name,
      ts,
      ts_source: 'scheduler',
      context: context ?? {},
      user: this.userNames[job.u]!,
      raw,
    });
    this.counters.events++;
  }
}

/** What `simulate` and `groundTruth` drive: either flavour of simulator. */
export interface RunnableSim<T> {
  readonly options: SimOptions;
  readonly finished: boolean;
  nextBatch(max: number): SourceEvent[];
  stats(): T;
}

/** Every event of a simulation, as fast as the CPU allows (needs maxJobs or untilTime to end). */
export function* eventsToEnd<T>(sim: RunnableSim<T>): Generator<SourceEvent, T, undefined> {
  while (!sim.finished) for (const e of sim.nextBatch(4096)) yield e;
  return sim.stats();
}

/** The totals of a simulation run to its end without keeping events (it needs `maxJobs` or `untilTime`). */
export function statsAtEnd<T>(sim: RunnableSim<T>): T {
  if (sim.options.maxJobs === undefined && sim.options.untilTime === undefined) {
    throw new Error('groundTruth needs maxJobs or untilTime (an endless simulation has no totals)');
  }
  while (!sim.finished) sim.nextBatch(65536);
  return sim.stats();
}

/** Every event of a simulation, as fast as the CPU allows (needs maxJobs or untilTime to end). */
export function simulate(options?: SimOptionsInput): Generator<SourceEvent, SimStats, undefined> {
  return eventsToEnd(new Simulator(options));
}

/** The totals the read model must show for a finished simulation. */
export function groundTruth(options?: SimOptionsInput): SimStats {
  return statsAtEnd(new Simulator(options));
}

/**
 * How busy submitters are at simulated time `t` (seconds, UTC) relative to the mean rate: a
 * sine over the day peaking at 14:00 (1.6) with its trough at 02:00 (0.4), times 0.6 on weekends.
 */
export function diurnalFactor(t: number): number {
  const hour = (((t / 3600) % 24) + 24) % 24;
  const weekday = (Math.floor(t / 86400) + 4) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
  const day = 1 + 0.6 * Math.sin((2 * Math.PI * (hour - 8)) / 24);
  return weekday === 0 || weekday === 6 ? 0.6 * day : day;
}
