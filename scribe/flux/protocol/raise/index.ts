/**
 * `job-manager.raise`: raise an exception on a job (cancel = type "cancel", severity 0).
 *   request  {"id":I,"type":s,"severity":i[,"note":s]}   (keys in this order, as flux_job_raise packs them)
 *   response success without payload; ENOENT "unknown job id"; EPERM for someone else's job.
 */
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'job-manager.raise';

export interface RaiseRequest {
  id: bigint;
  type: string;
  severity: number;
  note?: string;
}

export function encode(req: RaiseRequest, matchtag: number): Buffer {
  const payload: Record<string, unknown> = { id: req.id, type: req.type, severity: req.severity };
  if (req.note !== undefined) payload.note = req.note;
  return encodeRequest({ topic: TOPIC, payload, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

export function parse(d: DecodedResponse): void {
  parseResponse(d);
}
