/**
 * A read model filled the way production fills it: seeded simulator runs (one per cluster) →
 * envelopes → embedded log → Projector → chDB `jobs` / `job_events`. Tests then recompute their
 * expectations from the raw events (`events` below, or the `job_events` table).
 */
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate, simulateSlurm, type SimOptionsInput } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { openTestClickHouse } from './chdb.js';

export interface SimReadModel {
  ch: Awaited<ReturnType<typeof openTestClickHouse>>;
  /** Every simulated event per cluster, in publish order. */
  events: Map<string, SourceEvent[]>;
  cleanup(): Promise<void>;
}

const PREFIX = 'jobscribe';

/** Simulates each cluster to the end (give each a maxJobs) and projects everything into chDB; `scheduler: 'slurm'` clusters emit Slurm events. */
export async function buildSimReadModel(database: string, clusters: SimOptionsInput[]): Promise<SimReadModel> {
  const ch = await openTestClickHouse(database);
  const log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20, maxBatchRecords: 5000 });
  const events = new Map<string, SourceEvent[]>();
  for (const sim of clusters) {
    if (sim.maxJobs === undefined && sim.untilTime === undefined) throw new Error('give each simulated cluster a maxJobs or untilTime');
    const cluster = sim.cluster ?? 'fluke';
    const slurm = sim.scheduler === 'slurm';
    const all = slurm ? [...simulateSlurm(sim)] : [...simulate(sim)];
    events.set(cluster, all);
    const origin = { cluster, scheduler: slurm ? ('slurm' as const) : ('flux' as const), scribe: { id: 'test', version: '0' } };
    const topic = eventsTopic(PREFIX, cluster);
    for (let i = 0; i < all.length; i += 2000) {
      await log.publish(topic, all.slice(i, i + 2000).map((e) => toLogMessage(toEnvelope(origin, e, sim.epoch ?? 1_800_000_000))));
    }
  }
  const projector = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: PREFIX });
  await projector.run(new AbortController().signal, { from: 'committed' }, true);
  await log.close();
  return { ch, events, cleanup: () => ch.cleanup() };
}
