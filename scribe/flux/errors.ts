/**
 * FluxError: an errnum from a Flux broker (or a failure of the connection to it), with the errno
 * name, whether trying again may help (from the data table in protocol/errnums.ts, honoured by
 * log/retry.ts) and the broker's own message. Built once, at `parse`, never inside `decode`.
 */
import { JobscribeError } from '../../schemas/errors.js';
import { describeErrnum } from './protocol/errnums.js';

export const CONNECTION_ERRNAME = 'ECONNECTION';

export class FluxError extends JobscribeError {
  /** Linux errno as the broker sent it (0 for a connection-level failure without one). */
  readonly errnum: number;
  /** Errno name, e.g. "ENOENT" (`name` stays the class name, as for every Error). */
  readonly errname: string;
  /** The RPC topic, when the error answers one. */
  readonly topic: string | undefined;
  /** The broker's message (error payload), when it sent one. */
  readonly brokerMessage: string | undefined;

  constructor(
    message: string,
    opts: { errnum: number; errname?: string; retriable?: boolean; topic?: string; brokerMessage?: string; cause?: unknown },
  ) {
    const info = describeErrnum(opts.errnum);
    super(message, { code: 'flux', retriable: opts.retriable ?? info.retriable, cause: opts.cause });
    this.errnum = opts.errnum;
    this.errname = opts.errname ?? info.name;
    this.topic = opts.topic;
    this.brokerMessage = opts.brokerMessage;
  }

  /** An error response to `topic`: "<topic>: <meaning> (<ERRNAME>): <broker text>". */
  static fromResponse(topic: string, errnum: number, brokerMessage?: string): FluxError {
    const info = describeErrnum(errnum);
    const text = brokerMessage && brokerMessage !== info.meaning ? `: ${brokerMessage}` : '';
    return new FluxError(`${topic}: ${info.meaning} (${info.name})${text}`, { errnum, topic, brokerMessage });
  }

  /**
   * The connection failed or closed (retriable: reconnecting may help). errnum 0 and errname
   * "ECONNECTION": a socket's own errno (say ENOENT for a missing socket) is in `cause`, never
   * mistaken for the broker's answer (ENOENT there means "no such job").
   */
  static connection(message: string, cause?: unknown, retriable = true): FluxError {
    return new FluxError(message, { errnum: 0, errname: CONNECTION_ERRNAME, retriable, cause });
  }
}

export function isFluxError(err: unknown): err is FluxError {
  return err instanceof FluxError;
}
