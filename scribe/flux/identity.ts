/**
 * The identity (per-job `seq`) of a Flux job event, from the job's history.
 *
 * Why it cannot simply count events: the job-manager posts some events with EVENT_NO_COMMIT
 * (flux-core src/modules/job-manager/event.c, annotate.c, alloc.c, submit.c): the live journal
 * carries them, the job's eventlog in the KVS and every later backlog do not. `annotations` and
 * `invalidate` are always such events; a `memo` is one only when posted `--volatile`, and the
 * event does not say which (its context is the memo alone). A count of "stored" events that
 * includes a volatile memo runs one ahead of the backlog, so memos, like annotations and
 * invalidate, never take part in the count:
 *
 *   anchor events: every event whose name is not in FLUX_MAYBE_UNCOMMITTED_EVENTS. These are
 *     always committed, so a job's backlog holds exactly its anchors (plus its committed memos),
 *     in the same order as the live journal.
 *       the a-th anchor of the job (0-based; submit is a = 0)      → seq = a * SEQ_SLOT
 *   floating events (annotations, invalidate, memo, committed or not):
 *       the k-th after the a-th anchor (k = 1, 2, …)               → seq = a * SEQ_SLOT + k
 */
import { FLUX_MAYBE_UNCOMMITTED_EVENTS } from '../../schemas/flux/events.js';

export const SEQ_SLOT = 2 ** 16;

/** Whether an event takes the next anchor index (always committed to the job's eventlog). */
export const isAnchorEvent = (name: string): boolean => !FLUX_MAYBE_UNCOMMITTED_EVENTS.has(name);

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
  const offset = Math.min(state.lastOffset + 1, SEQ_SLOT - 1);
  return { seq: Math.max(0, state.anchors - 1) * SEQ_SLOT + offset, state: { ...state, lastOffset: offset } };
}
