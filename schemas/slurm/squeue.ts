/**
 * The outside shapes the Slurm poller reads, as Slurm 22.05 prints them (real captures in
 * test/fixtures/slurm): one job of `squeue --json` (openapi/v0.0.38) and the text of
 * `sacct --parsable2`. Only the fields jobscribe uses are named; the record itself is kept
 * verbatim as an event's `raw`.
 *
 * Numbers are read leniently: 22.05 prints plain numbers (0 for "not set", null for "none"),
 * 23.02+ prints `{set, infinite, number}` objects; both come out as `number | null`.
 *
 * Not here: polling, diffing (scribe/slurm), the sacct JSON (its `exit_code` is wrong in 22.05.8:
 * `{"status":"SUCCESS","return_code":0}` for non-zero exits, so exit codes are read from the text
 * output's `ExitCode` "exit:signal" column instead).
 */
import { z } from 'zod';

/** A 22.05 number, or a 23.02+ `{set, infinite, number}`: the value, or null when unset/infinite. */
export function slurmNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'object' && v !== null && 'number' in v) {
    const o = v as { set?: unknown; infinite?: unknown; number?: unknown };
    if (o.set === false || o.infinite === true) return null;
    return typeof o.number === 'number' && Number.isFinite(o.number) ? o.number : null;
  }
  return null;
}

const num = z.preprocess(slurmNumber, z.number().nullable());
/** Times: seconds since the epoch, 0 when Slurm has none. */
const time = z.preprocess((v) => slurmNumber(v) ?? 0, z.number().min(0));
const str = z.preprocess((v) => (typeof v === 'string' ? v : v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v as number | boolean)), z.string());
/** `job_state`: a word in 22.05, an array of words (base state first) in 23.02+. */
const stateWord = z.preprocess((v) => {
  if (Array.isArray(v)) return v.includes('COMPLETING') ? 'COMPLETING' : String(v[0] ?? 'UNKNOWN');
  return typeof v === 'string' && v ? v : 'UNKNOWN';
}, z.string());

export const SqueueJobSchema = z
  .object({
    job_id: z.preprocess(slurmNumber, z.number().int().min(1)),
    array_job_id: num,
    array_task_id: num,
    array_task_string: str,
    name: str,
    user_name: str,
    user_id: num,
    account: str,
    partition: str,
    qos: str,
    job_state: stateWord,
    state_reason: str,
    dependency: str,
    /** The batch script's raw wait status (768 = exit 3, 15 = SIGTERM); 22.05 only. */
    exit_code: num,
    derived_exit_code: num,
    submit_time: time,
    eligible_time: time,
    start_time: time,
    end_time: time,
    suspend_time: time,
    priority: num,
    nice: num,
    /** Minutes; null when unset (the partition's limit applies) or infinite. */
    time_limit: num,
    nodes: str,
    node_count: num,
    cpus: num,
    tasks: num,
    restart_cnt: z.preprocess((v) => slurmNumber(v) ?? 0, z.number().int().min(0)),
    tres_alloc_str: str,
    tres_req_str: str,
  })
  .loose();
export type SqueueJob = z.infer<typeof SqueueJobSchema>;

export const SqueueOutputSchema = z
  .object({
    meta: z.record(z.string(), z.unknown()).optional(),
    errors: z.array(z.unknown()).default([]),
    jobs: z.array(z.record(z.string(), z.unknown())),
  })
  .loose();

export interface SqueueSnapshot {
  jobs: SqueueJob[];
  /** The records as Slurm printed them, by job id (kept as events' `raw`). */
  raw: Map<string, Record<string, unknown>>;
}

/** Parses `squeue --json` output; throws with Slurm's own message when it reports errors. */
export function parseSqueueJson(text: string): SqueueSnapshot {
  const data = SqueueOutputSchema.parse(JSON.parse(text));
  if (data.errors.length > 0) {
    const first = data.errors[0] as { error?: unknown; description?: unknown };
    const text = (v: unknown) => (typeof v === 'string' ? v : v == null ? '' : JSON.stringify(v));
    throw new Error(`squeue reported: ${text(first.error)} ${text(first.description)}`.trim());
  }
  const jobs: SqueueJob[] = [];
  const raw = new Map<string, Record<string, unknown>>();
  for (const rec of data.jobs) {
    const job = SqueueJobSchema.parse(rec);
    jobs.push(job);
    raw.set(String(job.job_id), rec);
  }
  return { jobs, raw };
}

