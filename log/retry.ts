/**
 * Retry with exponential back-off and jitter, for the edges that talk to brokers, schedulers
 * and databases. Only errors marked `retriable` (or unknown errors, which are usually I/O) are
 * retried; programmer errors (TypeError, RangeError, SyntaxError) and `bail`ed ones never are.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  signal?: AbortSignal;
  /** Give up after this many attempts (default: forever, until aborted). */
  retries?: number;
  initialMs?: number;
  maxMs?: number;
  what?: string;
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
}

export class Bail extends Error {}

export async function retry<T>(fn: (bail: (err: unknown) => never) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const initial = opts.initialMs ?? 200;
  const max = opts.maxMs ?? 30_000;
  const bail = (err: unknown): never => {
    throw Object.assign(new Bail('bail'), { cause: err });
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(bail);
    } catch (err) {
      if (err instanceof Bail) throw err.cause;
      if (!isRetriable(err) || opts.signal?.aborted || (opts.retries !== undefined && attempt > opts.retries)) throw err;
      const delay = Math.min(max, initial * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      (opts.onRetry ?? defaultOnRetry(opts.what))(err, attempt, delay);
      try {
        await sleep(delay, undefined, { signal: opts.signal });
      } catch {
        throw err;
      }
    }
  }
}

function isRetriable(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError) return false;
  const r = (err as { retriable?: unknown } | null)?.retriable;
  return r === undefined ? true : Boolean(r);
}

/** The default onRetry: one line on stderr naming what failed and when it is tried again. */
export function defaultOnRetry(what = 'operation') {
  return (err: unknown, attempt: number, delay: number) => {
    process.stderr.write(`jobscribe: ${what} failed (attempt ${attempt}): ${(err as Error).message}; retrying in ${Math.round(delay)} ms\n`);
  };
}
