/**
 * `job-manager.urgency`: set a job's urgency (0 hold, 16 default, 31 expedite).
 *   request  {"id":I,"urgency":i}
 *   response {"old_urgency":i}; ENOENT "unknown job id"; EPERM / EINVAL for urgency > 16 by a guest.
 */
import { payloadObject } from '../json.js';
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'job-manager.urgency';

export function encode(req: { id: bigint; urgency: number }, matchtag: number): Buffer {
  return encodeRequest({ topic: TOPIC, payload: { id: req.id, urgency: req.urgency }, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

export function parse(d: DecodedResponse): { old_urgency: number | undefined } {
  const obj = payloadObject(parseResponse(d).payload);
  const old = obj?.old_urgency;
  return { old_urgency: typeof old === 'number' ? old : undefined };
}
