/**
 * The Kafka path of `npm run bench` (figures, not pass/fail), against the brokers given:
 *   - scribe → Kafka: simulated events wrapped into envelopes and published one batch at a time,
 *     as a scribe does (batches of 256, the simulator source's batch size, and of 5000);
 *   - Kafka → ClickHouse: the projector over the 256-batch topic from the earliest offset to the
 *     end (embedded chDB in a temp dir);
 *   - event-to-queryable latency p50/p99: with the projector running live, one small batch is
 *     published at a time; an event's latency runs from the publish call until the projector has
 *     written the batch holding it (its rows are queryable then: inserts are synchronous). Each
 *     round is checked with a query on job_events before the next one starts.
 * Topics get a fresh prefix (`bench-<time>`) and are left on the broker.
 *
 * Opens its own chDB, and a process can hold one chDB data directory at a time: call it after the
 * embedded bench closed its ClickHouse. Size with BENCH_KAFKA_EVENTS (default 50,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { eventsTopic, type EventLog } from '../../log/eventLog.js';
import { createKafkaLog } from '../../log/kafka.js';
import { Projector, type BatchProjected } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';
import { kafkaEngineRateInChild } from './kafkaEngine.js';
import type { SourceEvent } from '../../scribe/source.js';

const LATENCY_ROUNDS = 300;
const LATENCY_BATCH = 5;

/**
 * CPU seconds this process used since `since` (process.cpuUsage, all threads: chDB's too): on a
 * shared machine "events per CPU-second" moves far less than events per wall second.
 */
