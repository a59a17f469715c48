/**
 * The simulator's Slurm flavour: the same seeded workload and lifecycle as the Flux simulator
 * (simulator.ts), seen through a simulated Slurm 22.05 and the real Slurm source's diff.
 *
 * How: the Flux simulator runs as it is; each of its job events updates a virtual Slurm job
 * record (the `squeue --json` record Slurm would print: sequential job ids, arrays, partitions,
 * Slurm states and reasons, raw wait statuses, node names) and, once final, the job's accounting
 * lines (`sacct --parsable2` with the poller's columns). Every `pollInterval` simulated seconds
 * the snapshot of visible records and the sacct lines of the jobs the diff asks about go through
 * `applyPoll` (scribe/slurm/diff.ts), so the events are exactly what the Slurm source would emit
 * from such a cluster: names, contexts, raw records, seqs, ts_source scheduler/poll.
 *
 * Flux → Slurm: a `--cc` burst is an array job (`<first id>_<task>`, one job id per task); an
 * alloc is the start; urgency 0 is a hold (JobHeldUser, JobHeldAdmin when the instance owner held
 * it); urgency 31 is a top priority; a dependency that can never be satisfied shows
 * DependencyNeverSatisfied for one poll and is then cancelled (a site with kill_invalid_depend);
 * an unsatisfiable request pends with PartitionNodeLimit for one poll and is then cancelled by
 * the administrator; a task killed by SIGKILL (the workload's OOM kills) ends OUT_OF_MEMORY
 * (ExitCode 0:125). Finished jobs stay in squeue for MinJobAge (300 s), as in Slurm. Nothing
 * ends NODE_FAIL: the simulator has no node failures.
 *
 * Pure and synchronous like the simulator; `checkpoint()` holds the simulator's checkpoint, the
 * virtual records and the diff's tracker state, so a restore continues with the next event.
 */
import type { ActionRequest, ActionResult, OwnerResult, SourceEvent } from '../source.js';
import { CheckpointError } from '../checkpoint.js';
import { applyPoll, emptyTrackerState, jobsNeedingAccounting, type TrackerState } from '../slurm/diff.js';
import { slurmActionCommand, type SlurmActionRequest } from '../slurm/actions.js';
import { SACCT_FIELDS, sacctTimeArg } from '../slurm/poller.js';
import { decodeWaitStatus, type SacctJob, type SacctLine, type SqueueJob } from '../../schemas/slurm/squeue.js';
import { unifiedSlurmResult } from '../../schemas/slurm/events.js';
import type { SimCluster } from './cluster.js';
import { parseSimOptions, type SimOptions, type SimOptionsInput } from './options.js';
import { Simulator, eventsToEnd, statsAtEnd, takeBatchesUntil, type ResultTally, type SimStats } from './simulator.js';

/** Seconds a finished job stays in squeue (Slurm's MinJobAge default). */
export const MIN_JOB_AGE_S = 300;
/** The first job id of a simulated Slurm cluster. */
export const FIRST_SLURM_JOB_ID = 1001;
/** priority/basic: the first job's priority; each later job gets one less. */
const BASE_PRIORITY = 4294901760;
/** The priority an expedited (urgency 31) job gets. */
const TOP_PRIORITY = 4294967293;

/** One simulated Slurm job (plain JSON: checkpoints hold these as they are). */
export interface SlurmSimJob {
  id: number;
  /** The Flux simulator's job id. */
  flux: string;
  /** array_job_id (0: not an array task) and array_task_id. */
  aj: number;
  at: number | null;
  name: string;
  user: string;
  uid: number;
  account: string;
  part: string;
  /** Time limit, minutes. */
  tl: number;
  nnodes: number;
  ncpus: number;
  ntasks: number;
  ngpus: number;
  /** Dependency clause ("afterok:1012"), '' when none or satisfied. */
  dep: string;
  depState: '' | 'unfulfilled' | 'failed';
  sub: number;
  elig: number;
  start: number;
  end: number;
  state: string;
  reason: string;
  /** The reason accounting keeps (the last telling pending reason). */
  acctReason: string;
  /** Flux's `depend` seen: the job may be scheduled once not held. */
  sched: boolean;
  /** Validated by Flux: Slurm accepted it (visible in squeue). */
  visible: boolean;
  held: '' | 'user' | 'admin';
  /** Expedited (urgency 31). */
  top: boolean;
  /** Priority set by an action (`scontrol update Priority=`), overrides priority/basic. */
  prioritySet?: number;
  nice: number | null;
  nodes: string;
  /** Raw wait status of the batch script (squeue exit_code). */
  ws: number;
  /** sacct ExitCode "exit:signal" of the job and of its .batch step ('' when it never ran). */
  exit: string;
  batchState: string;
  batchExit: string;
  /** uid that cancelled it ("CANCELLED by <uid>"). */
  by?: number;
  /** What Flux said ends the run: a cancel, a timeout, a signal sent by an action. */
  mark?: 'cancel' | 'timeout';
  signal?: number;
  /** Killed after one poll showed it pending for ever: 1 seen pending, 2 due; the reason. */
  doomed?: { stage: 1 | 2; reason: string; uid: number };
  invalid?: true;
  /** `scontrol uhold`: the next hold is the user's. */
  uhold?: true;
}

