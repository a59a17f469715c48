/**
 * One error root for jobscribe. `code` is stable text for programs, `retriable` says whether
 * trying again may help; subclasses name the edge where the error arose.
 */
export class JobscribeError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  constructor(message: string, opts: { code?: string; retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code ?? 'error';
    this.retriable = opts.retriable ?? false;
  }
}

/** A bad setting: names it and what is allowed. The CLI exits 2. */
export class ConfigError extends JobscribeError {
  constructor(message: string) {
    super(message, { code: 'config' });
  }
}

export class StoreError extends JobscribeError {
  constructor(message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { code: 'store', ...opts });
  }
}

export class LogError extends JobscribeError {
  constructor(message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { code: 'log', ...opts });
  }
}
