/**
 * `job-manager.kill`: send a signal to a running job's tasks.
 *   request  {"id":I,"signum":i}
 *   response success without payload; ENOENT unknown job; EINVAL job not running / bad signum.
 */
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'job-manager.kill';

export function encode(req: { id: bigint; signum: number }, matchtag: number): Buffer {
  return encodeRequest({ topic: TOPIC, payload: { id: req.id, signum: req.signum }, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

export function parse(d: DecodedResponse): void {
  parseResponse(d);
}