interface SlurmSimCheckpointV1 {
  kind: 'jobscribe-sim-slurm';
  v: 1;
  sim: string;
  tracker: TrackerState;
  nextId: number;
  nextPoll: number;
  lastPoll: number;
  jobs: SlurmSimJob[];
  burst: Burst | null;
  counters: SlurmCounters;
  dirty: boolean;
}

/** The last submission, to tell the copies of a `--cc` burst (same jobspec, milliseconds apart). */
interface Burst {
  spec: string;
  ts: number;
  aj: number;
  next: number;
  user: string;
}

interface SlurmCounters {
  events: number;
  /** Final Slurm state words, per user and partition. */
  byUser: Record<string, Record<string, number>>;
  byPart: Record<string, Record<string, number>>;
}

/** The ground truth of a Slurm-flavoured simulation (accounting's view of every job). */
export interface SlurmSimStats extends SimStats {
  scheduler: 'slurm';
  /** Final jobs per Slurm state word. */
  slurmStates: Record<string, number>;
}

const pad = (n: number): string => String(n).padStart(2, '0');
/** sacct's Timelimit: "01:00:00", "1-00:00:00". */
export function sacctDuration(minutes: number): string {
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const hms = `${pad(h)}:${pad(minutes % 60)}:00`;
  return d > 0 ? `${d}-${hms}` : hms;
}

/** Size of an idset ("0-3,7"). */
function idsetSize(s: string): number {
  let n = 0;
  for (const part of s.split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-');
    n += b === undefined ? 1 : Number(b) - Number(a) + 1;
  }
  return n;
}

export class SlurmSimulator {
  readonly options: SimOptions;
  private sim: Simulator;
  private tracker: TrackerState;
  private nextId: number;
  private nextPoll: number;
  private lastPoll: number;
  private burst: Burst | null;
  private readonly counters: SlurmCounters;
  private readonly byFlux = new Map<string, SlurmSimJob>();
  private readonly byId = new Map<number, SlurmSimJob>();
  /** Records changed since the last poll (an unchanged snapshot derives nothing). */
  private dirty = true;
  /** Called with each job's final record (not checkpointed): per-job ground truth for tests. */
  onFinal?: (job: Readonly<SlurmSimJob>) => void;

  constructor(input?: SimOptionsInput, restore?: SlurmSimCheckpointV1) {
    if (restore) {
      this.sim = Simulator.restore(restore.sim);
      this.options = this.sim.options;
      this.tracker = restore.tracker;
      this.nextId = restore.nextId;
      this.nextPoll = restore.nextPoll;
      this.lastPoll = restore.lastPoll;
      this.burst = restore.burst;
      this.counters = restore.counters;
      this.dirty = restore.dirty;
      for (const j of restore.jobs) this.index(j);
    } else {
      this.options = parseSimOptions({ ...input, scheduler: 'slurm' });
      this.sim = new Simulator(this.options);
      this.tracker = emptyTrackerState();
      this.nextId = FIRST_SLURM_JOB_ID;
      this.lastPoll = this.options.epoch;
      this.nextPoll = this.options.epoch + this.options.pollInterval;
      this.burst = null;
      this.counters = { events: 0, byUser: {}, byPart: {} };
    }
  }

  static restore(checkpoint: string): SlurmSimulator {
    const cp = JSON.parse(checkpoint) as SlurmSimCheckpointV1;
    if (cp?.kind !== 'jobscribe-sim-slurm' || cp.v !== 1) throw new CheckpointError('not a jobscribe-sim-slurm checkpoint (v1)');
    return new SlurmSimulator(undefined, cp);
  }

  checkpoint(): string {
    const cp: SlurmSimCheckpointV1 = {
      kind: 'jobscribe-sim-slurm',
      v: 1,
      sim: this.sim.checkpoint(),
      tracker: this.tracker,
      nextId: this.nextId,
      nextPoll: this.nextPoll,
      lastPoll: this.lastPoll,
      jobs: [...this.byId.values()],
      burst: this.burst,
      counters: this.counters,
      dirty: this.dirty,
    };
    return JSON.stringify(cp);
  }

