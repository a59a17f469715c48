/**
 * scribe — one per cluster. Reads its scheduler's job events through a SchedulerSource (Flux
 * journal, Slurm polling, or the simulator), wraps each in a v1 envelope and publishes it to the
 * cluster's events topic (`<prefix>.<cluster>.events`). The source's checkpoint is saved only
 * after the log accepted the events, so a crash re-publishes at most one batch, whose events
 * keep their (cluster, job_id, seq) identity and collapse in the read model. Publishing retries
 * with back-off while the log is unreachable: the scribe keeps running and loses nothing.
 *
 * Not here: which source or log is used (deploy/), executing commands (a later addition).
 */
import { eventsTopic, type EventLog } from '../log/eventLog.js';
import { retry } from '../log/retry.js';
import type { CheckpointStore } from './checkpoint.js';
import { toEnvelope, toLogMessage, type EnvelopeOrigin } from './envelope.js';
import type { SchedulerSource, SourceEvent } from './source.js';

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
  const emit = async (events: SourceEvent[], checkpoint: string): Promise<void> => {
    if (events.length > 0) {
      const now = Date.now() / 1000;
      const messages = events.map((ev) => toLogMessage(toEnvelope(origin, ev, now)));
      await retry(() => opts.log.publish(topic, messages), { signal: opts.signal, what: `publish to ${topic}` });
      stats.published += events.length;
      stats.batches += 1;
      stats.lastPublishAt = Date.now();
      opts.onPublished?.(events.length);
    }
    opts.checkpoints.save(checkpoint);
  };
  try {
    await opts.source.run({ checkpoint: opts.checkpoints.load(), signal: opts.signal, emit });
  } finally {
    await opts.source.close?.();
  }
  return stats;
}
