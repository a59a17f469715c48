/**
 * The reference for the Kafka → ClickHouse figure of `npm run bench`: ClickHouse's own Kafka
 * engine (inside the same chDB) consuming the same topic the projector read, with a materialized
 * view that extracts the job_events columns with JSONExtract* into a MergeTree of job_events'
 * layout. It only copies events (no validation, no fold, no dead letters, no jobs table), so it
 * is an upper bound for what the projector does, not a twin of it.
 *
 * The queue's column is `message`, not `raw`: an alias `raw` in the view would shadow it for every
 * other expression (all rows then collapse to one empty key).
 *
 * The rate runs from creating the view (the engine starts consuming then) until the target table
 * holds `expected` rows (polled every 50 ms), like the projector's from its start (group join
 * included); `steadyPerS` counts only from the first rows seen to the last. Tables live in their own database and are dropped.
 *
 * `kafkaEngineRateInChild` runs it in a child process with a chDB of its own: in a process that
 * closed a chDB before (the embedded bench does), creating a Kafka table fails with "Shutdown was
 * called".
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { openClickHouse } from '../../deploy/clickhouse.js';

export function kafkaEngineRateInChild(brokers: string, topic: string, expected: number, group: string): Promise<{ eventsPerS: number; rows: number; steadyPerS?: number; rssMiB: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fileURLToPath(import.meta.url), brokers, topic, String(expected), group], { timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`kafka engine reference failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as { eventsPerS: number; rows: number; steadyPerS?: number; rssMiB: number });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [brokers, topic, expected, group] = process.argv.slice(2) as [string, string, string, string];
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-bench-kafka-engine-'));
  const ch = await openClickHouse({ dataDir, database: 'kref_host' });
  try {
    const r = await kafkaEngineRate(ch.client, brokers, topic, Number(expected), { group });
    console.log(JSON.stringify({ ...r, rssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  } finally {
    await ch.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.exit(0);
}

export async function kafkaEngineRate(
  client: ClickHouseClient,
  brokers: string,
  topic: string,
  expected: number,
  opts: { database?: string; group: string; timeoutMs?: number },
): Promise<{ eventsPerS: number; rows: number; steadyPerS?: number }> {
  const db = opts.database ?? 'kref';
  const timeoutMs = opts.timeoutMs ?? 300_000;
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE ${db}.queue (message String) ENGINE = Kafka SETTINGS
              kafka_broker_list = '${brokers}', kafka_topic_list = '${topic}',
              kafka_group_name = '${opts.group}', kafka_format = 'JSONAsString',
              kafka_num_consumers = 1`,
  });
  await client.command({
    query: `CREATE TABLE ${db}.job_events (
              cluster LowCardinality(String), scheduler LowCardinality(String), job_id UInt64, seq UInt32,
              name LowCardinality(String), ts DateTime64(6, 'UTC'), ts_source LowCardinality(String),
              context String, raw String CODEC(ZSTD(3)), user String, scribe_id LowCardinality(String),
              published_at DateTime64(3, 'UTC'), log_topic LowCardinality(String), log_partition UInt32, log_offset UInt64)
            ENGINE = ReplacingMergeTree(log_offset) ORDER BY (cluster, job_id, seq)`,
  });
  const t0 = performance.now();
  await client.command({
    query: `CREATE MATERIALIZED VIEW ${db}.mv TO ${db}.job_events AS SELECT
              JSONExtractString(message, 'cluster') AS cluster,
              JSONExtractString(message, 'scheduler') AS scheduler,
              toUInt64OrZero(JSONExtractString(message, 'job_id')) AS job_id,
              JSONExtractUInt(message, 'seq') AS seq,
              JSONExtractString(message, 'name') AS name,
              toDateTime64(JSONExtractFloat(message, 'ts'), 6, 'UTC') AS ts,
              JSONExtractString(message, 'ts_source') AS ts_source,
              JSONExtractRaw(message, 'context') AS context,
              JSONExtractRaw(message, 'raw') AS raw,
              JSONExtractString(message, 'user') AS user,
              JSONExtractString(message, 'scribe', 'id') AS scribe_id,
              toDateTime64(JSONExtractFloat(message, 'published_at'), 3, 'UTC') AS published_at,
              _topic AS log_topic, _partition AS log_partition, _offset AS log_offset
            FROM ${db}.queue`,
  });
  let rows: number;
  let first: { at: number; rows: number } | undefined;
  try {
    for (;;) {
      const rs = await client.query({ query: `SELECT count() AS n FROM ${db}.job_events`, format: 'JSONEachRow' });
      rows = Number((await rs.json<{ n: string | number }>())[0]!.n);
      if (rows > 0 && !first) first = { at: performance.now(), rows };
      if (rows >= expected) break;
      if (performance.now() - t0 > timeoutMs) throw new Error(`kafka engine reference: ${rows} of ${expected} rows after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = performance.now();
    // After the first block landed: without the group join and the first flush wait.
    const steady = first && end > first.at && rows > first.rows ? (rows - first.rows) / ((end - first.at) / 1000) : undefined;
    return { eventsPerS: rows / ((end - t0) / 1000), rows, steadyPerS: steady };
  } finally {
    await client.command({ query: `DROP DATABASE IF EXISTS ${db} SYNC` }).catch(() => undefined);
  }
}
