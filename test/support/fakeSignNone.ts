/**
 * The fake broker's job-ingest unwrap: flux-core's sign-none unwrap, written again here from the
 * flux-core source and sharing nothing with the product (scribe/flux/protocol/submit/signNone.ts),
 * so that a J the product signs wrong is refused here as a real broker refuses it. Followed:
 *   src/common/libjob/sign_none.c        sign_none_unwrap, header_decode, payload_decode
 *   src/common/libccan/ccan/base64/base64.c  base64_decode (RFC 4648 alphabet; 4-char groups,
 *                                         a tail of 2..4 chars, '=' only at the very end)
 *   src/modules/job-ingest/job.c         job_create_from_request: request decoding, flags and
 *                                         urgency checks, "could not unwrap jobspec: %s",
 *                                         "signer=%lu != requestor=%lu", "jobspec: invalid JSON"
 *
 *   J      := header "." payload ".none"   (first '.' ends the header; the rest after the
 *                                          second '.' must be exactly ".none")
 *   header := base64 of the argz list  key NUL value NUL …  with exactly the keys "version"
 *             (value "i1"), "mechanism" (value "snone") and "userid" ("i" + decimal digits,
 *             strtoul, then truncated to uint32_t); any other key, a key without a value, or a
 *             missing key is EINVAL (values carry kv type prefixes: i = integer, s = string)
 * Pure.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const SIXBIT = new Map([...ALPHABET].map((c, i) => [c.charCodeAt(0), i]));
const EQ = 0x3d;

/** ccan base64_decode: the bytes, or undefined where it fails (EDOM / EINVAL). */
export function ccanBase64Decode(src: Uint8Array): Buffer | undefined {
  const out: number[] = [];
  const quartet = (q: number[]): boolean => {
    const v = q.map((c) => SIXBIT.get(c));
    if (v.some((x) => x === undefined)) return false;
    const [a, b, c, d] = v as [number, number, number, number];
    out.push(((a << 2) | (b >> 4)) & 0xff, (((b & 0xf) << 4) | (c >> 2)) & 0xff, (((c & 0x3) << 6) | d) & 0xff);
    return true;
  };
  let i = 0;
  for (; src.length - i > 4; i += 4) if (!quartet([...src.subarray(i, i + 4)])) return undefined;
  // the tail (0..4 chars): padding dropped, one char left is malformed, else padded with 'A'
  let insize = src.length - i;
  while (insize !== 0 && src[i + insize - 1] === EQ) insize--;
  if (insize === 0) return Buffer.from(out);
  if (insize === 1) return undefined;
  const tail = [...src.subarray(i, i + insize)];
  while (tail.length < 4) tail.push(0x41);
  if (!quartet(tail)) return undefined;
  out.length -= 3 - (insize - 1);
  return Buffer.from(out);
}

/** glibc argz_next over a NUL-terminated buffer: the entries (the last may lack its NUL). */
function argzEntries(buf: Buffer): string[] {
  const entries: string[] = [];
  let at = 0;
  while (at < buf.length) {
    const nul = buf.indexOf(0, at);
    const end = nul === -1 ? buf.length : nul;
    entries.push(buf.subarray(at, end).toString('latin1'));
    at = end + 1;
  }
  return entries;
}

const ULONG_MAX = 2n ** 64n - 1n;

/** header_decode: the signer uid, or undefined (EINVAL). */
function headerDecode(src: Uint8Array): number | undefined {
  const dst = ccanBase64Decode(src);
  if (!dst) return undefined;
  const entries = argzEntries(dst);
  let version: string | undefined;
  let userid: string | undefined;
  let mech: string | undefined;
  for (let k = 0; k < entries.length; k += 2) {
    const key = entries[k]!;
    const val = entries[k + 1];
    if (val === undefined) return undefined;
    if (key === 'version') version = val;
    else if (key === 'userid') userid = val;
    else if (key === 'mechanism') mech = val;
    else return undefined;
  }
  if (version !== 'i1' || mech !== 'snone' || userid === undefined || !/^i[0-9]/.test(userid)) return undefined;
  if (!/^i[0-9]+$/.test(userid)) return undefined; // strtoul must end at the NUL
  const n = BigInt(userid.slice(1));
  if (n > ULONG_MAX) return undefined; // ERANGE
  return Number(n & 0xffffffffn); // uint32_t userid = strtoul (…)
}

/** sign_none_unwrap: payload bytes and signer uid, or undefined (errno EINVAL). */
export function fluxSignNoneUnwrap(J: string): { payload: Buffer; userid: number } | undefined {
  const input = Buffer.from(J, 'utf8');
  const p = input.indexOf(0x2e);
  if (p === -1) return undefined;
  const userid = headerDecode(input.subarray(0, p));
  if (userid === undefined) return undefined;
  const rest = input.subarray(p + 1);
  const q = rest.indexOf(0x2e);
  if (q === -1 || rest.subarray(q).toString('latin1') !== '.none') return undefined;
  const payload = ccanBase64Decode(rest.subarray(0, q));
  return payload ? { payload, userid } : undefined;
}

/** job-ingest flags a request may carry: FLUX_JOB_DEBUG | FLUX_JOB_WAITABLE | FLUX_JOB_NOVALIDATE. */
const ALLOWED_FLAGS = 2 | 4 | 8;

export type IngestAnswer = { ok: true; jobspec: string; urgency: number } | { ok: false; errnum: number; message: string };

/**
 * job_create_from_request for the instance owner (the fake's only caller): the request body →
 * the unwrapped jobspec text, or the errnum and message job-ingest answers with.
 */
export function ingestRequest(body: Record<string, unknown>, connectionUid: number): IngestAnswer {
  const { J, urgency, flags } = body;
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (typeof J !== 'string' || J.includes('\0') || !isInt(urgency) || !isInt(flags)) {
    return { ok: false, errnum: 71, message: 'error decoding job request: Protocol error' };
  }
  if (flags & ~ALLOWED_FLAGS) return { ok: false, errnum: 71, message: 'invalid job flags' };
  if (urgency < 0 || urgency > 31) return { ok: false, errnum: 22, message: 'urgency range is [0:31]' };
  const un = fluxSignNoneUnwrap(J);
  if (!un) return { ok: false, errnum: 22, message: 'could not unwrap jobspec: Invalid argument' };
  if (un.userid !== connectionUid) return { ok: false, errnum: 1, message: `signer=${un.userid} != requestor=${connectionUid}` };
  const jobspec = un.payload.toString('utf8');
  try {
    JSON.parse(jobspec);
  } catch (err) {
    return { ok: false, errnum: 22, message: `jobspec: invalid JSON: ${(err as Error).message}` };
  }
  return { ok: true, jobspec, urgency };
}
