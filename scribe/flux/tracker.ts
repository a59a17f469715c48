/**
 * Pure bookkeeping between the Flux journal and the scribe: turns journal entries into
 * SourceEvents with a per-job `seq` that is STABLE (the same event always gets the same seq,
 * whether it arrived live or in a later backlog), and keeps the small checkpoint that lets a
 * restarted source skip what it already published.
 *
 * seq scheme (SEQ_SLOT = 2^16; journal.ts's JournalSequencer numbers a plain journal the same way,
 * this class adds what a restartable stream needs: the checkpoint, backlog skipping, alignment):
 *   the i-th stored-eventlog event of a job (0-based)      → seq = i * SEQ_SLOT
 *   the k-th journal-only event (annotations, invalidate)
 *   after the i-th stored event (k = 1, 2, …)              → seq = i * SEQ_SLOT + k
 * Stored events are exactly what a `full` backlog returns, in eventlog order, and what the live
 * stream interleaves with journal-only events, so i is the same in both; journal-only events
 * never appear in a backlog (they can only come live, once). Seqs increase along the job's
 * history, leave room for 65,535 journal-only events between two stored ones (more reuse the
 * last slot) and for 65,536 stored events per job within the envelope's u32.
 *
 * Checkpoint (the opaque string given to emit), JSON:
 *   {"v":1,"jobs":[[id,n,k,ts,uid],…],"done":"<ids>"}
 *   jobs: per job not yet finished — n stored events seen, k journal-only events since the
 *         last stored one, ts the timestamp of the last stored event (aligns a backlog that
 *         disagrees with n), uid the submitter (names events whose submit is skipped)
 *   done: jobs that finished (clean / invalidate) and may still be in the job-manager's
 *         backlog: sorted ids, base-36, first absolute then deltas, comma-separated. Pruned to
 *         the jobs present in each complete backlog (the rest were purged and never come back),
 *         and capped (maxFinished, default 20,000, newest kept): a forgotten job that is still
 *         in the backlog is re-emitted whole with the same seqs, which costs only duplicates.
 * On a new stream (every connect) the backlog is matched against it: finished jobs are skipped
 * whole, known jobs resume after their n-th stored event, new jobs are emitted whole. Whatever
 * the checkpoint lost (e.g. none given) is re-emitted with the same (job_id, seq), which the
 * projector collapses.
 */
import { FLUX_JOURNAL_ONLY_EVENTS, type FluxJournalEvent } from '../../schemas/flux/events.js';
import type { SourceEvent } from '../source.js';
import { CheckpointError } from '../checkpoint.js';
import { SENTINEL_ID, SEQ_SLOT, type JournalEntry } from './journal.js';
import type { UserResolver } from './users.js';

const CHECKPOINT_VERSION = 1;
/** Finished jobs remembered for the next backlog; older ones, if still there, are re-emitted (same seqs). */
export const DEFAULT_MAX_FINISHED = 20_000;

interface JobPos {
  /** Stored events seen (the next stored event's index). */
  n: number;
  /** Journal-only events seen since the last stored one. */
  k: number;
  /** Timestamp of the last stored event seen. */
  ts: number | undefined;
  /** Submitter's uid. */
  uid: number | undefined;
}

export interface TrackerStats {
  /** Backlog entries in the current / last backlog. */
  backlogJobs: number;
  backlogEvents: number;
  /** Backlog events skipped because the checkpoint says they were published. */
  backlogSkipped: number;
  liveEvents: number;
  inBacklog: boolean;
}

const isFinal = (name: string) => name === 'clean' || name === 'invalidate';

export class JournalTracker {
  private readonly jobs = new Map<string, JobPos>();
  private readonly done = new Set<string>();
  private doneText: string | undefined = '';
  private seen: Set<string> | undefined;
  readonly stats: TrackerStats = { backlogJobs: 0, backlogEvents: 0, backlogSkipped: 0, liveEvents: 0, inBacklog: false };

