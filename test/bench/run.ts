/**
 * `npm run bench`: figures, not pass/fail. On the embedded default (chDB in a temp dir):
 *   - Flux journal decode rate (captured wire bytes → events)
 *   - simulator → embedded log publish rate (events/s)
 *   - embedded log → projector → ClickHouse rate (events/s), and `replay --rebuild` of the same log
 *   - RSS after each phase and the process's peak RSS (one process runs every phase), and the RSS
 *     of `jobscribe up` under a fast simulator over time (upRss.ts; BENCH_UP=0 skips)
 *   - MCP: every read-only tool's latency p50/p95 over an in-memory client on a read model of
 *     1M jobs / 10M events (BENCH_MCP_CLUSTERS × BENCH_MCP_JOBS; BENCH_MCP=0 skips; mcp.ts), and
 *     the tool-definition size in tokens
 *   - MCP over HTTP under load: 50 concurrent official-SDK clients, a fixed count of get_job /
 *     search_jobs / queue_summary calls with the simulator running, and identity B's get_job
 *     delay under identity A's heavy run_sql (mcpLoad.ts; BENCH_MCP_LOAD=0 skips, BENCH_ONLY=mcpload alone)
 *   - with JOBSCRIBE_BENCH_KAFKA=brokers: scribe → Kafka, Kafka → ClickHouse, event-to-queryable p50/p99
 *   - BENCH_ONLY=kafkaclients: only the Kafka clients side by side (kafkaClients.ts)
 * Size with BENCH_EVENTS (default 200000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { replay } from '../../projector/rebuild.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { benchJournalDecode } from './fluxDecode.js';
import { benchKafka, cpuSince, rss } from './kafka.js';
import { benchKafkaClients } from './kafkaClients.js';
import { benchMcp } from './mcp.js';
import { benchMcpLoad } from './mcpLoad.js';
import { benchUpRss } from './upRss.js';

const target = Number(process.env.BENCH_EVENTS ?? 200_000);


async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'mcp') return benchMcp();
  if (process.env.BENCH_ONLY === 'mcpload') return benchMcpLoad();
  if (process.env.BENCH_ONLY === 'kafkaclients') return benchKafkaClients();
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-bench-'));
  const ch = await openClickHouse({ dataDir, database: 'bench' });
  const log = createEmbeddedLog(ch.client, 'bench', { maxBatchRecords: 10_000 });
  const cluster = 'bench';
  const topic = eventsTopic('jobscribe', cluster);
  const origin = { cluster, scheduler: 'flux' as const, scribe: { id: 'bench', version: '0' } };
  console.log(`jobscribe bench — Node ${process.version}, target ${target} events`);

  // 0. Flux: decode the captured journal bytes (framing + journal JSON → events).
  console.log(`flux journal decode       ${Math.round(benchJournalDecode(5)).toLocaleString()} events/s (captured 2,038-response journal)`);

  // 1. Generate (in memory) then publish in scribe-sized batches.
  let t0 = performance.now();
  const events: SourceEvent[] = [];
  for (const e of simulate({ seed: 1, cluster, nodes: 256, submitRate: 400 })) {
    events.push(e);
    if (events.length >= target) break;
  }
  const genS = (performance.now() - t0) / 1000;
  console.log(`simulator generate        ${Math.round(events.length / genS).toLocaleString()} events/s (${events.length} events)`);

  t0 = performance.now();
  const now = Date.now() / 1000;
  for (let i = 0; i < events.length; i += 5000) {
    await log.publish(topic, events.slice(i, i + 5000).map((e) => toLogMessage(toEnvelope(origin, e, now))));
  }
  const pubS = (performance.now() - t0) / 1000;
  console.log(`scribe → embedded log     ${Math.round(events.length / pubS).toLocaleString()} events/s (batches of 5000)`);

  // 2. Project everything.
  const projector = new Projector({ clickhouse: ch.client, database: 'bench', log, topicPrefix: 'jobscribe' });
  t0 = performance.now();
  let c0 = process.cpuUsage();
  await projector.run(new AbortController().signal, { from: 'earliest' }, true);
  const projS = (performance.now() - t0) / 1000;
  console.log(
    `embedded log → projector  ${Math.round(projector.totals.events / projS).toLocaleString()} events/s, ${Math.round(projector.totals.events / cpuSince(c0)).toLocaleString()} per CPU-s (${projector.totals.batches} batches, ${rss()})`,
  );

  // 3. Rebuild: the whole log into fresh tables (what `replay --rebuild --no-swap` does).
  t0 = performance.now();
  c0 = process.cpuUsage();
  const rebuilt = await replay({ clickhouse: ch.client, database: 'bench', log, topicPrefix: 'jobscribe', start: { from: 'earliest' }, rebuild: true, swap: false, signal: new AbortController().signal });
  const rebS = (performance.now() - t0) / 1000;
  console.log(`replay --rebuild          ${Math.round(rebuilt.events / rebS).toLocaleString()} events/s, ${Math.round(rebuilt.events / cpuSince(c0)).toLocaleString()} per CPU-s (${rebuilt.events} events, ${rss()})`);

  await ch.close();
  rmSync(dataDir, { recursive: true, force: true });

  // `jobscribe up` (the built CLI) under a fast simulator: its RSS over time and the load it carried.
  if (process.env.BENCH_UP !== '0') await benchUpRss();
  else console.log('up rss: skipped (BENCH_UP=0)');

  // 3. MCP tools on a large read model (1M jobs / 10M events by default).
  if (process.env.BENCH_MCP !== '0') await benchMcp();
  else console.log('mcp: skipped (BENCH_MCP=0)');
  // 3b. MCP over HTTP under load: 50 concurrent SDK clients, a fixed count of calls (mcpLoad.ts).
  if (process.env.BENCH_MCP_LOAD !== '0') await benchMcpLoad();
  else console.log('mcp load: skipped (BENCH_MCP_LOAD=0)');

  // 4. The Kafka path, when a broker is given (e.g. JOBSCRIBE_BENCH_KAFKA=127.0.0.1:19092 after
  //    `bash deploy/kafka/kafka.sh start`).
  const kafkaBrokers = process.env.JOBSCRIBE_BENCH_KAFKA;
  if (kafkaBrokers) await benchKafka(kafkaBrokers);
  else console.log('kafka: skipped (set JOBSCRIBE_BENCH_KAFKA=host:port to measure the Kafka path)');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
