/**
 * flux-core's "none" signing mechanism (src/common/libjob/sign_none.c), which job-ingest accepts
 * from the instance owner only (a guest must sign with flux-security's munge/curve mechanisms,
 * which need libflux-security, so jobscribe submits only as the instance owner):
 *
 *   J      := base64(header) "." base64(payload) ".none"      (standard base64, with padding)
 *   header := "version" NUL "i1" NUL "userid" NUL "i<uid>" NUL "mech" NUL "snone" NUL
 *
 * The uid must equal the submitting connection's uid (job-ingest rejects "signer != requestor").
 * Pure.
 */

export function signNoneWrap(payload: string | Uint8Array, userid: number): string {
  if (!Number.isInteger(userid) || userid < 0 || userid > 0xffffffff) throw new RangeError(`bad userid ${userid}`);
  const header = Buffer.from(`version\0i1\0userid\0i${userid}\0mech\0snone\0`, 'latin1');
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return `${header.toString('base64')}.${body.toString('base64')}.none`;
}

/** The inverse (for tests and the fake broker): payload text and signer uid, or undefined. */
export function signNoneUnwrap(J: string): { payload: string; userid: number } | undefined {
  const parts = J.split('.');
  if (parts.length !== 3 || parts[2] !== 'none') return undefined;
  const header = Buffer.from(parts[0]!, 'base64').toString('latin1');
  if (!header.endsWith('\0')) return undefined;
  const kv = header.slice(0, -1).split('\0');
  if (kv.length % 2 !== 0) return undefined;
  const h = new Map<string, string>();
  for (let i = 0; i < kv.length; i += 2) h.set(kv[i]!, kv[i + 1]!);
  const uid = h.get('userid');
  if (h.get('version') !== 'i1' || h.get('mech') !== 'snone' || !uid || !/^i[0-9]+$/.test(uid)) return undefined;
  return { payload: Buffer.from(parts[1]!, 'base64').toString('utf8'), userid: Number(uid.slice(1)) };
}
