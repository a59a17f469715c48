/**
 * The identity (per-job `seq`) of a Flux job event: a pure function of the job's history that
 * gives an event the same seq however it is read — live from the journal, in a `full` backlog,
 * after a scribe restart, after a lost checkpoint.
 *
 * Why it cannot simply count events: the job-manager posts some events with EVENT_NO_COMMIT
 * (flux-core src/modules/job-manager/event.c, annotate.c, alloc.c, submit.c): the live journal
 * carries them, the job's eventlog in the KVS and every later backlog do not. `annotations` and
 * `invalidate` are always such events; a `memo` is one only when posted `--volatile`, and the
 * event does not say which (its context is the memo alone). A count of "stored" events that
 * includes a volatile memo runs one ahead of the backlog; one that skips a committed memo runs
 * one behind. So memos, like annotations and invalidate, never take part in the count:
 *
 *   anchor events: every event whose name is not in FLUX_MAYBE_UNCOMMITTED_EVENTS. These are
 *     always committed, so a job's backlog holds exactly its anchors (plus its committed memos),
 *     in the same order as the live journal.
 *       the a-th anchor of the job (0-based; submit is a = 0)      → seq = a * SEQ_SLOT
 *   floating events (annotations, invalidate, memo, committed or not): placed in the gap after
 *     the anchor before them (a = its index, t0 = its timestamp), by their own timestamp:
 *       memo                                                       → a * SEQ_SLOT + 2·slot(ts − t0) + 1   (odd)
 *       annotations, invalidate                                    → a * SEQ_SLOT + 2·slot(ts − t0) + 2   (even)
 *     slot() is a float-like code of the microseconds since the anchor (exact below 1,024 µs,
 *     then 1,024 steps per doubling, saturating after ~25 days): increasing with time, so the
 *     events of a gap keep their order, and computed in integers, so it is reproducible.
 *
 * Nothing in a seq depends on which floating events were seen, so no reading can shift another:
 * a volatile memo and its committed twin get the seq their own timestamp gives; the anchors'
 * numbering is the same with or without them. The only events read twice (live, then in a
 * backlog) are anchors and committed memos, and both are pure functions of the backlog's text.
 * Journal-only events (never read twice) whose even offset is not above the largest offset given
 * in their gap so far move to the next even offset above it (kept in the checkpoint), so two of
 * them never collide and they stay in arrival order.
 * Limits: 65,536 anchors per job (seq is a u32); two memos of one job closer in time than the
 * slot resolution at their distance from the anchor (1 µs near it, ~2 s an hour later, ~1 min a
 * day later) share a seq, and the projector keeps one of them.
 */
import { FLUX_JOURNAL_ONLY_EVENTS, FLUX_MAYBE_UNCOMMITTED_EVENTS } from '../../schemas/flux/events.js';

export const SEQ_SLOT = 2 ** 16;
/** Mantissa bits of slot(): 1,024 steps per doubling of the time since the anchor. */
const MANTISSA_BITS = 10;
/** Largest slot: 2·slot + 2 must stay below SEQ_SLOT. */
const MAX_SLOT = SEQ_SLOT / 2 - 2;
const MAX_EVEN = SEQ_SLOT - 2;

/** Whether an event takes the next anchor index (always committed to the job's eventlog). */
export const isAnchorEvent = (name: string): boolean => !FLUX_MAYBE_UNCOMMITTED_EVENTS.has(name);

/**
 * The time code of `dt` seconds after an anchor: microseconds below 2^10 as they are, above as
 * (exponent, top 10 bits), so it grows with dt and has ~0.1% relative resolution. Integer math
 * on the exact difference of the two parsed timestamps.
 */
export function timeSlot(dt: number): number {
  const us = Number.isFinite(dt) && dt > 0 ? Math.round(dt * 1e6) : 0;
  const m = 2 ** MANTISSA_BITS;
  if (us < m) return us;
  const e = us.toString(2).length - MANTISSA_BITS; // ≥ 1
  const slot = e * m + (Math.floor(us / 2 ** (e - 1)) - m);
  return Math.min(slot, MAX_SLOT);
}

/** Where a job's numbering stands: what the next event's seq depends on. */
export interface JobNumbering {
  /** Anchors seen (the next anchor's index). */
  anchors: number;
  /** Timestamp of the last anchor. */
  anchorTs: number | undefined;
  /** Largest gap offset given since the last anchor (0: none). */
  lastOffset: number;
}

export const newNumbering = (): JobNumbering => ({ anchors: 0, anchorTs: undefined, lastOffset: 0 });

/** The seq of the next event of a job, and the numbering after it. Pure (returns a new state). */
export function numberEvent(state: JobNumbering, name: string, ts: number): { seq: number; state: JobNumbering } {
  if (isAnchorEvent(name)) {
    return { seq: state.anchors * SEQ_SLOT, state: { anchors: state.anchors + 1, anchorTs: ts, lastOffset: 0 } };
  }
  const base = Math.max(0, state.anchors - 1) * SEQ_SLOT;
  const slot = timeSlot(state.anchorTs === undefined ? 0 : ts - state.anchorTs);
  let offset: number;
  if (!FLUX_JOURNAL_ONLY_EVENTS.has(name)) {
    offset = 2 * slot + 1; // memo: pure, never moved
  } else {
    offset = 2 * slot + 2;
    if (offset <= state.lastOffset) offset = Math.min(state.lastOffset + 2 - (state.lastOffset % 2), MAX_EVEN);
  }
  return { seq: base + offset, state: { ...state, lastOffset: Math.max(state.lastOffset, offset) } };
}