  get cluster(): SimCluster {
    return this.sim.cluster;
  }

  /** The Flux simulator underneath (its clock, its stats). */
  get flux(): Simulator {
    return this.sim;
  }

  get time(): number {
    return this.sim.time;
  }

  /** The Slurm job id a Flux simulator job got. */
  slurmId(fluxId: string): number | undefined {
    return this.byFlux.get(fluxId)?.id;
  }

  /** Everything simulated and every job's end reported (or `untilTime` passed). */
  get finished(): boolean {
    if (!this.sim.finished) return false;
    const until = this.options.untilTime;
    if (until !== undefined && this.nextPoll > until) return true;
    if (Object.keys(this.tracker.jobs).length > 0) return false;
    for (const j of this.byId.values()) {
      if (!j.visible || j.invalid) continue;
      if (j.end === 0 || !this.tracker.ended[String(j.id)]) return false;
    }
    return true;
  }

  /** Time (s) of the next poll. */
  nextTime(): number | undefined {
    return this.finished ? undefined : this.nextPoll;
  }

  /** Polls in order until at least `max` events are out or the next poll is after `until` (s). */
  nextBatch(max = this.options.batchSize, until?: number): SourceEvent[] {
    const out: SourceEvent[] = [];
    const stop = Math.min(until ?? Infinity, this.options.untilTime ?? Infinity);
    while (out.length < max && !this.finished && this.nextPoll <= stop) {
      const t = this.nextPoll;
      this.drain(t);
      for (const e of this.poll(t)) out.push(e);
      this.nextPoll = t + this.options.pollInterval;
    }
    return out;
  }

  /** All events up to `t` (s). */
  advanceTo(t: number): SourceEvent[] {
    const all: SourceEvent[] = [];
    takeBatchesUntil(this, t, (e) => all.push(e));
    this.setClock(t);
    return all;
  }

  /** Moves the clock to `t` (no poll): what Flux did until then is in the virtual records. */
  setClock(t: number): void {
    const to = Math.min(t, this.nextPoll);
    this.drain(to);
    this.sim.setClock(to);
  }

  // -------------------------------------------------------------------------------------------
  // Flux events → virtual Slurm

  private drain(t: number): void {
    takeBatchesUntil(this.sim, t, (e) => this.apply(e));
  }

  private index(j: SlurmSimJob): void {
    this.byFlux.set(j.flux, j);
    this.byId.set(j.id, j);
  }

  private forget(j: SlurmSimJob): void {
    this.byFlux.delete(j.flux);
    this.byId.delete(j.id);
  }

  /** Applies one Flux event to the job's Slurm record. */
  private apply(e: SourceEvent): void {
    const ctx = e.context;
    const sec = Math.floor(e.ts);
    if (e.name === 'submit') return this.submit(e);
    const j = this.byFlux.get(e.job_id);
    if (!j) return;
    this.dirty = true;
    switch (e.name) {
      case 'validate':
        j.visible = true;
        break;
      case 'invalidate':
        j.invalid = true;
        j.end = sec;
        break;
      case 'dependency-remove':
        j.dep = '';
        j.depState = '';
        break;
      case 'depend':
        j.sched = true;
        break;
      case 'priority':
        if ((ctx.priority as number) > 0 && j.elig === 0) j.elig = Math.max(sec, j.sub);
        break;
      case 'urgency': {
        const urgency = ctx.urgency as number;
        if (urgency === 0) {
          j.held = j.uhold || ctx.userid !== this.cluster.ownerUid ? 'user' : 'admin';
          delete j.uhold;
          j.acctReason = j.held === 'user' ? 'JobHeldUser' : 'JobHeldAdmin';
        } else if (j.held) {
          j.held = '';
          // Slurm restarts the wait at the release
          if (j.sched) j.elig = Math.max(sec, j.sub);
        }
        j.top = urgency === 31;
        break;
      }
      case 'alloc':
        this.start(j, e, sec);
        break;
      case 'exception':
        this.exception(j, ctx, sec);
        break;
      case 'finish':
        this.finish(j, ctx.status as number, sec);
        break;
      default:
        break; // dependency-add, start, release, free, clean, annotations: nothing Slurm shows
    }
    j.reason = this.pendingReason(j);
  }

