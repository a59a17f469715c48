/**
 * The projector's per-process cache of job states, trusted only while this process has seen
 * every record of the job's partition since it cached the state. Pure (no I/O).
 *
 * Why: several projectors share a consumer group and partitions move between them. A state
 * cached by A, then a partition run by B (who folds more of the job's events), then given back
 * to A: A's cached state misses B's events, and folding on onto it wrote wrong rows (a job
 * "completed" with no nodes, start or end). The test is on log positions, not
 * on seqs: seqs are not dense (the Flux scribe numbers stored events i * SEQ_SLOT and journal-only
 * ones in between, scribe/flux/journal.ts), so "next seq = cached seq + 1" cannot tell a missed
 * event from the numbering. A partition's records are what all of its jobs' events pass through,
 * so when the next batch of a partition does not start at (or before) the offset after the last
 * record this process folded, someone else folded the records between: every state cached from
 * that partition is stale and must come from ClickHouse again. A group (re)join (`clear`) drops
 * everything as well.
 */
import type { Batch } from '../log/eventLog.js';
import type { JobRow } from './tables/jobs.js';

interface PartitionRun {
  /** Bumped whenever this process lost track of the partition (an offset gap). */
  run: number;
  /** The offset after the last record this process folded. */
  next: bigint;
}

interface Cached {
  row: JobRow;
  partition: string;
  run: number;
}

const partitionKey = (b: Pick<Batch, 'topic' | 'partition'>) => `${b.topic}\u0000${b.partition}`;

export class JobStateCache {
  private readonly rows = new Map<string, Cached>();
  private readonly partitions = new Map<string, PartitionRun>();
  private runs = 0;

  constructor(private readonly max = 200_000) {}

  get size(): number {
    return this.rows.size;
  }

  /**
   * Call before folding a batch. A batch that starts past the offset after the last record this
   * process folded (another member folded the records between), or the first batch seen of a
   * partition, begins a new run: states cached under an older run of it are no longer returned.
   * A batch that starts at or before that offset (a re-delivery) continues the run: this process
   * folded everything up to it, and re-folding older events changes nothing. Returns the run,
   * for `endBatch`.
   */
  beginBatch(batch: Pick<Batch, 'topic' | 'partition' | 'firstOffset'>): number {
    const key = partitionKey(batch);
    let p = this.partitions.get(key);
    if (!p || batch.firstOffset > p.next) {
      p = { run: ++this.runs, next: batch.firstOffset };
      this.partitions.set(key, p);
    }
    return p.run;
  }

  /** The cached state of a job of this batch's partition, if it is still trustworthy. */
  get(jobKey: string, batch: Pick<Batch, 'topic' | 'partition'>): JobRow | undefined {
    const c = this.rows.get(jobKey);
    if (!c) return undefined;
    const key = partitionKey(batch);
    if (c.partition !== key || c.run !== this.partitions.get(key)?.run) {
      this.rows.delete(jobKey);
      return undefined;
    }
    return c.row;
  }

  /** Call after the batch's rows were written: keeps the states, finished jobs leave. */
  endBatch(batch: Pick<Batch, 'topic' | 'partition' | 'lastOffset'>, run: number, jobs: ReadonlyMap<string, JobRow>): void {
    const key = partitionKey(batch);
    const p = this.partitions.get(key);
    if (p?.run !== run) return; // cleared meanwhile (a rebalance): nothing of this batch is kept
    if (batch.lastOffset + 1n > p.next) p.next = batch.lastOffset + 1n;
    for (const [jobKey, row] of jobs) {
      this.rows.delete(jobKey); // re-inserted at the end: the trim drops the least recently used
      if (row.sched_state !== 'INACTIVE' && !row.is_deleted) this.rows.set(jobKey, { row, partition: key, run: p.run });
    }
    this.trim();
  }

  /** Forgets everything: the partitions this process owns changed (a group join). */
  clear(): void {
    this.rows.clear();
    this.partitions.clear();
  }

  private trim(): void {
    let excess = this.rows.size - this.max;
    if (excess <= 0) return;
    // Map iteration order is insertion order: drop the least recently inserted.
    for (const key of this.rows.keys()) {
      if (excess-- <= 0) break;
      this.rows.delete(key);
    }
  }
}
