/**
 * `job-manager.events-journal` (streaming, instance owner only) and its cancel.
 *   request   {"full":true}       flags STREAMING; full = first a backlog: one response per job
 *                                 in the job-manager (active and inactive) with all its stored
 *                                 events plus "jobspec" and "R", then the sentinel
 *   response  {"id":I,"events":[{"timestamp":f,"name":s[,"context":{}]}...][,"jobspec":{}][,"R":{}]}
 *             sentinel {"id":-1,"events":[]} ends the backlog; after it, live entries carry one
 *             event each (jobspec with submit, R with alloc), journal-only ones included
 *             ("annotations", "invalidate")
 *   end       error response: ENODATA (61) after a cancel = normal end; EPERM for a guest;
 *             ENOSYS when the job-manager is not loaded
 *   cancel    job-manager.events-journal-cancel {"matchtag":N}   flags NORESPONSE
 * `decode` never throws on an errnum; `parse` does (FluxError), except for ENODATA (end).
 */
import { FluxError } from '../../errors.js';
import { ENODATA } from '../errnums.js';
import { payloadText } from '../json.js';
import { decodeResponse, encodeRequest } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'job-manager.events-journal';
export const CANCEL_TOPIC = 'job-manager.events-journal-cancel';

export function encode(req: { full?: boolean }, matchtag: number): Buffer {
  const payload: Record<string, unknown> = {};
  if (req.full) payload.full = true;
  return encodeRequest({ topic: TOPIC, payload, matchtag, streaming: true });
}

/** Cancels the stream opened with `streamMatchtag`; the stream then ends with ENODATA. */
export function encodeCancel(streamMatchtag: number): Buffer {
  return encodeRequest({ topic: CANCEL_TOPIC, payload: { matchtag: streamMatchtag }, matchtag: 0, noresponse: true });
}

export type JournalResponse =
  /** A journal entry (or the sentinel) as JSON text: parse it BigInt-safe (journal.ts). */
  | { kind: 'data'; matchtag: number; text: string }
  /** ENODATA: the stream ended normally. */
  | { kind: 'end'; matchtag: number }
  | { kind: 'error'; matchtag: number; errnum: number; error?: string };

export function decode(msg: FluxMessage): JournalResponse {
  const d = decodeResponse(msg);
  if (d.errnum === ENODATA) return { kind: 'end', matchtag: d.matchtag };
  if (d.errnum !== 0) {
    const r: JournalResponse = { kind: 'error', matchtag: d.matchtag, errnum: d.errnum };
    if (d.error !== undefined) r.error = d.error;
    return r;
  }
  return { kind: 'data', matchtag: d.matchtag, text: payloadText(d.payload) ?? '' };
}

/** Throws the FluxError of an error response; passes data and the normal end through. */
export function parse(r: JournalResponse): Extract<JournalResponse, { kind: 'data' | 'end' }> {
  if (r.kind === 'error') throw FluxError.fromResponse(TOPIC, r.errnum, r.error);
  return r;
}

/** The backlog sentinel `{"id":-1,"events":[]}`, recognized without parsing the whole entry. */
export function isSentinelText(text: string): boolean {
  return /^\s*\{\s*"id"\s*:\s*-1\s*[,}]/.test(text);
}
