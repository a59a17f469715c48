/**
 * Pure bookkeeping between the Flux journal and the scribe: turns journal entries into
 * SourceEvents with a per-job `seq` that is STABLE (the same event always gets the same seq,
 * whether it arrived live or in a later backlog), and keeps the small checkpoint that lets a
 * restarted source skip what it already published.
 *
 * seq: the rule of identity.ts (a pure function of the job's committed history: stored "anchor"
 * events a * SEQ_SLOT, annotations / invalidate / memos — committed or not, the event does not
 * say — in the gap after the anchor before them, at an offset from their own timestamp). This
 * class adds what a restartable stream needs: the checkpoint, backlog skipping, alignment.
 *
 * Checkpoint (the opaque string given to emit), JSON:
 *   {"v":1,"jobs":[[id,n,k,ts,uid,m],…],"done":"<ids>"}
 *   jobs: per job not yet finished — n anchors seen, k the largest gap offset given since the
 *         last anchor (journal-only events go above it), ts the timestamp of the last anchor
 *         (aligns a backlog that disagrees with n, e.g. a checkpoint written when a volatile memo
 *         was still counted), uid the submitter (names events whose submit is skipped), m the
 *         largest memo offset published since the last anchor (a backlog skips memos up to it;
 *         memo offsets grow with time; absent in older checkpoints = 0)
 *   done: jobs that finished (clean / invalidate) and may still be in the job-manager's
 *         backlog: sorted ids, base-36, first absolute then deltas, comma-separated. Pruned to
 *         the jobs present in each complete backlog (the rest were purged and never come back),
 *         and capped (maxFinished, default 20,000, newest kept): a forgotten job that is still
 *         in the backlog is re-emitted whole with the same seqs, which costs only duplicates.
 * On a new stream (every connect) the backlog is matched against it: finished jobs are skipped
 * whole, known jobs resume after their n-th anchor (committed memos after it are emitted again,
 * with their same seq), new jobs are emitted whole. The backlog is always numbered from the
 * job's first event, never from the checkpoint's count, so whatever the checkpoint lost (e.g.
 * none given) is re-emitted with the same (job_id, seq), which the projector collapses.
 */
import type { FluxJournalEvent } from '../../schemas/flux/events.js';
import type { SourceEvent } from '../source.js';
import { CheckpointError } from '../checkpoint.js';
import { isAnchorEvent, newNumbering, numberEvent, SEQ_SLOT, type JobNumbering } from './identity.js';
import { SENTINEL_ID, type JournalEntry } from './journal.js';
import type { UserResolver } from './users.js';

const CHECKPOINT_VERSION = 1;
/** Finished jobs remembered for the next backlog; older ones, if still there, are re-emitted (same seqs). */
export const DEFAULT_MAX_FINISHED = 20_000;

interface JobPos {
  /** Anchors seen (the next anchor's index). */
  n: number;
  /** Largest gap offset given since the last anchor (0: none). */
  k: number;
  /** Largest memo offset published since the last anchor (0: none). */
  m: number;
  /** Timestamp of the last anchor seen. */
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
      const [id, n, k, ts, uid, m] = row as [string, number, number, number | null, number | null, number | undefined];
      t.jobs.set(String(id), { n: Number(n), k: Number(k), ts: ts ?? undefined, uid: uid ?? undefined, m: Number(m ?? 0) });
    }
    for (const id of decodeIdSet(cp.done)) t.done.add(id);
    t.doneText = cp.done;
    return t;
  }

  checkpoint(): string {
    const jobs: [string, number, number, number | null, number | null, number][] = [];
    for (const [id, p] of this.jobs) jobs.push([id, p.n, p.k, p.ts ?? null, p.uid ?? null, p.m]);
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
    if (!pos) {
      pos = { n: 0, k: 0, ts: undefined, uid: undefined, m: 0 };
      this.jobs.set(id, pos);
    }
    const first = events[0];
    if (first?.name === 'submit' && typeof first.context?.userid === 'number') pos.uid = first.context.userid;
    const { resume, aligned } = resumeAnchor(events, pos);
    // the memos published in the gap after the last published anchor (known when aligned)
    const memosPublished = aligned ? pos.m : 0;
    // Numbered from the job's first event (never from the checkpoint), emitted from where the
    // checkpoint stopped.
    let numbering = newNumbering();
    let memoMax = 0;
    const out: SourceEvent[] = [];
    for (const ev of events) {
      const { seq, state } = numberEvent(numbering, ev.name, ev.timestamp);
      numbering = state;
      if (isAnchorEvent(ev.name)) memoMax = 0;
      else if (ev.name === 'memo') memoMax = Math.max(memoMax, seq % SEQ_SLOT);
      const published = isAnchorEvent(ev.name)
        ? state.anchors <= resume
        : state.anchors < resume || (state.anchors === resume && seq % SEQ_SLOT <= memosPublished);
      if (published) this.stats.backlogSkipped++;
      else out.push(this.build(entry, ev, seq, pos.uid));
    }
    const sameGap = numbering.anchors === pos.n && numbering.anchorTs === pos.ts;
    pos.k = sameGap ? Math.max(pos.k, numbering.lastOffset) : numbering.lastOffset;
    pos.m = sameGap ? Math.max(pos.m, memoMax) : memoMax;
    pos.n = numbering.anchors;
    pos.ts = numbering.anchorTs;
    if (events.length > 0 && isFinal(events[events.length - 1]!.name)) this.finish(id);
    return out;
  }

  private liveEntry(entry: JournalEntry): SourceEvent[] {
    const { id } = entry;
    let pos = this.jobs.get(id);
    if (!pos) {
      pos = { n: 0, k: 0, ts: undefined, uid: undefined, m: 0 };
      this.jobs.set(id, pos);
    }
    const out: SourceEvent[] = [];
    for (const ev of entry.events) {
      const { seq, state } = numberEvent(toNumbering(pos), ev.name, ev.timestamp);
      pos.n = state.anchors;
      pos.ts = state.anchorTs;
      pos.k = state.lastOffset;
      if (isAnchorEvent(ev.name)) pos.m = 0;
      else if (ev.name === 'memo') pos.m = Math.max(pos.m, seq % SEQ_SLOT);
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

const toNumbering = (pos: JobPos): JobNumbering => ({ anchors: pos.n, anchorTs: pos.ts, lastOffset: pos.k });

/**
 * How many of a backlog entry's anchors were already published: the checkpoint's count when
 * the anchor it saw last is there with its timestamp (aligned); otherwise (a checkpoint that
 * counted an event the eventlog never held, or a history that changed) the anchors up to that
 * timestamp.
 */
function resumeAnchor(events: FluxJournalEvent[], pos: JobPos): { resume: number; aligned: boolean } {
  if (pos.n === 0) return { resume: 0, aligned: false };
  const anchors = events.filter((ev) => isAnchorEvent(ev.name));
  if (anchors[pos.n - 1]?.timestamp === pos.ts) return { resume: pos.n, aligned: true };
  if (pos.ts === undefined) return { resume: Math.min(pos.n, anchors.length), aligned: false };
  let n = 0;
  while (n < anchors.length && anchors[n]!.timestamp <= pos.ts) n++;
  return { resume: n, aligned: false };
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
