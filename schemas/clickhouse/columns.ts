/**
 * What each column of the read-model tables means, one line each, next to the DDL files
 * (NNN_*.sql) it documents. describe_schema and the `jobscribe://schema` resource serve it;
 * test/int/mcpSql.int.test.ts fails when a table's columns (DESCRIBE TABLE) and these entries
 * differ, so a DDL change must update this file too.
 */
import type { ReadModelTable } from './ddl.js';

export interface TableDoc {
  /** What one row is, and how to query the table. */
  description: string;
  columns: Record<string, string>;
}

const LOG_POSITION = {
  log_topic: 'event-log topic the record was read from (jobscribe.<cluster>.events)',
  log_partition: 'event-log partition of the record',
  log_offset: 'event-log offset of the record (a 64-bit integer, returned as a string)',
};

export const TABLE_DOCS: Record<ReadModelTable, TableDoc> = {
  jobs: {
    description:
      'One row per job: the fold of all its events. ReplacingMergeTree: query with FINAL (FROM jobs FINAL) for one current row per job; ' +
      'FINAL also hides jobs the scheduler invalidated (is_deleted = 1). Key: (cluster, job_id).',
    columns: {
      cluster: 'cluster name as jobscribe records it',
      scheduler: "'flux' or 'slurm'",
      job_id: 'scheduler job id (UInt64; Flux ids exceed 2^53, so they come back as strings)',
      user: 'scheduler user name that submitted the job',
      userid: 'numeric user id, when the scheduler reports one',
      queue: "queue (Flux) or partition (Slurm); '' when none",
      name: 'job name',
      ntasks: 'tasks requested',
      ncores: 'cores requested',
      ngpus: 'GPUs requested',
      nnodes: 'nodes requested or allocated',
      nodes: 'allocated node names (empty until the job starts)',
      state: 'unified state: pending | running | completed | failed | canceled | timeout',
      sched_state: "the scheduler's own state word (Flux: NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE; Slurm: PENDING, RUNNING, ...)",
      result: "the scheduler's own result word (COMPLETED, FAILED, CANCELED, TIMEOUT, ...), '' while active",
      success: 'true when the job completed successfully; null while active',
      exit_code: "exit status when the job's process exited (0-255); null when it did not: killed by a signal (see signal), or never ran (see exception_type)",
      signal: 'signal number that ended the job (e.g. 11), null when none; same rule for every scheduler',
      signal_name: "that signal's name (e.g. SIGSEGV), '' when none",
      oom: 'true when the scheduler says the job ran out of memory (Slurm OUT_OF_MEMORY, sacct 0:125; a Flux oom exception)',
      waitstatus: 'raw wait status of the job (Flux finish status; Slurm batch script), null when none',
      exception_type: "type of the job's fatal exception (e.g. cancel, timeout, alloc), '' when none",
      exception_severity: 'severity of that exception (0 is fatal), null when none',
      exception_note: "the exception's note, '' when none",
      urgency: 'Flux urgency (0 = held, 16 = default, 31 = expedite); null for Slurm, which has none (see priority, nice, held)',
      nice: 'Slurm nice value (default 0; lower runs sooner); null for Flux',
      priority: 'scheduler priority, null until assigned',
      held: 'true while the job is held (urgency 0 or a Slurm hold)',
      dependencies: 'dependency expressions (e.g. afterok:1234)',
      time_limit_s: 'time limit in seconds, null when none',
      t_submit: 'submit time (UTC, microseconds)',
      t_eligible: 'first time the job was eligible to run (released and schedulable: a hold does not count), null before',
      t_start: 'start time, null until it starts',
      t_end: 'end time (finish or cancel), null while active',
      t_inactive: 'time the job became inactive (cleaned up), null while active',
      wait_s: 'queue wait in seconds: t_start - t_submit; null until it starts',
      run_s: 'run time in seconds: t_end - t_start; null until it ends after starting',
      last_seq: 'sequence number of the newest event folded in (the row version)',
      last_event: 'name of the newest event folded in',
      last_event_ts: 'time of that event',
      is_deleted: '1 when the scheduler invalidated the job at submit (hidden by FINAL)',
    },
  },
  job_events: {
    description:
      'One row per job event, in per-job order (seq), with its place in the event log. ReplacingMergeTree: use FINAL to drop ' +
      'republished copies. Key: (cluster, job_id, seq). Join to jobs on (cluster, job_id).',
    columns: {
      cluster: 'cluster name',
      scheduler: "'flux' or 'slurm'",
      job_id: 'scheduler job id (returned as a string)',
      seq: "the event's position in its job's history, from 0",
      name: 'event name (Flux RFC 21: submit, validate, depend, priority, alloc, start, finish, release, free, clean, exception, urgency, ...; Slurm: submit, start, end, ...)',
      ts: 'event time (UTC, microseconds)',
      ts_source: "'scheduler' (time from the scheduler) or 'poll' (time the poller saw it)",
      context: 'event context as a JSON object text (JSONExtract* functions read it)',
      raw: 'the event as the scheduler sent it, JSON text',
      user: 'user of the job',
      scribe_id: 'id of the scribe that recorded the event',
      published_at: 'time the scribe published the event to the log',
      ...LOG_POSITION,
    },
  },
  dead_letters: {
    description:
      'Event-log records the projector could not accept, with the reason; never dropped silently. Key: (log_topic, log_partition, log_offset).',
    columns: {
      ...LOG_POSITION,
      log_ts: 'time the record was appended to the log',
      key: 'record key (cluster:job_id)',
      reason: 'why the projector refused the record',
      payload: 'the record value as received',
    },
  },
  actions: {
    description:
      'One row per command an agent asked for (cancel, hold, ...): who asked, who approved, what the scheduler did. ReplacingMergeTree: ' +
      'query with FINAL. Key: (cluster, command_id).',
    columns: {
      cluster: 'cluster the command targets',
      command_id: 'unique id of the command',
      action: 'what was asked (e.g. cancel, hold, release, urgency)',
      job_ids: 'job ids the command targets (a submit: the new job once accepted)',
      args: 'action arguments, JSON text',
      requested_by: 'identity (token name or JWT subject) that asked',
      requested_user: 'scheduler user of that identity',
      requested_roles: 'roles of that identity',
      on_behalf_of: "user the action was taken for, '' when the requester's own",
      issued_at: 'time the command was issued',
      expires_at: 'time after which the scribe will not execute it',
      approval_required: 'true when a second identity had to approve (bulk actions)',
      approved_by: "approver identity, '' when none",
      approved_at: 'approval time, null when none',
      rejected_by: "identity that rejected it, '' when none",
      status: 'requested | awaiting_approval | accepted | rejected | failed | refused (by the MCP service, nothing sent)',
      reason: "why it was rejected or failed, '' otherwise",
      results: "per-job results from the scheduler, JSON text",
      result_at: 'time of the final result, null before',
      scribe_id: 'scribe that executed it',
      version: 'row version: grows with each record folded in',
    },
  },
};
