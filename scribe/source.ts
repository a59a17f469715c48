/**
 * The narrow interface between a scribe and its scheduler. A source streams the scheduler's job
 * events (already in the scheduler's own vocabulary, with a stable per-job `seq`) and, when it
 * can, executes actions. The scribe wraps events into envelopes and publishes them; it saves the
 * source's opaque checkpoint only after the log accepted the events, so a restart resumes from
 * there (re-emitting at most the last batch, whose events keep their identity and collapse).
 */
import type { JobId, Scheduler } from '../schemas/ids.js';

export interface SourceEvent {
  job_id: JobId;
  /** Position in the job's history; the same event always gets the same seq. */
  seq: number;
  name: string;
  /** Seconds since the epoch. */
  ts: number;
  ts_source?: 'scheduler' | 'poll';
  context: Record<string, unknown>;
  /** Scheduler user name, when known. */
  user?: string;
  /** The scheduler's own record of this event, kept verbatim in the envelope. */
  raw: unknown;
}

export interface SourceRunOptions {
  /** Where to resume: the last checkpoint passed to `emit` that was saved, if any. */
  checkpoint?: string;
  signal: AbortSignal;
  /** Publishes events durably; when it resolves the scribe saves `checkpoint`. */
  emit(events: SourceEvent[], checkpoint: string): Promise<void>;
}

export type ActionName = 'cancel' | 'hold' | 'release' | 'urgency' | 'signal' | 'submit';

export interface ActionRequest {
  action: ActionName;
  job_id?: JobId;
  /** urgency: { urgency }, signal: { signum }, cancel: { note? }, submit: scheduler-specific. */
  args?: Record<string, unknown>;
  /** Scheduler user on whose behalf the action runs. */
  user?: string;
}

export type ActionResult =
  | { ok: true; job_id?: JobId; detail?: Record<string, unknown> }
  | { ok: false; code: 'no_such_job' | 'not_permitted' | 'invalid' | 'unsupported' | 'failed'; message: string };

/** Who owns a job, as the scheduler says (the scribe re-checks ownership with it before acting). */
export type OwnerResult =
  | { ok: true; user: string }
  | { ok: false; code: 'no_such_job' | 'unsupported' | 'failed'; message: string };

export interface SchedulerSource {
  readonly scheduler: Scheduler;
  /** Streams events until `signal` aborts (or the source ends); rejects on unrecoverable errors. */
  run(opts: SourceRunOptions): Promise<void>;
  /** Executes an action against the scheduler. */
  act?(request: ActionRequest): Promise<ActionResult>;
  /** The scheduler user owning a job, asked of the scheduler itself. */
  owner?(jobId: JobId): Promise<OwnerResult>;
  /** Owners of many jobs (a bulk action) in one question to the scheduler, where owner() per job would cost a listing each. */
  owners?(jobIds: readonly JobId[]): Promise<Map<JobId, OwnerResult>>;
  /** Releases connections the source holds (called once the scribe stops). */
  close?(): Promise<void> | void;
}