/** One line of `sacct --parsable2` output, keyed by the header's column names. */
export type SacctLine = Record<string, string>;

/** A job's lines from sacct: the allocation line and its steps (`.batch`, `.extern`, `.0`, ...). */
export interface SacctJob {
  /** JobIDRaw: the decimal id (array tasks have their own). */
  id: string;
  job: SacctLine;
  batch?: SacctLine;
  steps: SacctLine[];
  /** Where the record came from: sacct (default), or the job completion log (schemas/slurm/jobcomp.ts). */
  origin?: 'jobcomp';
}

/**
 * Parses `sacct --parsable2` output WITH its header line into jobs keyed by JobIDRaw. Extra
 * `|`-separated pieces (a job name containing "|") are joined back into the JobName column.
 */
export function parseSacctParsable(text: string): Map<string, SacctJob> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out = new Map<string, SacctJob>();
  const header = lines.shift()?.split('|');
  if (!header || !header.includes('JobIDRaw')) return out;
  const nameCol = header.indexOf('JobName');
  for (const line of lines) {
    let cells = line.split('|');
    if (cells.length > header.length && nameCol >= 0) {
      const extra = cells.length - header.length;
      cells = [...cells.slice(0, nameCol), cells.slice(nameCol, nameCol + extra + 1).join('|'), ...cells.slice(nameCol + extra + 1)];
    }
    const rec: SacctLine = {};
    header.forEach((h, i) => (rec[h] = cells[i] ?? ''));
    const rawId = rec.JobIDRaw ?? '';
    const [id = '', step] = rawId.split('.');
    if (!/^[0-9]+$/.test(id)) continue;
    let job = out.get(id);
    if (step === undefined) {
      if (job) job.job = rec;
      else out.set(id, { id, job: rec, steps: [] });
      continue;
    }
    if (!job) {
      job = { id, job: {}, steps: [] };
      out.set(id, job);
    }
    job.steps.push(rec);
    if (step === 'batch') job.batch = rec;
  }
  // steps without their allocation line (cannot happen with sacct, but keep the map honest)
  for (const [id, j] of out) if (!j.job.JobIDRaw) out.delete(id);
  return out;
}

/** "exit:signal" as sacct's ExitCode/DerivedExitCode print it; undefined when empty. */
export function parseSacctExitCode(s: string | undefined): { exit_code: number; signal: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec((s ?? '').trim());
  return m ? { exit_code: Number(m[1]), signal: Number(m[2]) } : undefined;
}

/** sacct's State column: "CANCELLED by 0" → "CANCELLED". */
export function sacctStateWord(s: string | undefined): string {
  return (s ?? '').trim().split(/\s+/)[0] || 'UNKNOWN';
}

/** A sacct time ("2026-11-22T06:08:18", printed in the TZ sacct ran with: UTC here) → epoch seconds; null for Unknown/None. */
export function parseSacctTime(s: string | undefined): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec((s ?? '').trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, se) / 1000;
}

/** sacct's Timelimit ("365-00:00:00", "01:00:00", "05:00", "UNLIMITED", "Partition_Limit") → seconds, null when none. */
export function parseSacctDuration(s: string | undefined): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec((s ?? '').trim());
  if (!m) return null;
  const [, d = '0', h = '0', mi = '0', se = '0'] = m;
  return Number(d) * 86400 + Number(h) * 3600 + Number(mi) * 60 + Number(se);
}

/** Decodes a raw wait status (squeue's `exit_code`) into sacct's exit:signal pair. */
export function decodeWaitStatus(status: number): { exit_code: number; signal: number } {
  const signal = status & 0x7f;
  return signal !== 0 ? { exit_code: 0, signal } : { exit_code: (status >> 8) & 0xff, signal: 0 };
}

/** Count of a TRES in a TRES string ("cpu=1,node=1,gres/gpu=2"). */
export function tresCount(tres: string, name: string): number | null {
  for (const part of tres.split(',')) {
    const [k, v] = part.split('=');
    if (k === name && v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return null;
}
