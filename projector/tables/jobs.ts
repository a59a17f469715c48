/**
 * The `jobs` read model: one row per job, the pure fold of that job's events (`evolveJob`).
 * The dispatch lives here (the row type in jobRow.ts); each scheduler's rules in their own file
 * (fluxJob.ts: flux-core's job-list, checked against real `flux jobs` output; slurmJob.ts).
 */
import type { Envelope } from '../../schemas/envelope/index.js';
import { evolveFluxJob } from './fluxJob.js';
import { evolveSlurmJob } from './slurmJob.js';

export { newJobRow, type JobRow, type JobStateName } from './jobRow.js';
import type { JobRow } from './jobRow.js';

/**
 * Applies one event to a job. Pure. Events whose seq is not above `last_seq` are ignored, so
 * folding a re-delivered or replayed range changes nothing. Returns undefined for an event that
 * cannot start a job (no prior state and not a submit): a journal only begins mid-job when data
 * was lost, and such a job stays out of `jobs` (its events still reach `job_events`).
 */
export function evolveJob(job: JobRow | undefined, event: Envelope): JobRow | undefined {
  if (job && event.seq <= job.last_seq) return job;
  return event.scheduler === 'flux' ? evolveFluxJob(job, event) : evolveSlurmJob(job, event);
}
