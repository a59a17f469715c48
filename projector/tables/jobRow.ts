/**
 * The row a job's first event starts from, shared by the dispatch (jobs.ts) and each scheduler's
 * fold (fluxJob.ts, slurmJob.ts), which import it from here rather than from each other. The row
 * type itself is a contract: schemas/clickhouse/jobRow.ts.
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import type { JobRow } from '../../schemas/clickhouse/jobRow.js';

export type { JobRow, JobStateName } from '../../schemas/clickhouse/jobRow.js';

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
