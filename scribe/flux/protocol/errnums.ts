/**
 * Errnums a Flux broker puts in a response (Linux numbering, as flux-core sends them), as data:
 * name, whether trying again may help, and what it means to us. `errors.ts` turns a row into a
 * FluxError; `describeErrnum` is the fallback for numbers not listed.
 */

export interface ErrnumInfo {
  errnum: number;
  name: string;
  retriable: boolean;
  /** What the broker means by it, in our words (the broker's own text is kept too). */
  meaning: string;
}

const rows: ErrnumInfo[] = [
  { errnum: 1, name: 'EPERM', retriable: false, meaning: 'not permitted' },
  { errnum: 2, name: 'ENOENT', retriable: false, meaning: 'no such job or object' },
  { errnum: 4, name: 'EINTR', retriable: true, meaning: 'interrupted' },
  { errnum: 5, name: 'EIO', retriable: true, meaning: 'I/O error' },
  { errnum: 11, name: 'EAGAIN', retriable: true, meaning: 'temporarily unavailable' },
  { errnum: 12, name: 'ENOMEM', retriable: true, meaning: 'out of memory' },
  { errnum: 13, name: 'EACCES', retriable: false, meaning: 'access denied' },
  { errnum: 16, name: 'EBUSY', retriable: true, meaning: 'busy' },
  { errnum: 17, name: 'EEXIST', retriable: false, meaning: 'already exists' },
  { errnum: 22, name: 'EINVAL', retriable: false, meaning: 'invalid argument' },
  { errnum: 32, name: 'EPIPE', retriable: true, meaning: 'connection closed' },
  { errnum: 34, name: 'ERANGE', retriable: false, meaning: 'out of range' },
  { errnum: 38, name: 'ENOSYS', retriable: true, meaning: 'service missing' },
  { errnum: 61, name: 'ENODATA', retriable: false, meaning: 'end of stream' },
  { errnum: 62, name: 'ETIME', retriable: true, meaning: 'timer expired' },
  { errnum: 71, name: 'EPROTO', retriable: false, meaning: 'protocol error (malformed request)' },
  { errnum: 75, name: 'EOVERFLOW', retriable: false, meaning: 'value too large' },
  { errnum: 95, name: 'EOPNOTSUPP', retriable: false, meaning: 'operation not supported' },
  { errnum: 104, name: 'ECONNRESET', retriable: true, meaning: 'connection reset' },
  { errnum: 107, name: 'ENOTCONN', retriable: true, meaning: 'not connected' },
  { errnum: 110, name: 'ETIMEDOUT', retriable: true, meaning: 'timed out' },
  { errnum: 111, name: 'ECONNREFUSED', retriable: true, meaning: 'connection refused' },
  { errnum: 112, name: 'EHOSTDOWN', retriable: true, meaning: 'host is down' },
  { errnum: 113, name: 'EHOSTUNREACH', retriable: true, meaning: 'host unreachable' },
  { errnum: 114, name: 'EALREADY', retriable: false, meaning: 'already in progress' },
  { errnum: 125, name: 'ECANCELED', retriable: false, meaning: 'canceled' },
];

export const ERRNUMS: ReadonlyMap<number, ErrnumInfo> = new Map(rows.map((r) => [r.errnum, r]));
export const ERRNUM_BY_NAME: ReadonlyMap<string, ErrnumInfo> = new Map(rows.map((r) => [r.name, r]));

export const ENOENT = 2;
export const EPERM = 1;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENODATA = 61;
export const EPROTO = 71;

export function describeErrnum(errnum: number): ErrnumInfo {
  return ERRNUMS.get(errnum) ?? { errnum, name: `E${errnum}`, retriable: false, meaning: `error ${errnum}` };
}
