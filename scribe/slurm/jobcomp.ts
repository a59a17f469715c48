/**
 * Follows a Slurm job completion log (`JobCompType=jobcomp/filetxt`) for the poller: on a cluster
 * without slurmdbd, sacct has nothing, and this file is where the final state, exit code and
 * times of a job that left squeue are. Reads what was appended since the last refresh (a whole
 * file at start, from the beginning again when it was truncated or replaced by log rotation) and
 * keeps the records of jobs that ended in the last `keepS` seconds.
 *
 * The poller asks it what sacct would answer: the records of named jobs, and the jobs that ended
 * in a window (schemas/slurm/jobcomp.ts maps each line onto sacct's record shape).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { jobcompToSacct, localTime, parseJobcompLine } from '../../schemas/slurm/jobcomp.js';
import { parseSacctTime, type SacctJob } from '../../schemas/slurm/squeue.js';

export class JobcompTail {
  private readonly jobs = new Map<string, SacctJob>();
  private offset = 0;
  private inode = -1;
  /** A line not yet ended by a newline (slurmctld was writing it). */
  private partial = '';

  constructor(
    readonly path: string,
    private readonly opts: { keepS?: number; localToUtc?: (s: string) => number | null } = {},
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
        // first read, rotated or truncated: read the file from its start
        this.inode = st.ino;
        this.offset = 0;
        this.partial = '';
      }
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
        this.offset += n;
      }
      const text = this.partial + Buffer.concat(chunks).toString('utf8');
      const end = text.lastIndexOf('\n');
      this.partial = end < 0 ? text : text.slice(end + 1);
      for (const line of (end < 0 ? '' : text.slice(0, end)).split('\n')) {
        const f = parseJobcompLine(line.trim());
        if (f) this.jobs.set(f.JobId!, jobcompToSacct(f, this.opts.localToUtc ?? localTime));
      }
    } finally {
      closeSync(fd);
    }
    const keepFrom = now - (this.opts.keepS ?? 7 * 24 * 3600);
    for (const [id, j] of this.jobs) if ((parseSacctTime(j.job.End) ?? now) < keepFrom) this.jobs.delete(id);
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
