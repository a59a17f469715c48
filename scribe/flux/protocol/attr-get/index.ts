/**
 * `attr.get`: read a broker attribute (e.g. "security.owner", the instance owner's uid).
 *   request  {"name":s}
 *   response {"value":s,"flags":i}; ENOENT when the attribute is not set.
 */
import { payloadObject } from '../json.js';
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';

export const TOPIC = 'attr.get';

export function encode(req: { name: string }, matchtag: number): Buffer {
  return encodeRequest({ topic: TOPIC, payload: { name: req.name }, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

export function parse(d: DecodedResponse): string | undefined {
  const v = payloadObject(parseResponse(d).payload)?.value;
  return typeof v === 'string' ? v : undefined;
}