  private submit(e: SourceEvent): void {
    const raw = e.raw as { jobspec: Record<string, unknown> };
    const spec = raw.jobspec;
    const sys = (spec.attributes as { system: Record<string, unknown> }).system;
    const res = (spec.resources as Array<Record<string, unknown>>)[0]!;
    const c = this.cluster;
    const slotOf = (r: Record<string, unknown>) => (r.type === 'slot' ? r : (r.with as Array<Record<string, unknown>>)[0]!);
    const slot = slotOf(res);
    const nodeCount = res.type === 'node' ? (res.count as number) : 0;
    const ntasks = (slot.count as number) * Math.max(1, nodeCount);
    const per = (type: string) => ((slot.with as Array<{ type: string; count: number }>).find((w) => w.type === type)?.count ?? 0);
    const exclusive = res.exclusive === true;
    const ncpus = exclusive ? nodeCount * c.coresPerNode : ntasks * per('core');
    const nnodes = nodeCount || Math.max(1, Math.ceil(ncpus / c.coresPerNode));
    const task = (spec.tasks as Array<{ command: string[] }>)[0]!;
    const name = ((sys.job as { name?: string } | undefined)?.name ?? task.command[0]!.replace(/^.*\//, '')) || 'sbatch';
    const deps = sys.dependencies as Array<{ scheme: string; value: string }> | undefined;
    const user = e.user ?? '';
    const su = c.users.find((u) => u.name === user);
    const specKey = JSON.stringify(spec);
    const id = this.nextId++;
    // copies of one `--cc` submission are an array job: the first task's id names the array
    let aj = 0;
    let at: number | null = null;
    const b = this.burst;
    if (b && b.spec === specKey && b.user === user && e.ts - b.ts < 0.01) {
      aj = b.aj;
      at = b.next++;
      b.ts = e.ts;
      const first = this.byId.get(aj);
      if (first && first.at === null) first.at = 0;
      if (first) first.aj = aj;
    } else {
      this.burst = { spec: specKey, ts: e.ts, aj: id, next: 1, user };
    }
    let dep = '';
    if (deps?.[0]) {
      const parent = this.byFlux.get(deps[0].value);
      dep = `${deps[0].scheme}:${parent ? parent.id : deps[0].value}`;
    }
    const sub = Math.floor(e.ts);
    const j: SlurmSimJob = {
      id,
      flux: e.job_id,
      aj,
      at,
      name,
      user,
      uid: (e.context.userid as number | undefined) ?? su?.uid ?? 0,
      account: su ? su.kind : 'default',
      part: typeof sys.queue === 'string' ? sys.queue : '',
      tl: Math.max(1, Math.ceil(Number(sys.duration ?? 0) / 60)),
      nnodes,
      ncpus,
      ntasks,
      ngpus: ntasks * per('gpu'),
      dep,
      depState: dep ? 'unfulfilled' : '',
      sub,
      elig: 0,
      start: 0,
      end: 0,
      state: 'PENDING',
      reason: 'None',
      acctReason: dep ? 'Dependency' : 'None',
      sched: false,
      visible: false,
      held: e.context.urgency === 0 ? 'user' : '',
      top: false,
      nice: null,
      nodes: '',
      ws: 0,
      exit: '0:0',
      batchState: '',
      batchExit: '',
    };
    if (j.held) j.acctReason = 'JobHeldUser';
    j.reason = this.pendingReason(j);
    this.index(j);
    this.dirty = true;
  }

  private start(j: SlurmSimJob, e: SourceEvent, sec: number): void {
    const R = (e.raw as { R?: { execution: { R_lite: Array<{ rank: string; children: { core: string; gpu?: string } }>; nodelist: string[] } } }).R;
    j.state = 'RUNNING';
    j.reason = 'None';
    j.start = Math.max(sec, j.elig, j.sub);
    if (j.elig === 0) j.elig = j.start;
    j.held = '';
    if (R) {
      let nodes = 0;
      let cores = 0;
      let gpus = 0;
      for (const g of R.execution.R_lite) {
        const n = idsetSize(g.rank);
        nodes += n;
        cores += n * idsetSize(g.children.core);
        gpus += n * idsetSize(g.children.gpu ?? '');
      }
      j.nnodes = nodes;
      j.ncpus = cores;
      j.ngpus = gpus;
      j.nodes = R.execution.nodelist.join(',');
    }
  }

  private exception(j: SlurmSimJob, ctx: Record<string, unknown>, sec: number): void {
    const type = ctx.type as string;
    const uid = (ctx.userid as number | undefined) ?? this.cluster.ownerUid;
    if (type === 'cancel') {
      j.by = uid;
      if (j.state === 'PENDING') this.end(j, 'CANCELLED', sec, 0);
      else j.mark = 'cancel';
    } else if (type === 'timeout') {
      j.mark = 'timeout';
    } else if (type === 'dependency') {
      j.depState = 'failed';
      j.doomed = { stage: 1, reason: 'DependencyNeverSatisfied', uid };
    } else if (type === 'alloc') {
      j.doomed = { stage: 1, reason: 'PartitionNodeLimit', uid };
    }
    // exec: the batch script fails with 127 at its `finish`
  }

  private finish(j: SlurmSimJob, status: number, sec: number): void {
    if (j.state !== 'RUNNING') return;
    if (j.mark === 'cancel') return this.end(j, 'CANCELLED', sec, 15);
    if (j.mark === 'timeout') return this.end(j, 'TIMEOUT', sec, 15);
    if (j.signal !== undefined) return this.end(j, 'FAILED', sec, j.signal);
    // the workload's SIGKILL deaths are OOM kills: Slurm's cgroup plugin says OUT_OF_MEMORY
    const d = decodeWaitStatus(status);
    if (d.signal === 9 || d.exit_code === 128 + 9) return this.end(j, 'OUT_OF_MEMORY', sec, status);
    this.end(j, status === 0 ? 'COMPLETED' : 'FAILED', sec, status);
  }

  /** The job is final in Slurm: squeue and sacct show it so from now on. */
  private end(j: SlurmSimJob, state: string, sec: number, ws: number): void {
    const ran = j.start > 0;
    j.state = state;
    j.end = Math.max(sec, j.start, j.sub);
    // an OOM kill: slurmstepd records SIG_OOM (253) as the status, which sacct prints as 0:125
    j.ws = !ran ? 0 : state === 'OUT_OF_MEMORY' ? 253 : ws;
    if (state === 'CANCELLED' || state === 'TIMEOUT' || state === 'COMPLETED') j.exit = '0:0';
    else if (state === 'OUT_OF_MEMORY') j.exit = '0:125';
    else {
      const d = decodeWaitStatus(ws);
      j.exit = `${d.exit_code}:${d.signal}`;
    }
    if (ran) {
      j.batchState = state === 'TIMEOUT' ? 'CANCELLED' : state;
      j.batchExit = state === 'CANCELLED' || state === 'TIMEOUT' ? '0:15' : j.exit;
    }
    // squeue's final reasons as Slurm 22.05 prints them (fixtures: squeue-finished.json)
    j.reason =
      state === 'TIMEOUT' ? 'TimeLimit' : state === 'FAILED' ? 'NonZeroExitCode' : state === 'OUT_OF_MEMORY' ? 'OutOfMemory' : j.doomed ? j.doomed.reason : 'None';
    if (j.doomed) j.acctReason = j.doomed.reason;
    delete j.doomed;
    const tally = (by: Record<string, Record<string, number>>, key: string) => {
      const t = (by[key] ??= {});
      t[state] = (t[state] ?? 0) + 1;
    };
    tally(this.counters.byUser, j.user);
    tally(this.counters.byPart, j.part);
    this.onFinal?.(j);
  }

  private pendingReason(j: SlurmSimJob): string {
    if (j.state !== 'PENDING') return j.reason;
    if (j.doomed) return j.doomed.reason;
    if (j.held) return j.held === 'user' ? 'JobHeldUser' : 'JobHeldAdmin';
    if (j.depState === 'unfulfilled') return 'Dependency';
    return j.sched ? 'Priority' : 'None';
  }

  private priorityOf(j: SlurmSimJob): number {
    if (j.held) return 0;
    if (j.prioritySet !== undefined) return j.prioritySet;
    return j.top ? TOP_PRIORITY : Math.max(1, BASE_PRIORITY - (j.id - FIRST_SLURM_JOB_ID + 1));
  }

  // -------------------------------------------------------------------------------------------
  // Polls

  private poll(t: number): SourceEvent[] {
    // what was doomed and seen pending for a poll is cancelled now (kill_invalid_depend / the admin)
    for (const j of this.byId.values()) {
      if (j.doomed?.stage === 2 && j.state === 'PENDING') {
        j.by = j.doomed.uid;
        this.end(j, 'CANCELLED', Math.max(this.lastPoll + 1, j.sub), 0);
        this.dirty = true;
      }
    }
    for (const j of this.byId.values()) {
      if (j.end > 0 && j.end + MIN_JOB_AGE_S < t && (j.invalid || !j.visible || this.tracker.ended[String(j.id)])) {
        this.forget(j);
        this.dirty = true;
      }
    }
    this.lastPoll = t;
    const events = this.dirty ? this.diff(t) : [];
    // a doomed job was in this snapshot (its change made it dirty): the next poll cancels it
    for (const j of this.byId.values()) if (j.visible && j.doomed?.stage === 1) j.doomed.stage = 2;
    return events;
  }

  private diff(t: number): SourceEvent[] {
    this.dirty = false;
    const squeue = { jobs: [] as SqueueJob[], raw: new Map<string, Record<string, unknown>>() };
    for (const j of this.byId.values()) {
      if (!j.visible || j.invalid) continue;
      const raw = this.squeueRecord(j);
      squeue.raw.set(String(j.id), raw);
      squeue.jobs.push(squeueJobOf(raw));
    }
    const lookups = new Map<string, SacctJob>();
    for (const id of jobsNeedingAccounting(this.tracker, squeue)) {
      const j = this.byId.get(Number(id));
      if (j && j.end > 0) lookups.set(id, this.sacct(j));
    }
    const { events, state } = applyPoll(this.tracker, { now: t, squeue, accounting: 'on', lookups });
    this.tracker = state;
    this.counters.events += events.length;
    return events;
  }

  /** The job as `squeue --json` (openapi/v0.0.38, Slurm 22.05) prints it. */
  squeueRecord(j: SlurmSimJob): Record<string, unknown> {
    const ran = j.start > 0;
    const final = j.end > 0;
    const gpu = j.ngpus > 0 ? `,gres/gpu=${j.ngpus}` : '';
    const prio = final ? BASE_PRIORITY - (j.id - FIRST_SLURM_JOB_ID + 1) : this.priorityOf(j);
    return {
      account: j.account,
      accrue_time: j.elig,
      array_job_id: j.aj,
      array_task_id: j.at,
      array_max_tasks: 0,
      array_task_string: '',
      batch_flag: true,
      batch_host: ran ? j.nodes.replace(/\[(\d+).*$/, '$1').split(',')[0] : '',
      cluster: this.cluster.name,
      command: '',
      current_working_directory: `/home/${j.user}`,
      dependency: j.dep ? `${j.dep}(${j.depState || 'unfulfilled'})` : '',
      derived_exit_code: 0,
      eligible_time: j.elig,
      end_time: final ? j.end : ran ? j.start + j.tl * 60 : 0,
      exit_code: final ? j.ws : 0,
      group_id: j.uid,
      job_id: j.id,
      job_state: j.state,
      name: j.name,
      nodes: ran ? j.nodes : '',
      nice: j.nice,
      cpus: j.ncpus,
      node_count: j.nnodes,
      tasks: j.ntasks,
      partition: j.part,
      priority: prio,
      qos: 'normal',
      requeue: true,
      restart_cnt: 0,
      start_time: ran ? j.start : final ? j.end : 0,
      state_reason: j.reason,
      submit_time: j.sub,
      suspend_time: 0,
      time_limit: j.tl,
      tres_req_str: `cpu=${j.ncpus},node=${j.nnodes},billing=${j.ncpus}${gpu}`,
      tres_alloc_str: ran ? `cpu=${j.ncpus},node=${j.nnodes},billing=${j.ncpus}${gpu}` : '',
      user_id: j.uid,
      user_name: j.user,
    };
  }

  /** The job's `sacct --parsable2` lines (the poller's columns): the allocation and its .batch step. */
  sacct(j: SlurmSimJob): SacctJob {
    const ran = j.start > 0;
    const jobId = j.aj ? `${j.aj}_${j.at ?? 0}` : String(j.id);
    const gpu = j.ngpus > 0 ? `,gres/gpu=${j.ngpus}` : '';
    const line = (vals: Partial<Record<(typeof SACCT_FIELDS)[number], string>>): SacctLine =>
      Object.fromEntries(SACCT_FIELDS.map((f) => [f, vals[f] ?? '']));
    const job = line({
      JobIDRaw: String(j.id),
      JobID: jobId,
      State: j.state === 'CANCELLED' && j.by !== undefined ? `CANCELLED by ${j.by}` : j.state,
      ExitCode: j.exit,
      DerivedExitCode: '0:0',
      Reason: j.acctReason,
      Submit: sacctTimeArg(j.sub),
      Eligible: j.elig ? sacctTimeArg(j.elig) : 'Unknown',
      // a job cancelled once eligible gets Start = End in accounting, one never eligible None
      Start: ran ? sacctTimeArg(j.start) : j.elig ? sacctTimeArg(j.end) : 'None',
      End: sacctTimeArg(j.end),
      Timelimit: sacctDuration(j.tl),
      NodeList: ran ? j.nodes : 'None assigned',
      NNodes: String(j.nnodes),
      NCPUS: String(j.ncpus),
      AllocTRES: ran ? `billing=${j.ncpus},cpu=${j.ncpus}${gpu},node=${j.nnodes}` : '',
      Partition: j.part,
      Account: j.account,
      QOS: 'normal',
      User: j.user,
      UID: String(j.uid),
      Priority: String(BASE_PRIORITY - (j.id - FIRST_SLURM_JOB_ID + 1)),
      JobName: j.name,
    });
    if (!ran) return { id: String(j.id), job, steps: [] };
    const batch = line({
      JobIDRaw: `${j.id}.batch`,
      JobID: `${jobId}.batch`,
      State: j.batchState,
      ExitCode: j.batchExit,
      Submit: sacctTimeArg(j.start),
      Eligible: sacctTimeArg(j.start),
      Start: sacctTimeArg(j.start),
      End: sacctTimeArg(j.end),
      NodeList: j.nodes.split(',')[0] ?? '',
      NNodes: '1',
      NCPUS: String(j.ncpus),
      AllocTRES: `cpu=${j.ncpus},mem=0,node=1`,
      JobName: 'batch',
    });
    return { id: String(j.id), job, batch, steps: [batch] };
  }

  // -------------------------------------------------------------------------------------------
  // Actions, statistics

  /** The user owning a job Slurm still lists. */
  owner(jobId: string): OwnerResult {
    const j = this.byId.get(Number(jobId));
    if (!/^[1-9][0-9]*$/.test(String(jobId)) || !j || !j.visible || j.invalid) return { ok: false, code: 'no_such_job', message: `unknown job id ${jobId}` };
    if (j.end > 0) return { ok: false, code: 'no_such_job', message: `job ${j.id} is inactive` };
    return { ok: true, user: j.user };
  }

  /**
   * An action on a Slurm job id, answered as the Slurm source answers (detail.argv: the command
   * the real cluster would run). Its events come out with the next poll.
   */
  act(req: SlurmActionRequest): ActionResult {
    const cmd = slurmActionCommand(req);
    if (!cmd.ok) return cmd;
    if (req.action === 'submit') return { ok: false, code: 'unsupported', message: 'submit: the simulator does not take submissions' };
    if (req.action === 'time_limit') return { ok: false, code: 'unsupported', message: 'time_limit: not simulated' };
    const id = Number(req.job_id);
    const j = this.byId.get(id);
    const what = `${req.action} ${id}`;
    if (!j || !j.visible || j.invalid) return { ok: false, code: 'no_such_job', message: `${what}: Invalid job id specified` };
    this.drain(this.sim.time);
    if (j.end > 0) return { ok: false, code: 'invalid', message: `${what}: Job/step already completing or completed` };
    const args = req.args ?? {};
    const base: ActionRequest = { action: req.action, job_id: j.flux };
    if (req.user !== undefined) base.user = req.user;
    let r: ActionResult;
    switch (req.action) {
      case 'cancel':
        r = this.sim.act({ ...base, args: typeof args.note === 'string' ? { note: args.note } : {} });
        break;
      case 'signal': {
        const signum = signalNumber(args.signum ?? args.signal);
        if (signum === undefined) return { ok: false, code: 'invalid', message: `${what}: Unknown job signal` };
        if (j.state !== 'RUNNING') return { ok: false, code: 'invalid', message: `${what}: Job is pending execution` };
        r = this.sim.act({ ...base, args: { signum } });
        if (r.ok && r.detail?.effect !== 'none') j.signal = signum;
        break;
      }
      case 'hold':
      case 'release':
        if (j.state !== 'PENDING') return { ok: false, code: 'invalid', message: `${what}: Job is no longer pending execution` };
        // only an operator releases an administrator's hold
        if (req.action === 'release' && j.held === 'admin' && req.user !== undefined && req.user !== this.cluster.ownerUser) {
          return { ok: false, code: 'not_permitted', message: `${what}: Access/permission denied` };
        }
        if (req.action === 'hold' && args.by === 'user') j.uhold = true;
        r = this.sim.act(base);
        if (!r.ok) delete j.uhold;
        break;
      default: {
        // urgency: Priority= (args.priority or args.urgency) and/or Nice=
        if (j.state !== 'PENDING') return { ok: false, code: 'invalid', message: `${what}: Job is no longer pending execution` };
        const priority = (args.priority ?? args.urgency) as number | undefined;
        const nice = args.nice as number | undefined;
        const admin = req.user === undefined || req.user === this.cluster.ownerUser;
        if (!admin && priority !== undefined) return { ok: false, code: 'not_permitted', message: `${what}: Access/permission denied` };
        if (!admin && nice !== undefined && nice < 0) return { ok: false, code: 'not_permitted', message: `${what}: Access/permission denied` };
        if (!admin && req.user !== j.user) return { ok: false, code: 'not_permitted', message: `${what}: Access/permission denied` };
        if (priority === 0) {
          r = this.sim.act({ ...base, action: 'hold' });
        } else {
          if (j.held && priority !== undefined) {
            r = this.sim.act({ ...base, action: 'release' });
            if (!r.ok) break;
          }
          if (priority !== undefined) j.prioritySet = priority;
          if (nice !== undefined) j.nice = nice;
          this.dirty = true;
          r = { ok: true, job_id: j.flux };
        }
        break;
      }
    }
    if (!r.ok) {
      const code = r.code === 'not_permitted' ? 'not_permitted' : r.code;
      const message = code === 'not_permitted' ? `${what}: Access/permission denied` : `${what}: ${r.message}`;
      return { ok: false, code, message };
    }
    this.drain(this.sim.time);
    return { ok: true, job_id: String(id), detail: { argv: cmd.argv } };
  }

  /** Totals as accounting shows them (final jobs by Slurm state, unified like the `jobs` table). */
  stats(): SlurmSimStats {
    const flux = this.sim.stats();
    const tally = (t: Record<string, number> | undefined): ResultTally => {
      const r: ResultTally = { jobs: 0, COMPLETED: 0, FAILED: 0, CANCELED: 0, TIMEOUT: 0, active: 0 };
      for (const [state, n] of Object.entries(t ?? {})) {
        const u = unifiedSlurmResult(state);
        r[u === 'completed' ? 'COMPLETED' : u === 'canceled' ? 'CANCELED' : u === 'timeout' ? 'TIMEOUT' : 'FAILED'] += n;
        r.jobs += n;
      }
      return r;
    };
    const all: Record<string, number> = {};
    const byUser: Record<string, ResultTally> = {};
    const byQueue: Record<string, ResultTally> = {};
    for (const u of this.cluster.users) byUser[u.name] = tally(this.counters.byUser[u.name]);
    for (const q of this.cluster.queues) byQueue[q.name] = tally(this.counters.byPart[q.name]);
    for (const t of Object.values(this.counters.byUser)) for (const [s, n] of Object.entries(t)) all[s] = (all[s] ?? 0) + n;
    const results = tally(all);
    let pending = 0;
    let running = 0;
    for (const j of this.byId.values()) {
      if (!j.visible || j.invalid || j.end > 0) continue;
      if (j.state === 'PENDING') pending++;
      else running++;
      for (const t of [results, byUser[j.user], byQueue[j.part]]) {
        if (!t) continue;
        t.active++;
        t.jobs++;
      }
    }
    return {
      ...flux,
      scheduler: 'slurm',
      events: this.counters.events,
      results,
      byUser,
      byQueue,
      active: { pending, running },
      slurmStates: all,
    };
  }
}

const SIGNALS: Readonly<Record<string, number>> = { HUP: 1, INT: 2, QUIT: 3, ABRT: 6, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, TERM: 15, CONT: 18, STOP: 19, TSTP: 20 };
function signalNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  return SIGNALS[v.replace(/^SIG/, '')];
}

/** The fields of a record the diff reads (what SqueueJobSchema makes of it; tests check they agree). */
export function squeueJobOf(raw: Record<string, unknown>): SqueueJob {
  return {
    job_id: raw.job_id as number,
    array_job_id: raw.array_job_id as number,
    array_task_id: raw.array_task_id as number | null,
    array_task_string: raw.array_task_string as string,
    name: raw.name as string,
    user_name: raw.user_name as string,
    user_id: raw.user_id as number,
    account: raw.account as string,
    partition: raw.partition as string,
    qos: raw.qos as string,
    job_state: raw.job_state as string,
    state_reason: raw.state_reason as string,
    dependency: raw.dependency as string,
    exit_code: raw.exit_code as number,
    derived_exit_code: raw.derived_exit_code as number,
    submit_time: raw.submit_time as number,
    eligible_time: raw.eligible_time as number,
    start_time: raw.start_time as number,
    end_time: raw.end_time as number,
    suspend_time: raw.suspend_time as number,
    priority: raw.priority as number,
    nice: raw.nice as number | null,
    time_limit: raw.time_limit as number,
    nodes: raw.nodes as string,
    node_count: raw.node_count as number,
    cpus: raw.cpus as number,
    tasks: raw.tasks as number,
    restart_cnt: raw.restart_cnt as number,
    tres_alloc_str: raw.tres_alloc_str as string,
    tres_req_str: raw.tres_req_str as string,
  };
}

/** Every event of a Slurm-flavoured simulation (needs maxJobs or untilTime to end). */
export function simulateSlurm(options?: SimOptionsInput): Generator<SourceEvent, SlurmSimStats, undefined> {
  return eventsToEnd(new SlurmSimulator(options));
}

/** The totals a read model must show for a finished Slurm-flavoured simulation. */
export function slurmGroundTruth(options?: SimOptionsInput): SlurmSimStats {
  return statsAtEnd(new SlurmSimulator(options));
}
