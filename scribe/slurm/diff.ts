/**
 * The pure core of the Slurm source: one poll's observations (a `squeue --json` snapshot, the
 * sacct records of jobs that ended or left squeue, and jobs that sacct says ended in the
 * discovery window) folded into the tracker state, producing job events (schemas/slurm/events.ts).
 * No I/O and no clock: `now` comes in with the input, so the same state and input always give
 * the same events and the same next state.
 *
 * Seq. Each tracked job carries `n`, the number of events emitted for it so far; an event gets
 * seq = n and n grows by one. The tracker state is the source's checkpoint, and the scribe saves
 * it only after the log accepted the events derived up to it, so after a restart the same job
 * continues at the same n: a re-poll of an unchanged snapshot derives nothing (every fact in it is
 * already in the state), and a later snapshot derives only what changed. Finished jobs stay in
 * `ended` (with their n) while squeue or the sacct window can still show them, so they are never
 * re-emitted. The source adds a write-ahead step for crashes between publish and save (source.ts).
 *
 * Timestamps. Slurm's own times where it keeps them (submit_time, eligible_time, start_time,
 * end_time, suspend_time); everything else is the poll time (whole seconds) with ts_source
 * 'poll', pulled back to the next Slurm-timed event of the same job in the batch so a job's ts
 * never go backwards.
 */
import type { SourceEvent } from '../source.js';
import { SLURM_FINAL_STATES, type SlurmEventContext, type SlurmEventName } from '../../schemas/slurm/events.js';
import {
  decodeWaitStatus,
  parseSacctDuration,
  parseSacctExitCode,
  parseSacctTime,
  sacctStateWord,
  tresCount,
  type SacctJob,
  type SacctLine,
  type SqueueJob,
  type SqueueSnapshot,
} from '../../schemas/slurm/squeue.js';

/** What the source remembers of a job it has not yet seen end (kept in the checkpoint). */
export interface JobTrack {
  /** Events emitted so far: the next event's seq. */
  n: number;
  /** submit_time of the current run (changes on requeue). */
  sub: number;
  phase: 'pending' | 'running' | 'suspended';
  /** '' or who holds it. */
  held: '' | 'user' | 'admin';
  /** eligible_time last emitted, 0 when none yet (in this run). */
  elig: number;
  /** start_time emitted in this run, 0 when not started. */
  start: number;
  prio: number | null;
  nice: number | null;
  /** Time limit in minutes as last seen, null when unset. */
  tl: number | null;
  part: string;
  name: string;
  user: string;
  /** dependency_never_satisfied emitted in this run. */
  never: boolean;
  /** Slurm restart_cnt (requeues) as last seen. */
  rc: number;
  /** suspend_time last used for a suspend/resume event. */
  susp: number;
  /** Poll time the job was first seen final in squeue while its sacct record was awaited. */
  term?: number;
  /** Poll time the job was first missing from squeue. */
  gone?: number;
}

/** A job whose `end` was emitted; kept until neither squeue nor the sacct window can show it again. */
export interface EndedJob {
  n: number;
  end: number;
  rc: number;
}

export interface TrackerState {
  /** Time of the last poll (seconds). */
  polled_at: number | null;
  /** End of the last sacct discovery window (seconds): the next window starts here (minus overlap). */
  sacct_until: number | null;
  jobs: Record<string, JobTrack>;
  ended: Record<string, EndedJob>;
}

export function emptyTrackerState(): TrackerState {
  return { polled_at: null, sacct_until: null, jobs: {}, ended: {} };
}

export interface PollInput {
  /** Poll time, seconds since the epoch. */
  now: number;
  squeue: SqueueSnapshot;
  /** on: sacct answered; off: no accounting on this cluster; failed: sacct did not answer this poll. */
  accounting: 'on' | 'off' | 'failed';
  /** sacct records of the jobs `jobsNeedingAccounting` named (empty when accounting is not 'on'). */
  lookups: ReadonlyMap<string, SacctJob>;
  /** Jobs sacct says ended in [since, until], when a discovery ran this poll. */
  discovery?: { until: number; jobs: ReadonlyMap<string, SacctJob> };
}

export interface DiffOptions {
  /** Seconds to wait for sacct's final record of a job squeue shows final, before using squeue's. */
  endGraceS: number;
  /** Seconds a tracked job may be missing from squeue (with no final sacct record) before it ends as UNKNOWN. */
  vanishGraceS: number;
  /** Emit `priority` events (with priority/multifactor every pending job changes often). */
  priorityEvents: boolean;
  /** Seconds each discovery window reaches back before the previous one's end. */
  overlapS: number;
}

