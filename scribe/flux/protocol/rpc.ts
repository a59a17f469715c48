/**
 * Any Flux RPC: encode a request (JSON payload, matchtag, nodeid any, STREAMING / NORESPONSE as
 * asked) and decode a response into topic, matchtag, errnum and payload. `decodeResponse` never
 * throws on an errnum; `parseResponse` does (FluxError). The per-topic folders build on these.
 */
import { FluxError } from '../errors.js';
import { encodeJsonPayload, payloadText } from './json.js';
import { encodeMessage, MsgFlag, MsgType, NODEID_ANY, USERID_UNKNOWN, type FluxMessage } from './message.js';

/** Matchtag of a request that expects no response (FLUX_MATCHTAG_NONE). */
export const MATCHTAG_NONE = 0;

export interface RequestSpec {
  topic: string;
  /** JSON object payload; omitted = no payload frame. */
  payload?: Record<string, unknown>;
  matchtag: number;
  streaming?: boolean;
  noresponse?: boolean;
  nodeid?: number;
}

export function requestMessage(spec: RequestSpec): FluxMessage {
  let flags = 0;
  if (spec.streaming) flags |= MsgFlag.STREAMING;
  if (spec.noresponse) flags |= MsgFlag.NORESPONSE;
  const msg: FluxMessage = {
    type: MsgType.REQUEST,
    flags,
    userid: USERID_UNKNOWN,
    rolemask: 0,
    aux1: spec.nodeid ?? NODEID_ANY,
    aux2: spec.noresponse ? MATCHTAG_NONE : spec.matchtag,
    routes: [],
    topic: spec.topic,
  };
  if (spec.payload !== undefined) msg.payload = encodeJsonPayload(spec.payload);
  return msg;
}

export function encodeRequest(spec: RequestSpec): Buffer {
  return encodeMessage(requestMessage(spec));
}

export interface DecodedResponse {
  topic: string;
  matchtag: number;
  /** 0 on success; otherwise a Linux errno (61 ENODATA ends a stream normally). */
  errnum: number;
  streaming: boolean;
  /** Success: the payload bytes (JSON text + NUL), if any. */
  payload?: Uint8Array;
  /** Error: the broker's message (error payload without its NUL), if any. */
  error?: string;
}

/** Response message → its parts. Never throws on an errnum. */
export function decodeResponse(msg: FluxMessage): DecodedResponse {
  const d: DecodedResponse = {
    topic: msg.topic ?? '',
    matchtag: msg.aux2,
    errnum: msg.aux1,
    streaming: (msg.flags & MsgFlag.STREAMING) !== 0,
  };
  if (d.errnum !== 0) {
    const text = payloadText(msg.payload);
    if (text) d.error = text;
  } else if (msg.payload) {
    d.payload = msg.payload;
  }
  return d;
}

/** Throws the FluxError for an error response; returns successful ones unchanged. */
export function parseResponse(d: DecodedResponse): DecodedResponse {
  if (d.errnum !== 0) throw FluxError.fromResponse(d.topic, d.errnum, d.error);
  return d;
}