export function cpuSince(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** "rss N MiB, peak M MiB": the process's RSS now and its maximum so far. */
export function rss(): string {
  return `rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB, peak ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function take(n: number, cluster: string, seed: number): SourceEvent[] {
  const out: SourceEvent[] = [];
  for (const e of simulate({ seed, cluster, nodes: 256, submitRate: 400 })) {
    out.push(e);
    if (out.length >= n) break;
  }
  return out;
}

async function publishAll(log: EventLog, topic: string, cluster: string, events: SourceEvent[], batch: number): Promise<number> {
  const origin = { cluster, scheduler: 'flux' as const, scribe: { id: 'bench', version: '0' } };
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += batch) {
    const now = Date.now() / 1000;
    await log.publish(topic, events.slice(i, i + batch).map((e) => toLogMessage(toEnvelope(origin, e, now))));
  }
  return (performance.now() - t0) / 1000;
}

export async function benchKafka(brokers: string): Promise<void> {
  const n = Number(process.env.BENCH_KAFKA_EVENTS ?? 50_000);
  const prefix = `bench-${Date.now().toString(36)}`;
  const log = createKafkaLog({ brokers: brokers.split(','), clientId: 'jobscribe-bench', topicRefreshMs: 250, maxBatchRecords: 5000 });
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-bench-kafka-'));
  const ch = await openClickHouse({ dataDir, database: 'kbench' });
  const stop = new AbortController();
  try {
    console.log(`kafka bench — brokers ${brokers}, ${n} events, topic prefix ${prefix}`);
    const cluster = 'kbench';
    const events = take(n, cluster, 1);
    // Connect the producer (and let a fresh broker's coordinator load) outside the timings.
    await log.publish(eventsTopic(`${prefix}-warmup`, cluster), [{ key: 'warmup', value: '{}' }]);

    // 1. scribe → Kafka, one publish at a time (a scribe awaits each before the next).
    const s256 = await publishAll(log, eventsTopic(prefix, cluster), cluster, events, 256);
    console.log(`scribe → kafka            ${Math.round(events.length / s256).toLocaleString()} events/s (batches of 256, acks=all, gzip; ${rss()})`);
    const s5000 = await publishAll(log, eventsTopic(`${prefix}-big`, cluster), cluster, events, 5000);
    console.log(`scribe → kafka            ${Math.round(events.length / s5000).toLocaleString()} events/s (batches of 5000)`);

    // 2. Kafka → projector → ClickHouse, from the earliest offset to the end.
    const bulk = new Projector({ clickhouse: ch.client, database: 'kbench', log, topicPrefix: prefix, group: `${prefix}-projector` });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await bulk.run(stop.signal, { from: 'earliest' }, true);
    const projS = (performance.now() - t0) / 1000;
    console.log(
      `kafka → projector → chDB  ${Math.round(bulk.totals.events / projS).toLocaleString()} events/s, ${Math.round(bulk.totals.events / cpuSince(c0)).toLocaleString()} per CPU-s (${bulk.totals.events} events, ${bulk.totals.batches} batches, ` +
        `${rss()})`,
    );

    // 2b. The reference: ClickHouse's Kafka engine in the same chDB, on the same topic.
    const ref = await kafkaEngineRateInChild(brokers, eventsTopic(prefix, cluster), events.length, `${prefix}-kafka-engine`);
    const ours = bulk.totals.events / projS;
    console.log(
      `kafka engine (reference)  ${Math.round(ref.eventsPerS).toLocaleString()} events/s (${ref.rows} rows, JSONAsString + JSONExtract* view, same topic; ` +
        `${ref.steadyPerS === undefined ? '' : `${Math.round(ref.steadyPerS).toLocaleString()} events/s after its first rows; `}its process: peak rss ${ref.rssMiB} MiB)`,
    );
    console.log(`projector / kafka engine  ${(ours / ref.eventsPerS).toFixed(2)}`);

    // 3. Event-to-queryable latency with the projector running live.
    const latPrefix = `${prefix}-lat`;
    const latCluster = 'klat';
    const latTopic = eventsTopic(latPrefix, latCluster);
    const origin = { cluster: latCluster, scheduler: 'flux' as const, scribe: { id: 'bench', version: '0' } };
    const latEvents = take((LATENCY_ROUNDS + 1) * LATENCY_BATCH, latCluster, 2);
    const live = new Projector({ clickhouse: ch.client, database: 'kbench', log, topicPrefix: latPrefix, group: `${latPrefix}-projector` });
    let projected = 0;
    let roundStart = 0;
    let waiting: { until: number; resolve: () => void } | undefined;
    const latencies: number[] = [];
    let measuring = false;
    live.on('batch', (b: BatchProjected) => {
      projected += b.events;
      if (measuring) for (let i = 0; i < b.events; i++) latencies.push(performance.now() - roundStart);
      if (waiting && projected >= waiting.until) {
        const w = waiting;
        waiting = undefined;
        w.resolve();
      }
    });
    let liveError: unknown;
    const liveRun = live.run(stop.signal).catch((err: unknown) => {
      liveError = err;
      waiting?.resolve();
    });
    const visible = async () => {
      const rs = await ch.client.query({ query: `SELECT count() AS n FROM kbench.job_events WHERE cluster = '${latCluster}'`, format: 'JSONEachRow' });
      return Number((await rs.json<{ n: string | number }>())[0]!.n);
    };
    const acks: number[] = [];
    let published = 0;
    for (let round = 0; round <= LATENCY_ROUNDS; round++) {
      // Round 0 warms up: creates the topic and lets the live projector find it.
      measuring = round > 0;
      const batch = latEvents.slice(round * LATENCY_BATCH, (round + 1) * LATENCY_BATCH);
      published += batch.length;
      const reached = new Promise<void>((resolve) => (waiting = { until: published, resolve }));
      roundStart = performance.now();
      await log.publish(latTopic, batch.map((e) => toLogMessage(toEnvelope(origin, e, Date.now() / 1000))));
      if (measuring) acks.push(performance.now() - roundStart);
      await reached;
      if (liveError) throw liveError as Error;
      const seen = await visible();
      if (seen < published) throw new Error(`latency round ${round}: ${seen} of ${published} events queryable after the projector reported them`);
      await new Promise((r) => setTimeout(r, Math.random() * 20));
    }
    console.log(
      `event → queryable (kafka) p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms ` +
        `(${latencies.length} events, ${LATENCY_ROUNDS} publishes of ${LATENCY_BATCH}; publish ack p50 ${pct(acks, 50).toFixed(1)} ms)`,
    );
    stop.abort();
    await liveRun;
  } finally {
    stop.abort();
    await log.close();
    await ch.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
