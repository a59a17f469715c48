/**
 * `job_timeline`: the job's events from `job_events` in seq order with the gap to the previous
 * one, and the time spent in each phase from the job's `jobs` row (times every scheduler fills).
 * Only for a job the caller may read: findJob.ts scopes the lookup before any event is read.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  JobTimelineInputSchema,
  JobTimelineOutputSchema,
  type JobTimelineOutput,
  type PhaseDurations,
  type TimelineEvent,
} from '../../schemas/tools/jobTimeline.js';
import { findJob } from '../findJob.js';
import { runTool, toolResult } from '../results.js';
import { f58For, isoFromMicros, microsNow, secondsBetween, type JobDetailRow } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

interface EventRow {
  seq: number;
  name: string;
  ts_us: string;
  ts_source: string;
  context: string;
}

export function registerJobTimeline(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'job_timeline',
    {
      title: 'Job timeline',
      description:
        "One job's events in order (name, time, seconds since the previous event, scheduler context: only what is new), the seconds it " +
        'spent pending, eligible-waiting, running and cleaning up, and a one-line summary. Use it to explain why a ' +
        'job waited, failed or ran long.',
      inputSchema: JobTimelineInputSchema,
      outputSchema: JobTimelineOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'job_timeline', async () => {
        const signal = ctx.mcpReq.signal;
        const job = await findJob(deps, args, signal);
        const asof = microsNow(deps.now());
        const rows = await selectRows<EventRow>(
          deps,
          `SELECT seq, name, toString(toUnixTimestamp64Micro(ts)) AS ts_us, ts_source, context
           FROM {db:Identifier}.job_events FINAL
           WHERE cluster = {cluster:String} AND job_id = {job_id:UInt64}
           ORDER BY seq
           LIMIT {max_rows:UInt32}`,
          { cluster: job.cluster, job_id: job.job_id_s, max_rows: deps.limits.maxRows + 1 },
          signal,
        );
        const shown = rows.slice(0, deps.limits.maxRows);
        const contexts = freshContexts(shown.map((e) => parseContext(e.context)));
        const events = shown.map((e, i): TimelineEvent => {
          const prev = shown[i - 1];
          return {
            seq: e.seq,
            name: e.name,
            time: isoFromMicros(e.ts_us),
            time_source: e.ts_source === 'poll' ? 'poll' : 'scheduler',
            since_prev_s: prev ? secondsBetween(prev.ts_us, e.ts_us) : null,
            context: contexts[i]!,
          };
        });
        const durations = phaseDurations(job, asof);
        const out: JobTimelineOutput = {
          cluster: job.cluster,
          job_id: job.job_id_s,
          ...f58For(job.scheduler, job.job_id_s),
          state: job.state,
          summary: summarize(job, durations, rows.length > shown.length ? `${shown.length}+` : String(shown.length)),
          durations,
          events,
          truncated: rows.length > shown.length,
          as_of: isoFromMicros(asof),
        };
        return toolResult(out);
      }),
  );
}

/**
 * Each event's context without what an earlier event already said: a key whose value equals the
 * one last shown for it is left out (a Slurm job's events repeat its whole description).
 */
export function freshContexts(contexts: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  const shown = new Map<string, string>();
  return contexts.map((c) => {
    const fresh: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c)) {
      const text = JSON.stringify(v);
      if (shown.get(k) === text) continue;
      shown.set(k, text);
      fresh[k] = v;
    }
    return fresh;
  });
}

function parseContext(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { text };
  }
}

function isActive(job: JobDetailRow): boolean {
  return job.state === 'pending' || job.state === 'running';
}

/** Seconds per phase; an active job's current phase runs to `asof`. */
export function phaseDurations(job: JobDetailRow, asof: number): PhaseDurations {
  const submit = job.t_submit_us;
  const { t_eligible_us: eligible, t_start_us: start, t_end_us: end, t_inactive_us: inactive } = job;
  const stop = isActive(job) ? String(asof) : (inactive ?? end ?? job.last_event_ts_us);
  const pendingEnd = start ?? end ?? stop;
  const cleanupEnd = inactive ?? (isActive(job) ? String(asof) : null);
  return {
    pending_s: secondsBetween(submit, pendingEnd),
    eligible_wait_s: eligible === null ? null : secondsBetween(eligible, pendingEnd),
    run_s: start === null ? null : secondsBetween(start, end ?? stop),
    cleanup_s: end === null || cleanupEnd === null ? null : secondsBetween(end, cleanupEnd),
    total_s: secondsBetween(submit, inactive ?? stop),
  };
}

/** 12.3s, 5m 02s, 1h 02m 03s, 2d 03h 04m. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds * 10) / 10}s`;
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(sec)}s`;
  return `${m}m ${pad(sec)}s`;
}

/** The one-line summary job_timeline opens with (pure). */
export function summarize(job: JobDetailRow, d: PhaseDurations, eventCount: string): string {
  const f58 = f58For(job.scheduler, job.job_id_s).job_id_f58;
  const label = f58 ? `job ${f58} (${job.job_id_s})` : `job ${job.job_id_s}`;
  // the one exit rule (projector/tables/exit.ts): an exit status, or the signal that killed it
  const ended = job.exit_code !== null ? `, exit ${job.exit_code}` : job.signal_name ? `, killed by ${job.signal_name}` : '';
  const exit = `${ended}${job.oom ? ', out of memory' : ''}`;
  const exception = job.exception_type ? ` (exception: ${job.exception_type}${job.exception_note ? ` "${job.exception_note}"` : ''})` : '';
  const state =
    job.state === 'timeout'
      ? `timed out${exit}`
      : job.state === 'pending' && job.held
        ? 'pending, held'
        : `${job.state}${job.state === 'running' || job.state === 'pending' ? '' : exit}${exception}`;
  const phases: string[] = [];
  if (d.pending_s !== null) {
    const eligible = d.eligible_wait_s !== null && d.eligible_wait_s !== d.pending_s ? ` (eligible ${formatDuration(d.eligible_wait_s)})` : '';
    phases.push(`${job.state === 'pending' ? 'pending for' : 'waited'} ${formatDuration(d.pending_s)}${eligible}`);
  }
  if (d.run_s !== null) phases.push(job.state === 'running' ? `running for ${formatDuration(d.run_s)}` : `ran ${formatDuration(d.run_s)}`);
  if (d.cleanup_s !== null) phases.push(`cleanup ${formatDuration(d.cleanup_s)}`);
  return `${label} on ${job.cluster} (${job.user || 'unknown user'}, ${job.queue || 'default queue'}): ${state}; ${phases.join(', ')}; ${eventCount} events`;
}
