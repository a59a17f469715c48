/**
 * One poll of a Slurm cluster: runs `squeue --json`, then `sacct` for the jobs whose end it must
 * read (and, every `sacctIntervalS`, for every job that ended since the last window), and hands
 * the outputs to the pure diff (diff.ts). The only part of the poller that runs commands.
 *
 * Without accounting (no slurmdbd, or sacct failing), a configured job completion log stands in
 * for sacct (jobcomp.ts).
 *
 * Invocations (TZ=UTC for sacct, so its times parse as UTC):
 *   squeue --json --all
 *   sacct --parsable2 --allusers --format=<SACCT_FIELDS> --jobs=<id,...>           (up to 200 ids)
 *   sacct --parsable2 --allusers --format=<SACCT_FIELDS> --state=CA,CD,F,NF,OOM,TO,PR,BF,DL
 *         --starttime=<since> --endtime=<until>     (with --state: jobs whose end lies in the window)
 */
import { SACCT_FINAL_STATE_CODES } from '../../schemas/slurm/events.js';
import { parseSacctParsable, parseSqueueJson, type SacctJob } from '../../schemas/slurm/squeue.js';
import { runQuery, SlurmError, type CommandRunner } from './cliRunner.js';
import { applyPoll, jobsNeedingAccounting, type DiffOptions, type PollInput, type TrackerState } from './diff.js';
import type { SourceEvent } from '../source.js';
import type { JobcompTail } from './jobcomp.js';

export const SACCT_FIELDS = [
  'JobIDRaw',
  'JobID',
  'State',
  'ExitCode',
  'DerivedExitCode',
  'Reason',
  'Submit',
  'Eligible',
  'Start',
  'End',
  'Timelimit',
  'NodeList',
  'NNodes',
  'NCPUS',
  'AllocTRES',
  'Partition',
  'Account',
  'QOS',
  'User',
  'UID',
  'Priority',
  'JobName', // last: a name containing "|" is joined back by the parser
] as const;

const SQUEUE_ARGV = ['squeue', '--json', '--all'] as const;
const SACCT_BASE = ['sacct', '--parsable2', '--allusers', `--format=${SACCT_FIELDS.join(',')}`] as const;
const SACCT_ENV = { TZ: 'UTC' };
const LOOKUP_CHUNK = 200;

/** sacct's time argument, in UTC (sacct runs with TZ=UTC). */
export function sacctTimeArg(seconds: number): string {
  return new Date(Math.floor(seconds) * 1000).toISOString().slice(0, 19);
}

export function sacctLookupArgv(ids: readonly string[]): string[] {
  return [...SACCT_BASE, `--jobs=${ids.join(',')}`];
}

export function sacctWindowArgv(since: number, until: number): string[] {
  return [...SACCT_BASE, `--state=${SACCT_FINAL_STATE_CODES}`, `--starttime=${sacctTimeArg(since)}`, `--endtime=${sacctTimeArg(until)}`];
}

export interface SlurmPollerOptions {
  run: CommandRunner;
  /** Reads the job list some other way (slurmrestd GET /jobs); default `squeue --json --all`. */
  jobsJson?: (signal?: AbortSignal) => Promise<string>;
  /** 'auto': use sacct unless it says accounting is disabled. */
  accounting: 'auto' | boolean;
  /** Seconds between sacct discovery windows. */
  sacctIntervalS: number;
  /** On a first start (no checkpoint), how far back the first discovery window reaches (s). */
  backfillS: number;
  diff: DiffOptions;
  squeueTimeoutMs: number;
  sacctTimeoutMs: number;
  /** The job completion log, read for ends whenever sacct has none to give (no slurmdbd, or sacct failing). */
  jobcomp?: JobcompTail;
  log(message: string): void;
}

const ACCOUNTING_OFF = /accounting storage is disabled|accounting_storage\/none|not configured with slurmdbd/i;

export class SlurmPoller {
  private accounting: 'unknown' | 'on' | 'off';
  private lastDiscovery = -Infinity;
  private lastSacctError = '';
  private lastJobcompError = '';

