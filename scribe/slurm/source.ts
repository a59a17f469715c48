/**
 * Slurm as a SchedulerSource ('slurm'). Slurm 22.05 has no job event stream: every
 * `pollIntervalMs` the source reads `squeue --json` (and sacct, see poller.ts), diffs it against
 * what it knew (diff.ts) and emits the events of what changed, with their checkpoint.
 *
 * Write-ahead. A batch is emitted in two steps: first no events with a checkpoint holding the
 * next state AND the batch (`pending`), then the batch with the plain next state. The scribe
 * saves each checkpoint only after `emit` resolves, so if it dies between publishing a batch and
 * saving the state after it, the restart finds that batch in the checkpoint and re-emits it as it
 * was (same seqs, same content: the copies collapse on (cluster, job_id, seq)) instead of
 * re-deriving it from a newer snapshot, where a hold seen once could have vanished and its seq
 * been given to another event. Nothing is emitted twice with different content; nothing is lost.
 *
 * The loop keeps going through Slurm trouble (slurmctld down, a timeout): it logs and polls
 * again. It stops when `signal` aborts, or rejects when `emit` rejects or a CLI is missing.
 * `act` runs actions (actions.ts), or through slurmrestd with the `rest` option (rest.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActionResult, OwnerResult, SchedulerSource, SourceEvent, SourceRunOptions } from '../source.js';
import { executeSlurmAction, processUser, slurmJobOwner, slurmOwnersOf, type ScribeUser, type SlurmActionRequest } from './actions.js';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.js';
import { runQuery, spawnRunner, type CommandRunner } from './cliRunner.js';
import { DEFAULT_DIFF_OPTIONS, emptyTrackerState, type TrackerState } from './diff.js';
import { JobcompTail } from './jobcomp.js';
import { SlurmPoller } from './poller.js';
import { createSlurmRest, type SlurmRest, type SlurmRestOptions } from './rest.js';

export interface SlurmSourceOptions {
  /** Runs the CLIs; default: spawn them with `env` added to the environment. */
  run?: CommandRunner;
  /**
   * Read the job list and run actions through slurmrestd instead of squeue / scancel / scontrol /
   * sbatch (sacct stays a CLI). A client or its options.
   */
  rest?: SlurmRest | SlurmRestOptions;
  /** Environment for the default runner, e.g. { SLURM_CONF: '/etc/slurm/slurm.conf' }. */
  env?: Record<string, string | undefined>;
  /** Between two polls (default 5000 ms). */
  pollIntervalMs?: number;
  /** Between two sacct discovery windows (default 60 s). */
  sacctIntervalS?: number;
  /** Use sacct: 'auto' (default) unless it says accounting is disabled. */
  accounting?: 'auto' | boolean;
  /** A job completion log (JobCompType=jobcomp/filetxt, JobCompLoc) to read ends from when sacct has none. */
  jobcompFile?: string;
  /** First start without a checkpoint: back-fill jobs that ended this many seconds before (default 0). */
  backfillS?: number;
  /** Each discovery window reaches back this far before the previous one ended (default 120 s). */
  overlapS?: number;
  /** How long an end seen in squeue waits for sacct's record before squeue's is used (default 60 s). */
  endGraceS?: number;
  /** How long a job may be missing from squeue with no final sacct record before it ends as UNKNOWN (default 60 s). */
  vanishGraceS?: number;
  /** Emit `priority` events (default true; noisy with priority/multifactor). */
  priorityEvents?: boolean;
  squeueTimeoutMs?: number;
  sacctTimeoutMs?: number;
  actionTimeoutMs?: number;
  submitTimeoutMs?: number;
  /** Who the scribe process is (default: this process; see slurmRunAs in actions.ts). */
  scribeUser?: ScribeUser;
  /** Default working directory of submitted jobs. */
  submitDir?: string;
  /** The clock, in seconds (tests). */
  now?: () => number;
  log?: (message: string) => void;
  /** Called after each poll (metrics, tests). */
  onPoll?: (info: { events: number; ms: number; error?: Error }) => void;
}

export interface SlurmSource extends SchedulerSource {
  readonly scheduler: 'slurm';
  act(request: SlurmActionRequest): Promise<ActionResult>;
}

