/**
 * `job-info.lookup`: read keys of a job's KVS directory; used for the job's owner (the userid of
 * its `submit` event), which the scribe re-checks before acting for a user.
 *   request  {"id":I,"keys":["eventlog"],"flags":0}
 *   response {"id":I,"eventlog":"<RFC 18 eventlog: one JSON event per line>"};
 *            ENOENT for an unknown job, EPERM for another user's job (guests).
 */
import { payloadObject } from '../json.js';
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'job-info.lookup';

export function encode(req: { id: bigint }, matchtag: number): Buffer {
  return encodeRequest({ topic: TOPIC, payload: { id: req.id, keys: ['eventlog'], flags: 0 }, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

/** The submitter's uid from the eventlog's `submit` event (its first line), or undefined. */
export function parse(d: DecodedResponse): { userid: number | undefined } {
  const eventlog = payloadObject(parseResponse(d).payload)?.eventlog;
  if (typeof eventlog !== 'string') return { userid: undefined };
  for (const line of eventlog.split('\n')) {
    if (!line.trim()) continue;
    try {
      const ev = JSON.parse(line) as { name?: unknown; context?: { userid?: unknown } };
      if (ev.name === 'submit') return { userid: typeof ev.context?.userid === 'number' ? ev.context.userid : undefined };
    } catch {
      return { userid: undefined };
    }
  }
  return { userid: undefined };
}