  private readonly users: UserResolver;
  private readonly maxFinished: number;

  constructor(opts: { users?: UserResolver; maxFinished?: number } = {}) {
    this.users = opts.users ?? (() => undefined);
    this.maxFinished = opts.maxFinished ?? DEFAULT_MAX_FINISHED;
  }

  static restore(checkpoint: string | undefined, opts: { users?: UserResolver; maxFinished?: number } = {}): JournalTracker {
    const t = new JournalTracker(opts);
    if (!checkpoint) return t;
    let cp: { v?: unknown; jobs?: unknown; done?: unknown };
    try {
      cp = JSON.parse(checkpoint) as typeof cp;
    } catch (err) {
      throw new CheckpointError(`not JSON: ${(err as Error).message}`);
    }
    if (typeof cp !== 'object' || cp === null || cp.v !== CHECKPOINT_VERSION || !Array.isArray(cp.jobs) || typeof cp.done !== 'string') {
      throw new CheckpointError(`not a flux source checkpoint (v=${String((cp as { v?: unknown } | null)?.v)})`);
    }
    for (const row of cp.jobs as unknown[]) {
      const [id, n, k, ts, uid] = row as [string, number, number, number | null, number | null];
      t.jobs.set(String(id), { n: Number(n), k: Number(k), ts: ts ?? undefined, uid: uid ?? undefined });
    }
    for (const id of decodeIdSet(cp.done)) t.done.add(id);
    t.doneText = cp.done;
    return t;
  }

  checkpoint(): string {
    const jobs: [string, number, number, number | null, number | null][] = [];
    for (const [id, p] of this.jobs) jobs.push([id, p.n, p.k, p.ts ?? null, p.uid ?? null]);
    if (this.doneText === undefined) this.doneText = encodeIdSet(this.done);
    return JSON.stringify({ v: CHECKPOINT_VERSION, jobs, done: this.doneText });
  }

  /** Jobs tracked as unfinished, and finished ones remembered for the backlog. */
  get size(): { active: number; done: number } {
    return { active: this.jobs.size, done: this.done.size };
  }

  /** A new stream opened with `full`: its first responses are the backlog. */
  beginBacklog(): void {
    this.seen = new Set();
    Object.assign(this.stats, { backlogJobs: 0, backlogEvents: 0, backlogSkipped: 0, inBacklog: true });
  }

  /** Applies one journal response; returns the events to publish, in order. */
  apply(entry: JournalEntry): SourceEvent[] {
    if (entry.id === SENTINEL_ID) {
      this.endBacklog();
      return [];
    }
    return this.seen ? this.backlogEntry(entry) : this.liveEntry(entry);
  }

  private endBacklog(): void {
    const seen = this.seen;
    this.seen = undefined;
    this.stats.inBacklog = false;
    if (!seen) return;
    for (const id of this.done) {
      if (!seen.has(id)) {
        this.done.delete(id);
        this.doneText = undefined;
      }
    }
    for (const id of this.jobs.keys()) if (!seen.has(id)) this.jobs.delete(id);
  }

  private backlogEntry(entry: JournalEntry): SourceEvent[] {
    const { id, events } = entry;
    this.seen!.add(id);
    this.stats.backlogJobs++;
    this.stats.backlogEvents += events.length;
    if (this.done.has(id)) {
      this.stats.backlogSkipped += events.length;
      return [];
    }
    let pos = this.jobs.get(id);
    let start = 0;
    let base = 0;
    if (pos && pos.n > 0) {
      start = Math.min(pos.n, events.length);
      if (events[pos.n - 1]?.timestamp !== pos.ts && pos.ts !== undefined) {
        // The backlog disagrees with our count (e.g. an event we counted was never stored):
        // resume after the event we saw last, numbering on from our own count.
        const p = lastIndexOfTs(events, pos.ts);
        if (p >= 0) {
          start = p + 1;
          base = pos.n - start;
        }
      }
    }
    if (!pos) {
      pos = { n: 0, k: 0, ts: undefined, uid: undefined };
      this.jobs.set(id, pos);
    }
    const first = events[0];
    if (first?.name === 'submit' && typeof first.context?.userid === 'number') pos.uid = first.context.userid;
    this.stats.backlogSkipped += start;
    const out: SourceEvent[] = [];
    for (let q = start; q < events.length; q++) {
      const ev = events[q]!;
      const index = q + base;
      out.push(this.build(entry, ev, index * SEQ_SLOT, pos.uid));
      pos.n = index + 1;
      pos.k = 0;
      pos.ts = ev.timestamp;
    }
    if (events.length > 0 && isFinal(events[events.length - 1]!.name)) this.finish(id);
    return out;
  }

