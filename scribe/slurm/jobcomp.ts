/**
 * Follows a Slurm job completion log (`JobCompType=jobcomp/filetxt`) for the poller: on a cluster
 * without slurmdbd, sacct has nothing, and this file is where the final state, exit code and
 * times of a job that left squeue are. Reads what was appended since the last refresh (a whole
 * file at start, at most its last 64 MiB; from the beginning again when it was truncated or
 * replaced by log rotation), chunk by chunk, and keeps the records of jobs that ended in the last
 * `keepS` seconds.
 *
 * The poller asks it what sacct would answer: the records of named jobs, and the jobs that ended
 * in a window (schemas/slurm/jobcomp.ts maps each line onto sacct's record shape).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { jobcompToSacct, localTime, parseJobcompLine } from '../../schemas/slurm/jobcomp.js';
import { parseSacctTime, type SacctJob } from '../../schemas/slurm/squeue.js';

/** At most this much of an existing log is read at start (~200,000 jobs). */
const MAX_INITIAL_BYTES = 64 * 1024 * 1024;

export class JobcompTail {
  private readonly jobs = new Map<string, SacctJob>();
  private offset = 0;
  private inode = -1;
  /** A line not yet ended by a newline (slurmctld was writing it). */
  private partial = '';
  /** Started mid-file: the first line read is a tail of one. */
  private skipFirstLine = false;
  /** Keeps a UTF-8 character split between two reads whole. */
  private decoder = new StringDecoder('utf8');

  constructor(
    readonly path: string,
    private readonly opts: { keepS?: number; maxInitialBytes?: number; localToUtc?: (s: string) => number | null } = {},
  ) {}

  /** Reads what was appended; throws when the file cannot be read (the poller says so and goes on). */
  refresh(now: number): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // no job has finished yet
      throw err;
    }
    try {
      const st = fstatSync(fd);
      if (st.ino !== this.inode || st.size < this.offset) {
        // first read, rotated or truncated: from the start, or for a long history its last part
        // (older lines are past any window the poller asks about); the partial first line is skipped
        this.inode = st.ino;
        this.offset = Math.max(0, st.size - (this.opts.maxInitialBytes ?? MAX_INITIAL_BYTES));
        this.partial = '';
        this.decoder = new StringDecoder('utf8');
        this.skipFirstLine = this.offset > 0;
      }
      // chunk by chunk: memory stays one chunk whatever was appended
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        const text = this.partial + this.decoder.write(buf.subarray(0, n));
        const end = text.lastIndexOf('\n');
        this.partial = end < 0 ? text : text.slice(end + 1);
        if (end >= 0) this.take(text.slice(0, end));
      }
    } finally {
      closeSync(fd);
    }
    const keepFrom = now - (this.opts.keepS ?? 7 * 24 * 3600);
    for (const [id, j] of this.jobs) if ((parseSacctTime(j.job.End) ?? now) < keepFrom) this.jobs.delete(id);
  }

  private take(lines: string): void {
    for (const line of lines.split('\n')) {
      if (this.skipFirstLine) {
        this.skipFirstLine = false;
        continue;
      }
      const f = parseJobcompLine(line.trim());
      if (f) this.jobs.set(f.JobId!, jobcompToSacct(f, this.opts.localToUtc ?? localTime));
    }
  }

  /** The records of these jobs that the log has (like `sacct --jobs=...`). */
  lookup(ids: readonly string[]): Map<string, SacctJob> {
    const out = new Map<string, SacctJob>();
    for (const id of ids) {
      const j = this.jobs.get(id);
      if (j) out.set(id, j);
    }
    return out;
  }

  /** Jobs that ended in [since, until] (like sacct's discovery window). */
  endedBetween(since: number, until: number): Map<string, SacctJob> {
    const out = new Map<string, SacctJob>();
    for (const [id, j] of this.jobs) {
      const end = parseSacctTime(j.job.End);
      if (end !== null && end >= since && end <= until) out.set(id, j);
    }
    return out;
  }
}
