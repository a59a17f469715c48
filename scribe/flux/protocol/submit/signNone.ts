/**
 * flux-core's "none" signing mechanism (src/common/libjob/sign_none.c, sign_none_wrap), which
 * job-ingest accepts from the instance owner only (a guest must sign with flux-security's munge/
 * curve mechanisms, which need libflux-security, so jobscribe submits only as the instance owner):
 *
 *   J      := base64(header) "." base64(payload) ".none"      (standard base64, with padding)
 *   header := "version" NUL "i1" NUL "userid" NUL "i<uid>" NUL "mechanism" NUL "snone" NUL
 *
 * header_decode accepts exactly the keys version, userid and mechanism (any other key, "mech"
 * included, makes job-ingest answer EINVAL "could not unwrap jobspec: Invalid argument").
 * The uid must equal the submitting connection's uid (job-ingest rejects "signer != requestor").
 * Pure. test/support/fakeSignNone.ts is the broker side, written separately from flux-core.
 */

export function signNoneWrap(payload: string | Uint8Array, userid: number): string {
  if (!Number.isInteger(userid) || userid < 0 || userid > 0xffffffff) throw new RangeError(`bad userid ${userid}`);
  const header = Buffer.from(`version\0i1\0userid\0i${userid}\0mechanism\0snone\0`, 'latin1');
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return `${header.toString('base64')}.${body.toString('base64')}.none`;
}
