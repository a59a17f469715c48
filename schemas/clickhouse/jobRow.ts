/**
 * The `jobs` read-model row as TypeScript sees it (schemas/clickhouse/003_jobs.sql and the DDL
 * files after it): written by the projector's folds, read by the MCP tools. A contract, so it
 * lives with the DDL; the fold that builds it is projector/tables/.
 */

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
