/**
 * The embedded event log: Kafka's semantics on two tables of the embedded ClickHouse
 * (`log_records`, `log_offsets`, schemas/clickhouse/001_log.sql). One partition per topic,
 * gap-free offsets assigned here, so ONE process owns a log (chDB's data directory lock enforces
 * that). Durable across restarts: a publish resolves after ClickHouse wrote the part.
 * Kafka (`kafka.ts`) is the scale path; scribe and projector cannot tell the two apart.
 *
 * A consumer rides out a failing ClickHouse (a full disk: "Cannot reserve 1.00 MiB, not enough
 * space", code 243 NOT_ENOUGH_SPACE) as a Kafka consumer rides out a broker outage: every read
 * and offset commit of `consume` is retried with back-off (log/retry.ts), with a warning per
 * attempt and one when it resumes, so `up` keeps serving reads and resumes by itself. A failed
 * commit is retried on its own: the batch it covers is not handed over again.
 */
import { EventEmitter } from 'node:events';
import type { ClickHouseClient } from '@clickhouse/client';
import { LogError } from '../schemas/errors.js';
import type { Batch, ConsumeOptions, EventLog, LogMessage, LogRecord, PartitionLag, StartPosition } from './eventLog.js';
import { millisToDateTime64 } from '../schemas/clickhouse/time.js';
import { retry } from './retry.js';

const PARTITION = 0;

interface Options {
  /**
   * Where consumers read records and offsets; default `client`. With embedded chDB a connection
   * runs one query at a time, so a reader of its own never waits behind a scribe's publishes.
   */
  readClient?: ClickHouseClient;
  pollIntervalMs?: number;
  maxBatchRecords?: number;
  /** Warnings of a consumer waiting for ClickHouse (default: a line on stderr). */
  onWarning?(message: string): void;
  /** Back-off of a consumer's retried reads and commits (ms; default 200 doubling to 30,000). */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** ClickHouse refusing a write for want of disk (code 243 NOT_ENOUGH_SPACE), or the OS (ENOSPC). */
export function isDiskFull(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown } | null;
  return e?.code === '243' || e?.type === 'NOT_ENOUGH_SPACE' || e?.code === 'ENOSPC' || /not enough space|NOT_ENOUGH_SPACE|ENOSPC/.test(typeof e?.message === 'string' ? e.message : '');
}