export const DEFAULT_DIFF_OPTIONS: DiffOptions = { endGraceS: 60, vanishGraceS: 60, priorityEvents: true, overlapS: 120 };

/** squeue states of a job waiting to run (held ones included). */
const PENDING_STATES: ReadonlySet<string> = new Set(['PENDING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'SPECIAL_EXIT', 'RESV_DEL_HOLD']);
/** squeue states of a job holding its allocation. */
const RUNNING_STATES: ReadonlySet<string> = new Set(['RUNNING', 'CONFIGURING', 'RESIZING', 'STOPPED', 'POWER_UP_NODE']);
// Everything else that is not final (COMPLETING, STAGE_OUT, SIGNALING, UPDATE_DB, unknown words) is
// a passage: no phase change is read from it; the next snapshot tells where the job went.

export const isFinalState = (s: string): boolean => SLURM_FINAL_STATES.has(s);

/** The jobs of this snapshot whose end needs sacct: final in squeue, or tracked but gone from it. */
export function jobsNeedingAccounting(state: TrackerState, squeue: SqueueSnapshot): string[] {
  const ids: string[] = [];
  const seen = new Set<string>();
  for (const rec of squeue.jobs) {
    const id = String(rec.job_id);
    seen.add(id);
    if (isFinalState(rec.job_state) && !state.ended[id]) ids.push(id);
  }
  for (const id of Object.keys(state.jobs)) if (!seen.has(id)) ids.push(id);
  return ids;
}

/** Applies one poll. Pure: returns the events (seq assigned) and the next state; `prev` is untouched. */
export function applyPoll(prev: TrackerState, input: PollInput, opts: DiffOptions = DEFAULT_DIFF_OPTIONS): { events: SourceEvent[]; state: TrackerState } {
  const state: TrackerState = structuredClone(prev);
  const out: SourceEvent[] = [];
  const now = input.now;
  // the ts of what only the poll saw: whole seconds, Slurm's resolution (Slurm floors its own
  // times), so a poll-timed event is never after a Slurm-timed one that happened later
  const at = Math.floor(now);
  const seen = new Set<string>();
  // sacct's final record of a job, once complete, or as it is when `waited` is over
  const finalSacct = (a: SacctJob | undefined, waited: boolean, rec?: SqueueJob): SacctJob | undefined =>
    a && isFinalState(sacctStateWord(a.job.State)) && (waited || sacctSettled(a, rec)) ? a : undefined;
  const lookup = (id: string) => (input.accounting === 'on' ? input.lookups.get(id) : undefined);

  for (const rec of input.squeue.jobs) {
    const id = String(rec.job_id);
    seen.add(id);
    const raw = input.squeue.raw.get(id) ?? {};
    let track = state.jobs[id];
    if (!track) {
      const ended = state.ended[id];
      if (ended) {
        // Still listed after its end. Only a requeue of the finished job brings it back.
        if (rec.restart_cnt <= ended.rc || isFinalState(rec.job_state)) continue;
        delete state.ended[id];
        track = { ...newTrack(rec), n: ended.n, rc: ended.rc };
      }
    }
    const em = new JobEmitter(out, id, rec.user_name, track);
    const final = observe(em, rec, raw, at, opts);
    const t = em.track;
    delete t.gone;
    if (!final) delete t.term; // a final record can turn into a requeue
    if (final) {
      t.term ??= now;
      const waited = now - t.term >= opts.endGraceS;
      const acct = finalSacct(lookup(id), waited, rec);
      if (acct) {
        endFromSacct(em, acct, rec, raw, at);
        finish(state, em);
        continue;
      }
      if (input.accounting === 'off' || waited) {
        endFromSqueue(em, rec, raw, at);
        finish(state, em);
        continue;
      }
    }
    state.jobs[id] = t;
  }

  for (const [id, t] of Object.entries(state.jobs)) {
    if (seen.has(id)) continue;
    t.gone ??= now;
    const em = new JobEmitter(out, id, t.user, t);
    const waited = now - t.gone >= opts.vanishGraceS;
    const acct = finalSacct(lookup(id), waited);
    if (acct) {
      endFromSacct(em, acct, undefined, undefined, at);
      finish(state, em);
    } else if (input.accounting !== 'failed' && waited) {
      em.push('end', at, 'poll', unknownEnd(t), {});
      finish(state, em);
    }
  }

  if (input.discovery) {
    for (const [id, acct] of input.discovery.jobs) {
      if (seen.has(id) || state.jobs[id] || state.ended[id]) continue;
      // an incomplete record is left to the next window (overlapS reaches back to it)
      const end = parseSacctTime(acct.job.End);
      if (!finalSacct(acct, end !== null && now - end >= opts.endGraceS)) continue;
      const em = new JobEmitter(out, id, acct.job.User ?? '', undefined);
      submitFromSacct(em, acct);
      endFromSacct(em, acct, undefined, undefined, at);
      finish(state, em);
    }
    state.sacct_until = input.discovery.until;
  }

  // Forget ended jobs once squeue no longer lists them and no future sacct window can reach them.
  const horizon = (state.sacct_until ?? now) - opts.overlapS - 60;
  for (const [id, e] of Object.entries(state.ended)) if (!seen.has(id) && e.end < horizon) delete state.ended[id];
  state.polled_at = now;
  clampPollTimes(out);
  return { events: out, state };
}

function finish(state: TrackerState, em: JobEmitter): void {
  delete state.jobs[em.id];
  state.ended[em.id] = { n: em.track.n, end: em.endTs, rc: em.track.rc };
}

/** Appends one job's events with consecutive seqs. */
class JobEmitter {
  track: JobTrack;
  /** ts of the `end` pushed, 0 before. */
  endTs = 0;
  constructor(
    private readonly out: SourceEvent[],
    readonly id: string,
    private user: string,
    track: JobTrack | undefined,
  ) {
    this.track = track ?? ({} as JobTrack);
  }
  get isNew(): boolean {
    return this.track.n === undefined;
  }
  adopt(t: JobTrack): void {
    this.track = t;
  }
  push<N extends SlurmEventName>(name: N, ts: number, source: 'scheduler' | 'poll', context: SlurmEventContext<N>, raw: unknown): void {
    if (!this.user && name === 'submit') this.user = (context as { user?: string }).user ?? '';
    const ev: SourceEvent = { job_id: this.id, seq: this.track.n++, name, ts, ts_source: source, context: context, raw };
    if (this.user) ev.user = this.user;
    this.out.push(ev);
    if (name === 'end') this.endTs = ts;
  }
}

function newTrack(rec: SqueueJob): JobTrack {
  return {
    n: 0,
    sub: rec.submit_time,
    phase: 'pending',
    held: '',
    elig: 0,
    start: 0,
    prio: rec.priority,
    nice: rec.nice,
    tl: rec.time_limit,
    part: rec.partition,
    name: rec.name,
    user: rec.user_name,
    never: false,
    rc: rec.restart_cnt,
    susp: 0,
  };
}

const minutes = (m: number | null): number | null => (m === null || m >= 0xfffffffe ? null : m * 60);
const heldBy = (rec: SqueueJob): '' | 'user' | 'admin' =>
  rec.state_reason === 'JobHeldUser' ? 'user' : rec.state_reason === 'JobHeldAdmin' || rec.job_state === 'REQUEUE_HOLD' || rec.job_state === 'SPECIAL_EXIT' ? 'admin' : '';
const gpus = (rec: SqueueJob): number | null => tresCount(rec.tres_alloc_str || rec.tres_req_str, 'gres/gpu');

/**
 * Reads one squeue record against what is known of the job; pushes the events for what changed.
 * Returns whether the record is final (the caller decides where the `end` comes from).
 */
function observe(em: JobEmitter, rec: SqueueJob, raw: Record<string, unknown>, now: number, opts: DiffOptions): boolean {
  const st = rec.job_state;
  const r = { squeue: raw };
  const isNew = em.isNew;
  if (isNew) {
    em.adopt(newTrack(rec));
    em.push('submit', rec.submit_time || now, rec.submit_time ? 'scheduler' : 'poll', submitContext(rec), r);
  }
  const t = em.track;
  if (rec.restart_cnt > t.rc) {
    // requeued: Slurm resets submit_time to the requeue time; a new run begins
    const requeuedAt = rec.submit_time > t.sub ? rec.submit_time : 0;
    em.push('requeue', requeuedAt || now, requeuedAt ? 'scheduler' : 'poll', { restart_count: rec.restart_cnt, state: st, reason: rec.state_reason }, r);
    Object.assign(t, { rc: rec.restart_cnt, sub: rec.submit_time, phase: 'pending', held: '', elig: 0, start: 0, never: false, susp: 0 });
  }
  const final = isFinalState(st);
  const pendingLike = PENDING_STATES.has(st);
  const allocated = RUNNING_STATES.has(st) || st === 'SUSPENDED';
  // A final record shows a run only if it had nodes: a job cancelled while pending gets
  // start_time = end_time and no nodes.
  const ran = rec.start_time > 0 && (allocated || (final && rec.nodes !== ''));

  if (t.start === 0) {
    const held = pendingLike ? heldBy(rec) : '';
    const released = t.held !== '' && ((pendingLike && held === '') || ran);
    if (released) {
      em.push('release', now, 'poll', { priority: rec.priority }, r);
      t.held = '';
    }
    if (rec.eligible_time > 0 && rec.eligible_time !== t.elig && rec.eligible_time <= now && (pendingLike || ran)) {
      em.push('eligible', rec.eligible_time, 'scheduler', rec.state_reason && rec.state_reason !== 'None' ? { reason: rec.state_reason } : {}, r);
      t.elig = rec.eligible_time;
    }
    if (held !== '' && t.held === '') {
      em.push('hold', now, 'poll', { by: held, reason: rec.state_reason }, r);
      t.held = held;
    }
    const prioChanged = rec.priority !== t.prio || (rec.nice ?? 0) !== (t.nice ?? 0);
    if (opts.priorityEvents && pendingLike && !isNew && held === '' && !released && prioChanged) {
      em.push('priority', now, 'poll', { priority: rec.priority, nice: rec.nice }, r);
    }
    if (pendingLike && rec.state_reason === 'DependencyNeverSatisfied' && !t.never) {
      em.push('dependency_never_satisfied', now, 'poll', { dependency: rec.dependency, reason: rec.state_reason }, r);
      t.never = true;
    }
  }
  t.prio = rec.priority;
  t.nice = rec.nice;

  if (!final && !isNew) {
    const update: SlurmEventContext<'update'> = {};
    // null → a limit at start is Slurm filling in the partition's limit, not an update
    if (rec.time_limit !== null && rec.time_limit !== t.tl && (t.tl !== null || pendingLike)) update.time_limit_s = minutes(rec.time_limit);
    if (rec.partition && rec.partition !== t.part) update.partition = rec.partition;
    if (rec.name !== t.name) update.name = rec.name;
    if (Object.keys(update).length > 0) em.push('update', now, 'poll', update, r);
  }
  if (rec.time_limit !== null) t.tl = rec.time_limit;
  if (rec.partition) t.part = rec.partition;
  t.name = rec.name;

  if (ran && t.start === 0) {
    em.push('start', rec.start_time, 'scheduler', startContext(rec), r);
    t.start = rec.start_time;
    t.held = '';
    t.phase = 'running';
  }
  if (st === 'SUSPENDED' && t.phase === 'running') {
    em.push('suspend', rec.suspend_time || now, rec.suspend_time ? 'scheduler' : 'poll', {}, r);
    t.phase = 'suspended';
    t.susp = rec.suspend_time;
  } else if (RUNNING_STATES.has(st) && t.phase === 'suspended') {
    const at = rec.suspend_time > t.susp ? rec.suspend_time : 0;
    em.push('resume', at || now, at ? 'scheduler' : 'poll', {}, r);
    t.phase = 'running';
    t.susp = rec.suspend_time;
  }
  return final;
}

function submitContext(rec: SqueueJob): SlurmEventContext<'submit'> {
  return {
    name: rec.name,
    user: rec.user_name,
    uid: rec.user_id,
    account: rec.account,
    partition: rec.partition,
    qos: rec.qos,
    priority: rec.priority,
    nice: rec.nice,
    time_limit_s: minutes(rec.time_limit),
    ntasks: rec.tasks,
    ncpus: rec.cpus,
    nnodes: rec.node_count,
    ngpus: gpus(rec),
    dependency: rec.dependency,
    array_job_id: rec.array_job_id ? rec.array_job_id : null,
    array_task_id: rec.array_task_id,
    array_tasks: rec.array_task_string || null,
    state: rec.job_state,
    reason: rec.state_reason,
    source: 'squeue',
  };
}

function startContext(rec: SqueueJob): SlurmEventContext<'start'> {
  return {
    nodes: rec.nodes,
    nnodes: rec.node_count,
    ncpus: rec.cpus,
    ntasks: rec.tasks,
    ngpus: gpus(rec),
    partition: rec.partition,
    time_limit_s: minutes(rec.time_limit),
    source: 'squeue',
  };
}

/** The end from squeue's record (no accounting, or sacct did not catch up in time). */
function endFromSqueue(em: JobEmitter, rec: SqueueJob, raw: Record<string, unknown>, now: number): void {
  const ran = rec.start_time > 0 && rec.nodes !== '';
  const ws = rec.exit_code;
  const dec = ws === null ? undefined : decodeWaitStatus(ws);
  const der = rec.derived_exit_code === null ? undefined : decodeWaitStatus(rec.derived_exit_code);
  em.push(
    'end',
    rec.end_time || now,
    rec.end_time ? 'scheduler' : 'poll',
    {
      state: rec.job_state,
      reason: rec.state_reason,
      exit_code: dec?.exit_code ?? null,
      signal: dec?.signal ?? null,
      derived_exit_code: der?.exit_code ?? null,
      derived_signal: der?.signal ?? null,
      wait_status: ran ? ws : null,
      nodes: rec.nodes,
      nnodes: ran ? rec.node_count : null,
      ncpus: ran ? rec.cpus : null,
      time_limit_s: minutes(rec.time_limit),
      submit_time: rec.submit_time || null,
      eligible_time: rec.eligible_time || null,
      start_time: ran ? rec.start_time : null,
      end_time: rec.end_time || null,
      source: 'squeue',
    },
    { squeue: raw },
  );
}

const sacctInt = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
const sacctNodes = (s: string | undefined): string => (!s || s === 'None assigned' || s === '(null)' ? '' : s);
const sacctLines = (a: SacctJob): SacctLine[] => [a.job, ...a.steps];
/** The raw record of an accounting fact, under the name of where it came from. */
const accountingRaw = (a: SacctJob): Record<string, unknown> => (a.origin === 'jobcomp' ? { jobcomp: a.job } : { sacct: sacctLines(a) });

/**
 * Whether sacct's record of a final job is complete. slurmdbd assembles it from several messages:
 * a job that ran can show its final state and End while Eligible is still Unknown.
 */
export function sacctSettled(a: SacctJob, rec?: SqueueJob): boolean {
  const j = a.job;
  if (parseSacctTime(j.End) === null) return false;
  // it ran if squeue (when it still has the job) or accounting says it had nodes
  const ran = (rec !== undefined && rec.nodes !== '' && rec.start_time > 0) || sacctNodes(j.NodeList) !== '';
  return !ran || (sacctNodes(j.NodeList) !== '' && parseSacctTime(j.Start) !== null && parseSacctTime(j.Eligible) !== null);
}

/** sacct's record of a job the source never saw in squeue: its submit. */
function submitFromSacct(em: JobEmitter, a: SacctJob): void {
  const j = a.job;
  const submit = parseSacctTime(j.Submit);
  const arr = /^(\d+)_(\d+)$/.exec(j.JobID ?? '');
  const tl = parseSacctDuration(j.Timelimit);
  const track: JobTrack = {
    n: 0,
    sub: submit ?? 0,
    phase: 'pending',
    held: '',
    elig: 0,
    start: 0,
    prio: sacctInt(j.Priority),
    nice: null,
    tl: tl === null ? null : tl / 60,
    part: j.Partition ?? '',
    name: j.JobName ?? '',
    user: j.User ?? '',
    never: false,
    rc: 0,
    susp: 0,
  };
  em.adopt(track);
  em.push(
    'submit',
    submit ?? parseSacctTime(j.End) ?? 0,
    'scheduler',
    {
      name: j.JobName ?? '',
      user: j.User ?? '',
      uid: sacctInt(j.UID),
      account: j.Account ?? '',
      partition: j.Partition ?? '',
      qos: j.QOS ?? '',
      priority: sacctInt(j.Priority),
      nice: null,
      time_limit_s: tl,
      ntasks: null,
      ncpus: sacctInt(j.NCPUS ?? j.ReqCPUS),
      nnodes: sacctInt(j.NNodes),
      ngpus: tresCount(j.AllocTRES || j.ReqTRES || '', 'gres/gpu'),
      dependency: '',
      array_job_id: arr ? Number(arr[1]) : null,
      array_task_id: arr ? Number(arr[2]) : null,
      array_tasks: null,
      state: sacctStateWord(j.State),
      reason: j.Reason ?? '',
      source: a.origin ?? 'sacct',
    },
    accountingRaw(a),
  );
}

/**
 * The end from sacct's final record, after back-filling the eligible/start a poll missed. Exit
 * codes come from the TEXT ExitCode column ("3:0"): sacct's JSON reports 0 for non-zero exits in
 * 22.05.8. The raw wait status is squeue's `exit_code` when squeue still has the job, else the
 * .batch step's ExitCode.
 */
function endFromSacct(em: JobEmitter, a: SacctJob, rec: SqueueJob | undefined, raw: Record<string, unknown> | undefined, now: number): void {
  const t = em.track;
  const j = a.job;
  const r = raw ? { squeue: raw, ...accountingRaw(a) } : accountingRaw(a);
  const nodes = sacctNodes(j.NodeList);
  const times = {
    submit: parseSacctTime(j.Submit),
    eligible: parseSacctTime(j.Eligible),
    // a job cancelled before it ran sometimes has Start = End in accounting; no nodes tells
    start: j.NodeList === 'None assigned' ? null : parseSacctTime(j.Start),
    end: parseSacctTime(j.End),
  };
  const tl = parseSacctDuration(j.Timelimit);
  if (t.start === 0) {
    if (times.eligible !== null && t.elig === 0 && times.start !== null) {
      em.push('eligible', times.eligible, 'scheduler', {}, r);
      t.elig = times.eligible;
    }
    if (times.start !== null) {
      em.push(
        'start',
        times.start,
        'scheduler',
        {
          nodes,
          nnodes: sacctInt(j.NNodes),
          ncpus: sacctInt(j.NCPUS ?? j.AllocCPUS),
          ntasks: null,
          ngpus: tresCount(j.AllocTRES ?? '', 'gres/gpu'),
          partition: j.Partition ?? '',
          time_limit_s: tl,
          source: a.origin ?? 'sacct',
        },
        r,
      );
      t.start = times.start;
    }
  }
  const exit = parseSacctExitCode(j.ExitCode);
  // the highest step exit: slurmdbd can record it after the job's end, squeue knows it at once
  const squeueDerived = rec?.derived_exit_code ? decodeWaitStatus(rec.derived_exit_code) : undefined;
  const sacctDerived = parseSacctExitCode(j.DerivedExitCode);
  const derived = squeueDerived && (!sacctDerived || worse(squeueDerived, sacctDerived)) ? squeueDerived : sacctDerived;
  const batch = parseSacctExitCode(a.batch?.ExitCode);
  const ran = times.start !== null;
  const ws = !ran ? null : rec && isFinalState(rec.job_state) && rec.exit_code !== null ? rec.exit_code : batch ? (batch.exit_code << 8) | batch.signal : null;
  em.push(
    'end',
    times.end ?? now,
    times.end !== null ? 'scheduler' : 'poll',
    {
      state: sacctStateWord(j.State),
      reason: j.Reason ?? '',
      exit_code: exit?.exit_code ?? null,
      signal: exit?.signal ?? null,
      derived_exit_code: derived?.exit_code ?? null,
      derived_signal: derived?.signal ?? null,
      wait_status: ws,
      nodes,
      nnodes: ran ? sacctInt(j.NNodes) : null,
      ncpus: ran ? sacctInt(j.NCPUS ?? j.AllocCPUS) : null,
      time_limit_s: tl,
      submit_time: times.submit,
      eligible_time: times.eligible,
      start_time: times.start,
      end_time: times.end,
      source: a.origin ?? 'sacct',
    },
    r,
  );
}

const worse = (a: { exit_code: number; signal: number }, b: { exit_code: number; signal: number }) => a.signal > b.signal || (a.signal === b.signal && a.exit_code > b.exit_code);

function unknownEnd(t: JobTrack): SlurmEventContext<'end'> {
  return {
    state: 'UNKNOWN',
    reason: 'left squeue without a final state; accounting has no final record',
    exit_code: null,
    signal: null,
    derived_exit_code: null,
    derived_signal: null,
    wait_status: null,
    nodes: '',
    nnodes: null,
    ncpus: null,
    time_limit_s: minutes(t.tl),
    submit_time: t.sub || null,
    eligible_time: t.elig || null,
    start_time: t.start || null,
    end_time: null,
    source: 'none',
  };
}

/** A poll-timed event cannot be later than the Slurm-timed events after it (same job, same batch). */
function clampPollTimes(events: SourceEvent[]): void {
  const bound = new Map<string, number>();
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    const b = bound.get(e.job_id) ?? Infinity;
    if (e.ts_source === 'poll' && e.ts > b) e.ts = b;
    bound.set(e.job_id, Math.min(b, e.ts));
  }
}
