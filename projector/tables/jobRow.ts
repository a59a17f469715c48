/**
 * One `jobs` row as the folds build it (schemas/clickhouse/003_jobs.sql and later), and the row a
 * job's first event starts from. Shared by the dispatch (jobs.ts) and each scheduler's fold
 * (fluxJob.ts, slurmJob.ts), which import it from here rather than from each other.
 */
import type { Envelope } from '../../schemas/envelope/index.js';

/** Unified state vocabulary for every scheduler. */
export type JobStateName = 'pending' | 'running' | 'completed' | 'failed' | 'canceled' | 'timeout';

/** One `jobs` row (schemas/clickhouse/003_jobs.sql); times are seconds since the epoch. */
export interface JobRow {
  cluster: string;
  scheduler: 'flux' | 'slurm';
  job_id: string;
  user: string;
  userid: number | null;
  queue: string;
  name: string;
  ntasks: number;
  ncores: number;
  ngpus: number;
  nnodes: number;
  nodes: string[];
  state: JobStateName;
  /** The scheduler's own state word (Flux: NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE). */
  sched_state: string;
  /** The scheduler's own result word (Flux: COMPLETED, FAILED, CANCELED, TIMEOUT), '' while active. */
  result: string;
  success: boolean | null;
  /** The exit status when the job's process exited, null when it did not (exit.ts: one rule for every scheduler). */
  exit_code: number | null;
  /** The signal that ended it, null when none; signal_name its Linux name (SIGSEGV), '' when none. */
  signal: number | null;
  signal_name: string;
  /** The scheduler says the job ran out of memory. */
  oom: boolean;
  waitstatus: number | null;
  exception_type: string;
  exception_severity: number | null;
  exception_note: string;
  /** Flux urgency (0 held .. 31); null for schedulers without one (Slurm). */
  urgency: number | null;
  /** Slurm's nice value; null for schedulers without one (Flux). */
  nice: number | null;
  priority: number | null;
  held: boolean;
  dependencies: string[];
  time_limit_s: number | null;
  t_submit: number;
  t_eligible: number | null;
  t_start: number | null;
  t_end: number | null;
  t_inactive: number | null;
  wait_s: number | null;
  run_s: number | null;
  last_seq: number;
  last_event: string;
  last_event_ts: number;
  is_deleted: 0 | 1;
}

/** A job's row as its first event (a submit) starts it; each scheduler fills in the rest. */
export function newJobRow(e: Envelope, fields: Partial<JobRow> & Pick<JobRow, 'sched_state'>): JobRow {
  return {
    cluster: e.cluster,
    scheduler: e.scheduler,
    job_id: e.job_id,
    user: e.user ?? '',
    userid: null,
    queue: '',
    name: '',
    ntasks: 0,
    ncores: 0,
    ngpus: 0,
    nnodes: 0,
    nodes: [],
    state: 'pending',
    result: '',
    success: null,
    exit_code: null,
    signal: null,
    signal_name: '',
    oom: false,
    waitstatus: null,
    exception_type: '',
    exception_severity: null,
    exception_note: '',
    urgency: null,
    nice: null,
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
    ...fields,
  };
}