export function createEmbeddedLog(client: ClickHouseClient, database: string, options: Options = {}): EventLog {
  const pollMs = options.pollIntervalMs ?? 250;
  const defaultMax = options.maxBatchRecords ?? 5000;
  const table = `${database}.log_records`;
  const offsetsTable = `${database}.log_offsets`;
  const wakeups = new EventEmitter();
  wakeups.setMaxListeners(0);
  /** Next offset per topic, i.e. the high watermark of what is visible. Loaded lazily. */
  const next = new Map<string, bigint>();
  const locks = new Map<string, Promise<unknown>>();
  let topicsLoaded: Promise<void> | undefined;
  let commitVersion = BigInt(Date.now()) * 1000n;
  const warn = options.onWarning ?? ((m: string) => process.stderr.write(`jobscribe: ${m}\n`));

  /** One read or commit of a consumer, retried until it succeeds or the consumer stops. */
  async function patiently<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    let failures = 0;
    const out = await retry(fn, {
      signal,
      what,
      initialMs: options.retryInitialMs ?? 200,
      maxMs: options.retryMaxMs ?? 30_000,
      onRetry(err, attempt, delayMs) {
        failures = attempt;
        const hint = isDiskFull(err) ? ' — the disk of the data directory is full: free space and it resumes by itself' : '';
        warn(`embedded log: ${what} failed (attempt ${attempt}): ${(err as Error).message.trim()}${hint}; retrying in ${Math.round(delayMs)} ms (reads keep being served)`);
      },
    });
    if (failures > 0) warn(`embedded log: ${what} succeeded after ${failures + 1} attempts; resumed`);
    return out;
  }

  const reader = options.readClient ?? client;
  async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const rs = await reader.query({ query, query_params: params, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  async function loadTopics(): Promise<void> {
    topicsLoaded ??= (async () => {
      const found = await rows<{ topic: string; n: string }>(
        `SELECT topic, toString(max(offset) + 1) AS n FROM ${table} GROUP BY topic`,
      );
      for (const r of found) if (!next.has(r.topic)) next.set(r.topic, BigInt(r.n));
    })().catch((err) => {
      topicsLoaded = undefined;
      throw err;
    });
    return topicsLoaded;
  }

  async function highWatermark(topic: string): Promise<bigint> {
    await loadTopics();
    return next.get(topic) ?? 0n;
  }

  function withTopicLock<T>(topic: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(topic) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    locks.set(topic, run.catch(() => undefined));
    return run;
  }

  async function publish(topic: string, messages: LogMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await withTopicLock(topic, async () => {
      const first = await highWatermark(topic);
      const ts = millisToDateTime64(Date.now());
      const values = messages.map((m, i) => ({
        topic,
        partition: PARTITION,
        offset: (first + BigInt(i)).toString(),
        key: m.key,
        value: m.value,
        headers: m.headers ?? {},
        ts,
      }));
      const last = first + BigInt(messages.length - 1);
      try {
        await client.insert({
          table,
          values,
          format: 'JSONEachRow',
          clickhouse_settings: { insert_deduplication_token: `${topic}:${PARTITION}:${first}-${last}` },
        });
      } catch (err) {
        throw new LogError(`embedded log: publish to ${topic} failed: ${(err as Error).message}`, { retriable: true, cause: err });
      }
      next.set(topic, last + 1n);
      wakeups.emit('publish', topic);
    });
  }

  async function listTopics(): Promise<string[]> {
    await loadTopics();
    return [...next.keys()].sort();
  }

  async function matchingTopics(topics: string[] | RegExp): Promise<string[]> {
    if (Array.isArray(topics)) return topics;
    return (await listTopics()).filter((t) => topics.test(t));
  }

  async function committedOffset(group: string, topic: string): Promise<bigint | null> {
    const r = await rows<{ o: string }>(
      `SELECT toString(offset) AS o FROM ${offsetsTable} FINAL WHERE group = {group:String} AND topic = {topic:String} AND partition = ${PARTITION}`,
      { group, topic },
    );
    return r[0] ? BigInt(r[0].o) : null;
  }

  async function commit(group: string, topic: string, offset: bigint): Promise<void> {
    commitVersion = BigInt(Math.max(Number(commitVersion / 1000n), Date.now())) * 1000n + (commitVersion % 1000n) + 1n;
    await client.insert({
      table: offsetsTable,
      values: [{ group, topic, partition: PARTITION, offset: offset.toString(), version: commitVersion.toString() }],
      format: 'JSONEachRow',
      // Explicit: over chDB a previous insert's token would otherwise still be in effect.
      clickhouse_settings: { insert_deduplication_token: `commit:${group}:${topic}:${commitVersion}` },
    });
  }

  async function startOffset(group: string, topic: string, start: StartPosition): Promise<bigint> {
    switch (start.from) {
      case 'earliest':
        return 0n;
      case 'offset':
        if (start.partition !== undefined && start.partition !== PARTITION) return committedOrEarliest(group, topic);
        return start.offset;
      case 'time': {
        const [r] = await rows<{ n: string; o: string }>(
          `SELECT count() AS n, toString(min(offset)) AS o FROM ${table}
            WHERE topic = {topic:String} AND ts >= fromUnixTimestamp64Milli({t:Int64})`,
          { topic, t: Math.trunc(start.timestamp) },
        );
        return r && Number(r.n) > 0 ? BigInt(r.o) : highWatermark(topic);
      }
      case 'committed':
        return committedOrEarliest(group, topic);
    }
  }

  async function committedOrEarliest(group: string, topic: string): Promise<bigint> {
    return (await committedOffset(group, topic)) ?? 0n;
  }

  async function readRange(topic: string, from: bigint, to: bigint): Promise<LogRecord[]> {
    const r = await rows<{ o: string; key: string; value: string; headers: Record<string, string>; ms: string | number }>(
      `SELECT toString(offset) AS o, key, value, headers, toUnixTimestamp64Milli(ts) AS ms
         FROM ${table}
        WHERE topic = {topic:String} AND partition = ${PARTITION} AND offset >= {from:UInt64} AND offset < {to:UInt64}
        ORDER BY offset`,
      { topic, from: from.toString(), to: to.toString() },
    );
    return r.map((x) => ({
      topic,
      partition: PARTITION,
      offset: BigInt(x.o),
      key: x.key,
      value: x.value,
      headers: x.headers,
      timestamp: Number(x.ms),
    }));
  }

  async function consume(opts: ConsumeOptions): Promise<void> {
    try {
      await consumeUntilStopped(opts);
    } catch (err) {
      if (opts.signal.aborted) return; // stopped while waiting for ClickHouse
      throw err;
    }
  }

  async function consumeUntilStopped(opts: ConsumeOptions): Promise<void> {
    const { group, signal } = opts;
    const max = BigInt(opts.maxBatchRecords ?? defaultMax);
    const start = opts.start ?? { from: 'committed' };
    const positions = new Map<string, bigint>();
    const stopAt = new Map<string, bigint>();

    async function track(topic: string, initial: boolean): Promise<void> {
      if (positions.has(topic)) return;
      // Topics that appear after start are read from their beginning whatever the start position.
      const pos = await patiently(`read the position of ${group} on ${topic}`, signal, () => (initial ? startOffset(group, topic, start) : committedOrEarliest(group, topic)));
      positions.set(topic, pos);
      if (opts.stopAtEnd && initial) stopAt.set(topic, await patiently(`read the end of ${topic}`, signal, () => highWatermark(topic)));
    }
    const topicsNow = () => patiently('list topics', signal, () => matchingTopics(opts.topics));

    for (const t of await topicsNow()) await track(t, true);

    let lastTopicScan = Date.now();
    while (!signal.aborted) {
      if (Date.now() - lastTopicScan > 1000) {
        for (const t of await topicsNow()) await track(t, false);
        lastTopicScan = Date.now();
      }
      if (opts.stopAtEnd && [...stopAt].every(([t, end]) => (positions.get(t) ?? 0n) >= end)) return;

      let progressed = false;
      for (const [topic, pos] of positions) {
        if (signal.aborted) return;
        const hw = await patiently(`read the end of ${topic}`, signal, () => highWatermark(topic));
        const limit = opts.stopAtEnd && stopAt.has(topic) ? minBig(hw, stopAt.get(topic)!) : hw;
        if (pos >= limit) continue;
        const records = await patiently(`read ${topic}@${pos}`, signal, () => readRange(topic, pos, minBig(limit, pos + max)));
        if (records.length === 0) continue;
        const batch: Batch = {
          topic,
          partition: PARTITION,
          records,
          firstOffset: records[0]!.offset,
          lastOffset: records[records.length - 1]!.offset,
          highWatermark: hw,
        };
        await opts.eachBatch(batch);
        // Only the commit is retried: the batch was handled, and is not handed over again.
        await patiently(`commit ${group} on ${topic} at ${batch.lastOffset + 1n}`, signal, () => commit(group, topic, batch.lastOffset + 1n));
        positions.set(topic, batch.lastOffset + 1n);
        progressed = true;
      }
      if (!progressed) await waitForPublish(signal, pollMs);
    }
  }

  function waitForPublish(signal: AbortSignal, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeups.off('publish', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakeups.on('publish', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async function lag(group: string, topics: string[] | RegExp): Promise<PartitionLag[]> {
    const out: PartitionLag[] = [];
    for (const topic of await matchingTopics(topics)) {
      const committed = await committedOffset(group, topic);
      const hw = await highWatermark(topic);
      out.push({ topic, partition: PARTITION, committed, highWatermark: hw, lag: hw - (committed ?? 0n) });
    }
    return out;
  }

  return {
    kind: 'embedded',
    publish,
    consume,
    lag,
    listTopics,
    async setCommitted(group, positions) {
      for (const p of positions) await commit(group, p.topic, p.offset);
    },
    close: async () => {
      wakeups.removeAllListeners();
    },
  };
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