  constructor(private readonly opts: SlurmPollerOptions) {
    this.accounting = opts.accounting === false ? 'off' : 'unknown';
  }

  async poll(state: TrackerState, now: number, signal?: AbortSignal): Promise<{ events: SourceEvent[]; state: TrackerState }> {
    const { run } = this.opts;
    const text = this.opts.jobsJson ? await this.opts.jobsJson(signal) : await runQuery(run, SQUEUE_ARGV, { timeoutMs: this.opts.squeueTimeoutMs, signal });
    let squeue;
    try {
      squeue = parseSqueueJson(text);
    } catch (err) {
      throw new SlurmError(`squeue --json printed something unreadable: ${(err as Error).message}`, { code: 'slurm_output', cause: err });
    }
    const input: PollInput = { now, squeue, accounting: this.accounting === 'off' ? 'off' : 'on', lookups: new Map() };
    if (input.accounting === 'on') {
      try {
        const lookups = new Map<string, SacctJob>();
        const ids = jobsNeedingAccounting(state, squeue);
        for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
          const chunk = ids.slice(i, i + LOOKUP_CHUNK);
          for (const [id, job] of await this.sacct(sacctLookupArgv(chunk), signal)) if (chunk.includes(id)) lookups.set(id, job);
        }
        input.lookups = lookups;
        if (now - this.lastDiscovery >= this.opts.sacctIntervalS) {
          const since = state.sacct_until !== null ? state.sacct_until - this.opts.diff.overlapS : now - this.opts.backfillS;
          input.discovery = { until: now, jobs: since < now ? await this.sacct(sacctWindowArgv(since, now), signal) : new Map() };
          this.lastDiscovery = now;
        }
        this.lastSacctError = '';
      } catch (err) {
        if (signal?.aborted) throw err;
        const msg = (err as Error).message;
        if (this.opts.accounting === 'auto' && this.accounting !== 'on' && ACCOUNTING_OFF.test(msg)) {
          this.accounting = 'off';
          this.opts.log(`slurm: accounting is disabled (${msg}); ends come from squeue alone`);
          input.accounting = 'off';
        } else {
          if (msg !== this.lastSacctError) this.opts.log(`slurm: sacct failed, ends wait for it: ${msg}`);
          this.lastSacctError = msg;
          input.accounting = 'failed';
        }
        input.lookups = new Map();
        delete input.discovery;
      }
    }
    if (input.accounting !== 'on' && this.opts.jobcomp) this.fromJobcomp(this.opts.jobcomp, input, state, now);
    return applyPoll(state, input, this.opts.diff);
  }

  /** What sacct would have answered, from the job completion log. */
  private fromJobcomp(jobcomp: JobcompTail, input: PollInput, state: TrackerState, now: number): void {
    try {
      jobcomp.refresh(now);
    } catch (err) {
      const msg = `cannot read the job completion log ${jobcomp.path}: ${(err as Error).message}`;
      if (msg !== this.lastJobcompError) this.opts.log(`slurm: ${msg}`);
      this.lastJobcompError = msg;
      return;
    }
    this.lastJobcompError = '';
    input.accounting = 'on';
    input.lookups = jobcomp.lookup(jobsNeedingAccounting(state, input.squeue));
    if (now - this.lastDiscovery >= this.opts.sacctIntervalS) {
      const since = state.sacct_until !== null ? state.sacct_until - this.opts.diff.overlapS : now - this.opts.backfillS;
      input.discovery = { until: now, jobs: jobcomp.endedBetween(since, now) };
      this.lastDiscovery = now;
    }
  }

  private async sacct(argv: string[], signal?: AbortSignal): Promise<Map<string, SacctJob>> {
    const text = await runQuery(this.opts.run, argv, { timeoutMs: this.opts.sacctTimeoutMs, signal, env: SACCT_ENV });
    this.accounting = 'on';
    return parseSacctParsable(text);
  }
}