export function createSlurmSource(options: SlurmSourceOptions = {}): SlurmSource {
  const run = options.run ?? spawnRunner({ env: options.env });
  const log = options.log ?? ((m: string) => process.stderr.write(`jobscribe: ${m}\n`));
  const now = options.now ?? (() => Date.now() / 1000);
  const scribeUser = options.scribeUser ?? processUser();
  const rest = options.rest === undefined ? undefined : 'act' in options.rest ? options.rest : createSlurmRest(options.rest);
  const pollIntervalMs = options.pollIntervalMs ?? 5000;
  if (!(pollIntervalMs > 0)) throw new RangeError('pollIntervalMs must be > 0');
  // Owners of a set of jobs from one listing (slurmrestd has no per-job owner query, and N squeue
  // calls cost N round trips to slurmctld).
  const owners = async (jobIds: readonly string[]): Promise<Map<string, OwnerResult>> => {
    try {
      const listing = rest ? await rest.jobsJson() : await runQuery(run, ['squeue', '--json', '--all'], { timeoutMs: options.squeueTimeoutMs ?? 30_000 });
      return slurmOwnersOf(listing, jobIds);
    } catch (err) {
      const failed: OwnerResult = { ok: false, code: 'failed', message: (err as Error).message };
      return new Map(jobIds.map((id) => [id, failed]));
    }
  };
  const diff = {
    endGraceS: options.endGraceS ?? DEFAULT_DIFF_OPTIONS.endGraceS,
    vanishGraceS: options.vanishGraceS ?? DEFAULT_DIFF_OPTIONS.vanishGraceS,
    priorityEvents: options.priorityEvents ?? DEFAULT_DIFF_OPTIONS.priorityEvents,
    overlapS: options.overlapS ?? DEFAULT_DIFF_OPTIONS.overlapS,
  };

  return {
    scheduler: 'slurm',

    async run({ checkpoint, signal, emit }: SourceRunOptions): Promise<void> {
      let state: TrackerState = emptyTrackerState();
      if (checkpoint) {
        const cp = decodeCheckpoint(checkpoint);
        state = cp.state;
        // a batch that may not have reached the log: publish it again, exactly as it was
        if (cp.pending.length > 0) await emit(cp.pending, encodeCheckpoint(state));
      }
      const poller = new SlurmPoller({
        run,
        jobsJson: rest?.jobsJson,
        accounting: options.accounting ?? 'auto',
        sacctIntervalS: options.sacctIntervalS ?? 60,
        backfillS: options.backfillS ?? 0,
        diff,
        squeueTimeoutMs: options.squeueTimeoutMs ?? 30_000,
        sacctTimeoutMs: options.sacctTimeoutMs ?? 60_000,
        ...(options.jobcompFile !== undefined && { jobcomp: new JobcompTail(options.jobcompFile) }),
        log,
      });
      let savedKey = stateKey(state);
      let lastError = '';
      while (!signal.aborted) {
        const started = performance.now();
        let polled: { events: SourceEvent[]; state: TrackerState } | undefined;
        try {
          polled = await poller.poll(state, now(), signal);
          lastError = '';
        } catch (err) {
          if (signal.aborted) break;
          const e = err as Error & { retriable?: boolean };
          if (e.retriable !== true) throw err; // a missing CLI, a bug: end the run
          if (e.message !== lastError) log(`slurm poll failed (will retry): ${e.message}`);
          lastError = e.message;
          options.onPoll?.({ events: 0, ms: performance.now() - started, error: e });
        }
        if (polled) {
          // emit errors end the run: the scribe already retried, and the state must not move on
          const { events, state: next } = polled;
          const key = stateKey(next);
          if (events.length > 0) {
            await emit([], encodeCheckpoint(next, events));
            await emit(events, encodeCheckpoint(next));
          } else if (key !== savedKey) {
            await emit([], encodeCheckpoint(next));
          }
          savedKey = key;
          state = next;
          options.onPoll?.({ events: events.length, ms: performance.now() - started });
        }
        const idle = pollIntervalMs - (performance.now() - started);
        if (idle > 0) await sleep(idle, undefined, { signal }).catch(() => undefined); // an abort ends the wait
      }
    },

    act(request: SlurmActionRequest): Promise<ActionResult> {
      if (rest) return rest.act(request);
      return executeSlurmAction(request, {
        run,
        timeoutMs: options.actionTimeoutMs ?? 30_000,
        submitTimeoutMs: options.submitTimeoutMs ?? 60_000,
        scribeUser,
        submitDir: options.submitDir,
      });
    },

    async owner(jobId) {
      if (!rest) return slurmJobOwner(jobId, { run, timeoutMs: options.squeueTimeoutMs ?? 30_000 });
      return (await owners([jobId])).get(jobId)!;
    },

    owners,
  };
}

/** The state without the poll time: an idle poll that changes nothing else writes no checkpoint. */
function stateKey(state: TrackerState): string {
  return encodeCheckpoint({ ...state, polled_at: null });
}
