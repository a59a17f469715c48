/**
 * scribe — one per cluster. Reads its scheduler's job events through a SchedulerSource (Flux
 * journal, Slurm polling, or the simulator), wraps each in a v1 envelope and publishes it to the
 * cluster's events topic (`<prefix>.<cluster>.events`). The source's checkpoint is saved only
 * after the log accepted the events, so a crash re-publishes at most one batch, whose events
 * keep their (cluster, job_id, seq) identity and collapse in the read model. Publishing retries
 * with back-off while the log is unreachable: the scribe keeps running and loses nothing.
 *
 * With `commands`, it also runs the cluster's command loop (commandLoop.ts) beside the events.
 * With a keyring, every envelope is signed (log/signing.ts) so the projector can tell it is ours.
 *
 * Not here: which source or log is used (deploy/).
 */
import { eventsTopic, type EventLog } from '../log/eventLog.js';
import { defaultOnRetry, retry } from '../log/retry.js';
import { CheckpointError, type CheckpointStore } from './checkpoint.js';
import { toEnvelope, toLogMessage, type EnvelopeOrigin } from './envelope.js';
import type { SchedulerSource, SourceEvent } from './source.js';
import { maybeSign, requireKey, type Keyring } from '../log/signing.js';
import { CommandLedger, runCommandLoop } from './commandLoop.js';
import type { CommandResult, Refusal } from '../schemas/commands/index.js';

export interface ScribeOptions {
  cluster: string;
  source: SchedulerSource;
  log: EventLog;
  topicPrefix: string;
  checkpoints: CheckpointStore;
  scribeId: string;
  version: string;
  signal: AbortSignal;
  onPublished?(count: number): void;
  /** A publish or checkpoint save failed and is retried (after the stderr line): for health and metrics. */
  onRetry?(step: 'publish' | 'checkpoint', err: unknown): void;
  /** Signs envelopes and command results, verifies commands (config `signingKeys`). */
  keyring?: Keyring;
  /** Execute the cluster's commands: the ledger file (in the checkpoint directory) and policy. */
  commands?: {
    ledgerPath: string;
    /** Refuse unsigned commands even without keys (config `requireSignatures`). */
    requireSignatures: boolean;
    onResult?(result: CommandResult): void;
    onRefusal?(refusal: Refusal): void;
    onWarning?(message: string): void;
  };
}

export interface ScribeStats {
  published: number;
  batches: number;
  lastPublishAt?: number;
}

export async function runScribe(opts: ScribeOptions): Promise<ScribeStats> {
  const topic = eventsTopic(opts.topicPrefix, opts.cluster);
  const origin: EnvelopeOrigin = {
    cluster: opts.cluster,
    scheduler: opts.source.scheduler,
    scribe: { id: opts.scribeId, version: opts.version },
  };
  const stats: ScribeStats = { published: 0, batches: 0 };
  const retried = (step: 'publish' | 'checkpoint', what: string) => {
    const log = defaultOnRetry(what);
    return (err: unknown, attempt: number, delayMs: number) => {
      log(err, attempt, delayMs);
      opts.onRetry?.(step, err);
    };
  };
  const emit = async (events: SourceEvent[], checkpoint: string): Promise<void> => {
    if (events.length > 0) {
      const now = Date.now() / 1000;
      const messages = events.map((ev) => toLogMessage(maybeSign(toEnvelope(origin, ev, now), opts.keyring, opts.cluster)));
      const what = `publish to ${topic}`;
      await retry(() => opts.log.publish(topic, messages), { signal: opts.signal, what, onRetry: retried('publish', what) });
      stats.published += events.length;
      stats.batches += 1;
      stats.lastPublishAt = Date.now();
      opts.onPublished?.(events.length);
    }
    // A full disk (ENOSPC) fails the save: wait and retry, as the publish does; the source waits too.
    const what = `save the ${opts.cluster} checkpoint${opts.checkpoints.where ? ` ${opts.checkpoints.where}` : ''}`;
    await retry(async () => opts.checkpoints.save(checkpoint), { signal: opts.signal, what, onRetry: retried('checkpoint', what) });
  };
  if (opts.keyring) requireKey(opts.keyring, opts.cluster);
  let commandLoop: Promise<void> | undefined;
  const stopCommands = new AbortController();
  const onAbort = () => stopCommands.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  if (opts.commands) {
    const c = opts.commands;
    commandLoop = runCommandLoop({
      cluster: opts.cluster,
      source: opts.source,
      log: opts.log,
      topicPrefix: opts.topicPrefix,
      ledger: new CommandLedger(c.ledgerPath),
      signing: { keyring: opts.keyring, require: c.requireSignatures },
      scribe: origin.scribe,
      signal: stopCommands.signal,
      ...(c.onResult ? { onResult: c.onResult } : {}),
      ...(c.onRefusal ? { onRefusal: c.onRefusal } : {}),
      ...(c.onWarning ? { onWarning: c.onWarning } : {}),
    });
  }
  // A failed command loop stops the whole scribe (and a stopped source stops the command loop).
  let commandError: { err: unknown } | undefined;
  const stopSource = new AbortController();
  const watched = commandLoop?.catch((err) => {
    if (stopCommands.signal.aborted) return;
    commandError = { err };
    stopSource.abort();
  });
  try {
    await opts.source
      .run({ checkpoint: opts.checkpoints.load(), signal: AbortSignal.any([opts.signal, stopSource.signal]), emit })
      .catch((err: unknown) => {
        // A source only sees the text: name the file, and say how to recover.
        throw err instanceof CheckpointError ? err.at(opts.checkpoints.where) : err;
      })
      .finally(() => stopCommands.abort());
    await watched;
    if (commandError) throw commandError.err;
  } finally {
    stopCommands.abort();
    opts.signal.removeEventListener('abort', onAbort);
    await commandLoop?.catch(() => undefined);
    await opts.source.close?.();
  }
  return stats;
}
