/**
 * `job-ingest.submit`: submit a job (what flux_job_submit sends).
 *   request  {"J":s,"urgency":i,"flags":i}   J = the jobspec signed with the "none" mechanism
 *                                            (see signNone.ts: instance owner only)
 *   response {"id":I}                        the new job id (64-bit: read exactly)
 *   errors   EINVAL invalid jobspec / urgency / flags, EPERM signer != requestor or guest with
 *            mech none, EPROTO malformed request, ENOSYS job-ingest not loaded.
 */
import { exactIntegerMember, payloadText } from '../json.js';
import { decodeResponse, encodeRequest, parseResponse, type DecodedResponse } from '../rpc.js';
import type { FluxMessage } from '../message.js';
import { signNoneWrap } from './signNone.js';

export { signNoneWrap } from './signNone.js';

export const TOPIC = 'job-ingest.submit';

/** flux_job_submit flags job-ingest accepts (FLUX_JOB_PRE_SIGNED = 1 is client-side only). */
export const SubmitFlag = { debug: 2, waitable: 4, novalidate: 8 } as const;
export type SubmitFlagName = keyof typeof SubmitFlag;

export interface SubmitRequest {
  /** Jobspec as JSON text (sent exactly as given) or an object (serialized). */
  jobspec: string | Record<string, unknown>;
  urgency: number;
  flags: number;
  /** Uid that signs J: must be the uid the broker sees on this connection. */
  userid: number;
}

export function encode(req: SubmitRequest, matchtag: number): Buffer {
  const text = typeof req.jobspec === 'string' ? req.jobspec : JSON.stringify(req.jobspec);
  const J = signNoneWrap(text, req.userid);
  return encodeRequest({ topic: TOPIC, payload: { J, urgency: req.urgency, flags: req.flags }, matchtag });
}

export const decode = (msg: FluxMessage): DecodedResponse => decodeResponse(msg);

/** The new job's id as a decimal string. */
export function parse(d: DecodedResponse): string {
  const text = payloadText(parseResponse(d).payload) ?? '';
  const id = exactIntegerMember(text, 'id');
  if (id === undefined || id.startsWith('-')) throw new SyntaxError(`job-ingest.submit: response without a job id: ${text}`);
  return id;
}