  private liveEntry(entry: JournalEntry): SourceEvent[] {
    const { id } = entry;
    let pos = this.jobs.get(id);
    if (!pos) {
      pos = { n: 0, k: 0, ts: undefined, uid: undefined };
      this.jobs.set(id, pos);
    }
    const out: SourceEvent[] = [];
    for (const ev of entry.events) {
      let seq: number;
      if (FLUX_JOURNAL_ONLY_EVENTS.has(ev.name)) {
        pos.k = Math.min(pos.k + 1, SEQ_SLOT - 1);
        seq = Math.max(0, pos.n - 1) * SEQ_SLOT + pos.k;
      } else {
        seq = pos.n * SEQ_SLOT;
        pos.n++;
        pos.k = 0;
        pos.ts = ev.timestamp;
      }
      if (ev.name === 'submit' && typeof ev.context?.userid === 'number') pos.uid = ev.context.userid;
      out.push(this.build(entry, ev, seq, pos.uid));
      if (isFinal(ev.name)) this.finish(id);
    }
    this.stats.liveEvents += out.length;
    return out;
  }

  private finish(id: string): void {
    this.jobs.delete(id);
    if (!this.done.has(id)) {
      this.done.add(id);
      this.doneText = undefined;
      if (this.done.size > this.maxFinished * 1.25) this.trimFinished();
    }
  }

  /** Forgets the oldest finished jobs (smallest ids: Flux ids grow with submit time). */
  private trimFinished(): void {
    const keep = [...this.done].map((x) => BigInt(x)).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).slice(0, this.maxFinished);
    this.done.clear();
    for (const v of keep) this.done.add(v.toString());
  }

  private build(entry: JournalEntry, ev: FluxJournalEvent, seq: number, uid: number | undefined): SourceEvent {
    const raw: Record<string, unknown> = { id: entry.id, event: ev };
    if (ev.name === 'submit' && entry.jobspec) raw.jobspec = entry.jobspec;
    if (ev.name === 'alloc' && entry.R) raw.R = entry.R;
    const out: SourceEvent = {
      job_id: entry.id,
      seq,
      name: ev.name,
      ts: ev.timestamp,
      ts_source: 'scheduler',
      context: ev.context ?? {},
      raw,
    };
    const user = uid === undefined ? undefined : this.users(uid);
    if (user) out.user = user;
    return out;
  }
}

function lastIndexOfTs(events: FluxJournalEvent[], ts: number): number {
  for (let i = events.length - 1; i >= 0; i--) if (events[i]!.timestamp === ts) return i;
  return -1;
}

/** Sorted ids → "base36(first),base36(delta),…". */
export function encodeIdSet(ids: Iterable<string>): string {
  const sorted = [...ids].map((s) => BigInt(s)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: string[] = [];
  let prev = 0n;
  for (const v of sorted) {
    out.push((v - prev).toString(36));
    prev = v;
  }
  return out.join(',');
}

export function decodeIdSet(text: string): string[] {
  if (!text) return [];
  const out: string[] = [];
  let prev = 0n;
  for (const part of text.split(',')) {
    let v = 0n;
    for (const ch of part) v = v * 36n + BigInt(parseInt(ch, 36));
    prev += v;
    out.push(prev.toString());
  }
  return out;
}
