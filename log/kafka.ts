/**
 * The Kafka event log: `EventLog` (eventLog.ts) on Apache Kafka through kafkajs. This is the ONLY
 * module that imports kafkajs; everything Kafka-client-specific (error classes, log levels,
 * offsets as strings, group protocol quirks, the broker probe of test prerequisites) stays in
 * here, so the client can be swapped later (README "Kafka client" says when;
 * test/unit/kafkaClientBoundary.unit.test.ts keeps other files from importing a client).
 *
 * What it owns, per `createKafkaLog` call: one Kafka client, one lazily connected admin, one
 * lazily connected idempotent producer (recreated after any failed send), and one kafkajs
 * consumer per running `consume` (recreated when new matching topics appear).
 *
 * Our semantics → Kafka's
 *  - topic / partition / offset / key / headers: Kafka's own. A record's `timestamp` is its
 *    CreateTime (set by the producer), which is also what `from: 'time'` searches.
 *  - publish: resolved = acknowledged by all in-sync replicas (acks -1) from an idempotent
 *    producer with one request in flight, so per-partition order holds across broker retries.
 *    All events of a job share a key → same partition (Java-compatible murmur2 partitioner) →
 *    ordered. Topics are created explicitly (numPartitions, waitForLeaders) on first publish;
 *    the producer itself never auto-creates (a broker's auto-create would use its own
 *    `num.partitions`). Publishes to one topic are serialised, as in the embedded log.
 *  - consume: a consumer in `group`, autoCommit off. Each kafkajs batch is cut into our Batches
 *    of at most `maxBatchRecords`; after `eachBatch` resolved we resolve the offset and commit
 *    `last + 1` (Kafka's committed offset = next offset to read). If `eachBatch` throws nothing
 *    more is processed or committed, the consumer leaves the group and `consume` rejects with
 *    that error. A long `eachBatch` keeps the group membership alive with heartbeats.
 *    Each group join (the first, and every rebalance) calls `onAssigned` with the partitions
 *    now owned, before their first batch: another member may have read them meanwhile.
 *  - start positions (applied when the consumer joins the group, before its first fetch):
 *      committed  Kafka's committed offset; partitions without one start at the earliest offset
 *                 (`fromBeginning`), and that earliest offset is committed at once, so `lag`
 *                 reports a position for every partition a group has been assigned.
 *      earliest / offset / time
 *                 computed per partition up front (low watermark; the given offset clamped to
 *                 [low, high]; ListOffsets by timestamp, high watermark if nothing is that
 *                 recent), then `seek`ed on the partitions assigned at the group's first join
 *                 and committed right away, so a later rebalance or restart resumes from there.
 *                 Meant for a fresh group with one member (what replay/rebuild use).
 *    `{ from: 'offset', partition }` applies the offset to that partition only; the others
 *    start as for 'committed'.
 *  - new topics: kafkajs resolves a RegExp subscription only at subscribe time, so we subscribe
 *    to the explicit list of matching topics and re-list topics every `topicRefreshMs`. When
 *    new matching topics exist, the consumer finishes its in-flight batch (and its commit),
 *    leaves the group, and a new consumer joins with the larger list; committed offsets carry
 *    the position over. New topics are read from their committed-or-earliest position whatever
 *    the start position (same as the embedded log). A topic list (not a pattern) may name
 *    topics that do not exist yet: they are picked up the same way once created.
 *  - stopAtEnd: the high watermarks of all partitions of the initially matching topics are
 *    recorded at start; consume returns once every one of them is reached by the group's
 *    position (ours, or the committed one: other group members count too). Partitions that
 *    are already at their end count as reached, so an all-caught-up group returns at once.
 *    A partition that reached its end is paused, so nothing after the end is delivered.
 *    Positions advance with the records we hand out, which assumes what this log writes:
 *    non-transactional, non-compacted topics (no offset gaps before the high watermark).
 *  - lag: admin offsets per partition; `committed` null when the group has none, then lag is
 *    counted from the low watermark (what a new group would read).
 *  - setCommitted: only for a group without active members (checked; a LogError otherwise).
 *    A short-lived member joins the empty group, commits the positions with the group's
 *    generation, and leaves (kafkajs' admin.setOffsets does the same but waits a whole fetch
 *    interval per topic).
 *  - errors: every failure leaves this module as a `LogError`; `retriable` is false only for
 *    what retrying cannot fix (authentication/authorization, invalid topic, message too large,
 *    unsupported version, a group with active members). Unreachable brokers are retriable and
 *    the message names the brokers, so the scribe's retry-with-backoff (retry.ts) rides out an
 *    outage.
 *  - outages while consuming: a running `consume` does not fail. kafkajs restarts its consumer
 *    until the brokers answer again (one warn line per restart); setting up a consume (listing
 *    topics, reading offsets, joining) is retried with back-off until it works or is aborted;
 *    admin reads briefly retry a coordinator that is still loading (fresh/restarted broker),
 *    which kafkajs' fetchOffsets/describeGroups do not. Only non-retriable errors (and a
 *    failed eachBatch) make it reject.
 *
 * Tuning
 *  - Bounded client retries (`retries`, default 3, back-off 200 ms doubling to 2 s): against a
 *    stopped broker a publish fails in ~1.3 s (connection refused); when connects time out
 *    instead, it takes about connectionTimeoutMs × (retries + 1). kafkajs' idempotent producer
 *    would otherwise retry forever and `publish` would hang through an outage. The outer retry
 *    (retry.ts) owns the long back-off. The price is the one kafkajs warns about ("Limiting
 *    retries … may invalidate EoS", logged at debug): a batch the broker stored but whose ack
 *    was lost is sent again under a fresh producer id, i.e. a duplicate. That is within the
 *    log's at-least-once contract; the projector dedups. We recreate the producer after every
 *    failed send, so a producer never gets wedged on stale sequence numbers or a producer id
 *    the broker forgot.
 *  - Batching: kafkajs has no linger; one `send` is one produce request. The scribe already
 *    publishes events in batches, so a `publish` is sent as one request, cut into chunks of at
 *    most `maxPublishBytes` (1 MiB uncompressed by default; brokers reject a record batch over
 *    `message.max.bytes`, 1 MiB by default, counted after compression).
 *  - Compression: gzip, built into kafkajs (snappy/lz4/zstd need extra codec packages). JSON
 *    envelopes shrink several-fold; the CPU cost is small at job-event rates.
 *  - numPartitions 6: caps the projector's parallelism per cluster at 6 consumers (and divides
 *    evenly among 1, 2, 3 or 6), costs little on a broker, and keeps per-job order (key →
 *    partition). Choose it up front: adding partitions later remaps keys, which breaks per-key
 *    order across the change.
 *  - Fetch: `fetchMaxWaitMs` 500 ms (Java's fetch.max.wait.ms) bounds how long stopping waits
 *    for an idle long-poll; maxBytesPerPartition stays at kafkajs' 1 MiB.
 *  - Logs: kafkajs logs retried, recovered conditions at ERROR (coordinator loading, no leader
 *    yet, connection refused while the retry loop still runs). Those go to `debug`; other
 *    kafkajs errors and warnings to `warn`; kafkajs INFO (lifecycle chatter) to `debug`.
 *    Failures that matter reach callers as LogErrors.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  CompressionTypes,
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaMessage,
  type LogEntry,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { LogError } from '../schemas/errors.js';
import { retry } from './retry.js';
import type { Batch, ConsumeOptions, EventLog, LogMessage, LogRecord, PartitionLag, StartPosition } from './eventLog.js';

export type KafkaLogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface KafkaTlsOptions {
  /** CA certificate(s): PEM text, or a path to a PEM file. */
  ca?: string;
  /** Client certificate for mutual TLS: PEM text or a path. */
  cert?: string;
  /** Client key: PEM text or a path. */
  key?: string;
  passphrase?: string;
  /** Default true. */
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface KafkaSaslOptions {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaLogOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  clientId: string;
  /** true: TLS with the system CAs; an object: TLS with these certificates. */
  ssl?: boolean | KafkaTlsOptions;
  sasl?: KafkaSaslOptions;
  /** Partitions of topics this log creates (on first publish). Default 6. */
  numPartitions?: number;
  /** Replication factor of topics this log creates. Default: the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Receives kafkajs' own log lines, mapped to our levels. Default: warn and error to stderr. */
  logger?: (level: KafkaLogLevel, message: string) => void;
  /** TCP connect timeout per broker. Default 3000 ms. */
  connectionTimeoutMs?: number;
  /** Request timeout (also the broker-side produce timeout). Default 30000 ms. */
  requestTimeoutMs?: number;
  /** kafkajs-internal retries of one operation before it fails as a retriable LogError. Default 3. */
  retries?: number;
  /** How often a running consume re-lists topics to find new matching ones. Default 2000 ms. */
  topicRefreshMs?: number;
  /** Longest a fetch waits on the broker for new records. Default 500 ms. */
  fetchMaxWaitMs?: number;
  /** Default for ConsumeOptions.maxBatchRecords. Default 5000. */
  maxBatchRecords?: number;
  /** A publish is sent in requests of at most this many (uncompressed) bytes. Default 1 MiB. */
  maxPublishBytes?: number;
}

const DEFAULT_PARTITIONS = 6;
/** Broker answers that mean "not ready yet, ask again shortly" (fresh or restarted broker, moved leader). */
const COORDINATOR_TRANSIENT = [
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'REBALANCE_IN_PROGRESS',
];
/** About 10 s in all (100 ms doubling to 1 s). */
const ADMIN_TRANSIENT_ATTEMPTS = 14;
const HEARTBEAT_MS = 3000;
const CONSUMER_METADATA_MAX_AGE_MS = 30_000;

/** Errors retrying cannot fix (Kafka protocol error types and kafkajs error names). */
const PERMANENT_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_TOPIC_EXCEPTION',
  'INVALID_PARTITIONS',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_REPLICA_ASSIGNMENT',
  'INVALID_CONFIG',
  'INVALID_REQUEST',
  'INVALID_REQUIRED_ACKS',
  'INVALID_RECORD',
  'INVALID_GROUP_ID',
  'POLICY_VIOLATION',
  'UNSUPPORTED_VERSION',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'ILLEGAL_SASL_STATE',
]);
const PERMANENT_NAMES = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSNotImplemented', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError']);

/** kafkajs messages (and `error` fields) for conditions it retries and recovers from itself. */
const TRANSIENT = new RegExp(
  [
    'coordinator is loading',
    'coordinator is not available',
    'not the correct coordinator',
    'does not host this topic-partition',
    'no leader for this topic-partition',
    'leader (is )?not available',
    'not leader',
    'not the leader',
    'rebalanc',
    'not aware of this member',
    'unknown member',
    'heartbeat',
    'Connection error',
    'ECONNREFUSED',
    'ECONNRESET',
    'EPIPE',
    'Connection timeout',
    'Closed connection',
    'Connection closed',
    'Request .* timed out',
    'Failed to connect to seed broker',
    'Limiting retries for the idempotent producer',
    'Restarting the consumer',
  ].join('|'),
  'i',
);

export function createKafkaLog(options: KafkaLogOptions): EventLog {
  if (options.brokers.length === 0) throw new LogError('kafka log: no brokers given', { retriable: false });
  const brokers = [...options.brokers];
  const where = `brokers ${brokers.join(',')}`;
  const numPartitions = options.numPartitions ?? DEFAULT_PARTITIONS;
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const topicRefreshMs = options.topicRefreshMs ?? 2000;
  const fetchMaxWaitMs = options.fetchMaxWaitMs ?? 500;
  const defaultMaxBatch = options.maxBatchRecords ?? 5000;
  const maxPublishBytes = options.maxPublishBytes ?? 1024 * 1024;
  const clientRetry = { retries: options.retries ?? 3, initialRetryTime: 200, maxRetryTime: 2000 };
  const emit = options.logger ?? defaultLogger;

  const kafka = new Kafka({
    clientId: options.clientId,
    brokers,
    ssl: tlsOptions(options.ssl),
    sasl: options.sasl ? saslOptions(options.sasl) : undefined,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout,
    retry: clientRetry,
    logLevel: logLevel.INFO,
    logCreator: () => (entry: LogEntry) => {
      const { level, text } = mapLogEntry(entry);
      emit(level, text);
    },
  });

  const closing = new AbortController();
  const running = new Set<Promise<void>>();
  const knownTopics = new Set<string>();
  const topicLocks = new Map<string, Promise<unknown>>();
  let adminP: Promise<Admin> | undefined;
  let producerP: Promise<Producer> | undefined;
  let closed: Promise<void> | undefined;

  // ---------------------------------------------------------------- errors

  function toLogError(what: string, err: unknown): LogError {
    if (err instanceof LogError) return err;
    return new LogError(`kafka log: ${what} failed (${where}): ${describe(err)}`, { retriable: isRetriable(err), cause: err });
  }

  async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toLogError(what, err);
    }
  }

  function ensureOpen(): void {
    if (closing.signal.aborted) throw new LogError('kafka log: closed', { retriable: false });
  }

  // ---------------------------------------------------------------- admin

  function admin(): Promise<Admin> {
    adminP ??= (async () => {
      const a = kafka.admin({ retry: clientRetry });
      try {
        await a.connect();
      } catch (err) {
        adminP = undefined;
        await a.disconnect().catch(() => undefined);
        throw err;
      }
      return a;
    })();
    return adminP;
  }

  /**
   * An admin operation. Some kafkajs admin calls (fetchOffsets, describeGroups) do not retry a
   * coordinator that is still loading or moving, which a fresh or restarted broker answers for a
   * few seconds: those are retried here, briefly. A connection-level failure drops the admin so
   * the next call reconnects.
   */
  async function withAdmin<T>(what: string, fn: (a: Admin) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const p = admin();
      try {
        return await fn(await p);
      } catch (err) {
        // kafkajs' admin reads `cluster.metadata()` without checking it; around a broker restart it
        // can be null and the call dies with a TypeError inside kafkajs (seen on listTopics in the
        // broker-outage test). That is a connection glitch, not a bug of ours: reconnect and retry.
        const glitch = err instanceof TypeError && /[\\/]kafkajs[\\/]/.test(err.stack ?? '');
        if (glitch && adminP === p) {
          adminP = undefined;
          void p.then((a) => a.disconnect()).catch(() => undefined);
        }
        if (attempt < ADMIN_TRANSIENT_ATTEMPTS && (glitch || COORDINATOR_TRANSIENT.some((t) => hasType(err, t))) && !closing.signal.aborted) {
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** (attempt - 1))));
          continue;
        }
        if (glitch) throw new LogError(`kafka log: ${what} failed (${where}): kafkajs lost its metadata while reconnecting (${(err).message})`, { retriable: true, cause: err });
        if (isRetriable(err) && !errorChain(err).some((e) => typeof e.type === 'string') && adminP === p) {
          adminP = undefined;
          void p.then((a) => a.disconnect()).catch(() => undefined);
        }
        throw toLogError(what, err);
      }
    }
  }

  async function existingTopics(): Promise<string[]> {
    const all = await withAdmin('list topics', (a) => a.listTopics());
    return all.filter((t) => !t.startsWith('__')).sort();
  }

  async function matchingTopics(topics: string[] | RegExp): Promise<string[]> {
    const existing = await existingTopics();
    if (Array.isArray(topics)) {
      const have = new Set(existing);
      return [...new Set(topics)].filter((t) => have.has(t));
    }
    return existing.filter((t) => {
      topics.lastIndex = 0;
      return topics.test(t);
    });
  }

  interface PartitionEnds {
    partition: number;
    low: bigint;
    high: bigint;
  }

  async function partitionEnds(topic: string): Promise<PartitionEnds[]> {
    const offs = await withAdmin(`read offsets of ${topic}`, (a) => a.fetchTopicOffsets(topic));
    return offs.map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) })).sort((x, y) => x.partition - y.partition);
  }

  /** topic/partition → committed offset of `group` (null: none). */
  async function committedOffsets(group: string, topics: string[]): Promise<Map<string, bigint | null>> {
    const out = new Map<string, bigint | null>();
    if (topics.length === 0) return out;
    const res = await withAdmin(`read committed offsets of group ${group}`, (a) => a.fetchOffsets({ groupId: group, topics }));
    for (const t of res) for (const p of t.partitions) out.set(tp(t.topic, p.partition), Number(p.offset) < 0 ? null : BigInt(p.offset));
    return out;
  }

  async function ensureTopic(topic: string): Promise<void> {
    if (knownTopics.has(topic)) return;
    await withAdmin(`create topic ${topic}`, async (a) => {
      const topics = await a.listTopics();
      if (!topics.includes(topic)) {
        await a.createTopics({
          topics: [{ topic, numPartitions, ...(options.replicationFactor ? { replicationFactor: options.replicationFactor } : {}) }],
          waitForLeaders: true,
          timeout: requestTimeout,
        });
      }
    });
    knownTopics.add(topic);
  }

  // ---------------------------------------------------------------- publish

  function producer(): Promise<Producer> {
    producerP ??= (async () => {
      const p = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: clientRetry,
      });
      try {
        await p.connect();
      } catch (err) {
        producerP = undefined;
        await p.disconnect().catch(() => undefined);
        throw err;
      }
      return p;
    })();
    return producerP;
  }

  /** Forget the producer after a failed send; the next publish makes a fresh one. */
  function dropProducer(p: Promise<Producer>): void {
    if (producerP === p) producerP = undefined;
    void p.then((x) => x.disconnect()).catch(() => undefined);
  }

  function withTopicLock<T>(topic: string, fn: () => Promise<T>): Promise<T> {
    const prev = topicLocks.get(topic) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    topicLocks.set(topic, tail);
    void tail.then(() => {
      if (topicLocks.get(topic) === tail) topicLocks.delete(topic);
    });
    return run;
  }

  async function sendChunk(topic: string, chunk: LogMessage[], topicRecreated = false): Promise<void> {
    const p = producer();
    try {
      await (
        await p
      ).send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        timeout: requestTimeout,
        messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
      });
    } catch (err) {
      dropProducer(p);
      if (!topicRecreated && hasType(err, 'UNKNOWN_TOPIC_OR_PARTITION')) {
        // The topic vanished since we created it (deleted, or a wiped broker): create it again.
        knownTopics.delete(topic);
        await ensureTopic(topic);
        return sendChunk(topic, chunk, true);
      }
      throw toLogError(`publish of ${chunk.length} messages to ${topic}`, err);
    }
  }

  async function publish(topic: string, messages: LogMessage[]): Promise<void> {
    ensureOpen();
    if (messages.length === 0) return;
    await withTopicLock(topic, async () => {
      await ensureTopic(topic);
      for (const chunk of chunks(messages, maxPublishBytes)) await sendChunk(topic, chunk);
    });
  }

  // ---------------------------------------------------------------- consume

  interface Pending {
    offset: bigint;
    /** 'seek': an explicit start position; 'fill': no committed offset yet, commit the earliest. */
    kind: 'seek' | 'fill';
  }

  interface Session {
    consumer: Consumer;
    stopping: boolean;
    inFlight: Set<Promise<void>>;
    commits: Promise<unknown>;
    /** Partitions whose pending start positions are to be committed at the next fetch. */
    toInit: { topic: string; partition: number }[];
  }

  async function consume(opts: ConsumeOptions): Promise<void> {
    ensureOpen();
    const run = consumeLoop(opts);
    running.add(run);
    try {
      await run;
    } finally {
      running.delete(run);
    }
  }

  async function consumeLoop(opts: ConsumeOptions): Promise<void> {
    const { group } = opts;
    const start: StartPosition = opts.start ?? { from: 'committed' };
    const maxRecords = Math.max(1, opts.maxBatchRecords ?? defaultMaxBatch);
    const stopped = () => opts.signal.aborted || closing.signal.aborted;
    if (stopped()) return;

    let wakeUp: (() => void) | undefined;
    const wake = () => wakeUp?.();
    const onAbort = () => wake();
    opts.signal.addEventListener('abort', onAbort);
    closing.signal.addEventListener('abort', onAbort);
    const stopSignal = AbortSignal.any([opts.signal, closing.signal]);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          resolve();
        }
        wakeUp = done;
      });
    /** Setup steps ride out broker outages like kafkajs' own consumer does; non-retriable errors end consume. */
    const patiently = <T>(what: string, fn: () => Promise<T>) =>
      retry(fn, {
        signal: stopSignal,
        initialMs: 250,
        maxMs: 10_000,
        what,
        onRetry: (err, attempt, delay) => emit('warn', `${(err as Error).message} (attempt ${attempt}, again in ${Math.round(delay)} ms)`),
      });

    let fatal: unknown;
    const pending = new Map<string, Pending>();
    const positions = new Map<string, bigint>();
    const ends = new Map<string, bigint>();
    let firstJoin = true;

    function fail(err: unknown): void {
      fatal ??= err;
      wake();
    }

    const reachedEnd = (key: string) => {
      const end = ends.get(key);
      return end !== undefined && (positions.get(key) ?? -1n) >= end;
    };
    const allAtEnd = () => [...ends.keys()].every(reachedEnd);

    /** Start positions of the initially matching topics (see the header comment). */
    async function planStart(topics: string[]): Promise<void> {
      const committed = await committedOffsets(group, topics);
      for (const topic of topics) {
        const parts = await partitionEnds(topic);
        const byTime = new Map<number, bigint>();
        if (start.from === 'time') {
          const at = Math.trunc(start.timestamp);
          const found = await withAdmin(`find offsets by time in ${topic}`, (a) => a.fetchTopicOffsetsByTimestamp(topic, at));
          for (const o of found) byTime.set(o.partition, BigInt(o.offset));
        }
        for (const { partition, low, high } of parts) {
          const key = tp(topic, partition);
          const c = committed.get(key) ?? null;
          // Where Kafka itself would start for this group: committed, or earliest when there is
          // none or it is out of range (auto.offset.reset = earliest).
          const committedPos = c === null || c < low || c > high ? low : c;
          let target = committedPos;
          let explicit = false;
          switch (start.from) {
            case 'earliest':
              target = low;
              explicit = true;
              break;
            case 'offset':
              if (start.partition === undefined || start.partition === partition) {
                target = clamp(start.offset, low, high);
                explicit = true;
              }
              break;
            case 'time':
              target = clamp(byTime.get(partition) ?? high, low, high);
              explicit = true;
              break;
            case 'committed':
              break;
          }
          if (explicit) pending.set(key, { offset: target, kind: 'seek' });
          else if (c === null) pending.set(key, { offset: low, kind: 'fill' });
          positions.set(key, target);
          if (opts.stopAtEnd) ends.set(key, high);
        }
      }
    }

    /** New topics: committed-or-earliest whatever the start position. */
    async function planNewTopics(topics: string[]): Promise<void> {
      const committed = await committedOffsets(group, topics);
      for (const topic of topics) {
        for (const { partition, low } of await partitionEnds(topic)) {
          const key = tp(topic, partition);
          if ((committed.get(key) ?? null) === null) pending.set(key, { offset: low, kind: 'fill' });
        }
      }
    }

    /** Commits the start positions of freshly assigned partitions (queued before any batch commit). */
    async function initCommits(session: Session, parts: { topic: string; partition: number }[]): Promise<void> {
      const fills = parts.filter((p) => pending.get(tp(p.topic, p.partition))?.kind === 'fill');
      const stillUnset = fills.length ? await committedOffsets(group, [...new Set(fills.map((p) => p.topic))]) : new Map<string, bigint | null>();
      const commits: { topic: string; partition: number; offset: string }[] = [];
      for (const p of parts) {
        const key = tp(p.topic, p.partition);
        const entry = pending.get(key);
        if (!entry) continue;
        if (entry.kind === 'fill' && (stillUnset.get(key) ?? null) !== null) {
          pending.delete(key);
          continue;
        }
        commits.push({ topic: p.topic, partition: p.partition, offset: entry.offset.toString() });
      }
      if (commits.length === 0 || session.stopping) return;
      await session.consumer.commitOffsets(commits);
      for (const c of commits) pending.delete(tp(c.topic, c.partition));
    }

    function queueCommit<T>(session: Session, fn: () => Promise<T>): Promise<T> {
      const run = session.commits.then(fn, fn);
      session.commits = run.catch(() => undefined);
      return run;
    }

    async function handleBatch(session: Session, payload: EachBatchPayload): Promise<void> {
      const kb = payload.batch;
      const key = tp(kb.topic, kb.partition);
      const highWatermark = BigInt(kb.highWatermark);
      let records = kb.messages.map((m) => toRecord(kb.topic, kb.partition, m));
      const end = ends.get(key);
      if (end !== undefined) {
        records = records.filter((r) => r.offset < end);
        if (records.length === 0) {
          // Nothing before the end in this batch (the partition is done): stop fetching it.
          payload.pause();
          return;
        }
      }
      for (let i = 0; i < records.length; i += maxRecords) {
        if (session.stopping || fatal !== undefined) return;
        const part = records.slice(i, i + maxRecords);
        const batch: Batch = {
          topic: kb.topic,
          partition: kb.partition,
          records: part,
          firstOffset: part[0]!.offset,
          lastOffset: part[part.length - 1]!.offset,
          highWatermark,
        };
        const keepAlive = setInterval(() => void payload.heartbeat().catch(() => undefined), HEARTBEAT_MS);
        try {
          await opts.eachBatch(batch);
        } catch (err) {
          // Not resolved, not committed: whoever reads this partition next gets the batch again.
          session.stopping = true;
          payload.pause();
          fail(err);
          return;
        } finally {
          clearInterval(keepAlive);
        }
        const next = batch.lastOffset + 1n;
        payload.resolveOffset(batch.lastOffset.toString());
        // A failed commit throws into kafkajs, which re-joins or re-fetches; the batch is then
        // delivered again (at-least-once) unless a later commit covers it.
        await queueCommit(session, () => session.consumer.commitOffsets([{ topic: kb.topic, partition: kb.partition, offset: next.toString() }]));
        pending.delete(key);
        if (next > (positions.get(key) ?? -1n)) positions.set(key, next);
        if (reachedEnd(key)) {
          payload.pause();
          wake();
          return;
        }
      }
    }

    async function startSession(topics: string[]): Promise<Session> {
      const consumer = kafka.consumer({
        groupId: group,
        // A crashed projector's membership expires after this; kafkajs' 30 s default left its
        // partitions unread for 30 s after a SIGKILL or a broker restart. Long batches heartbeat.
        sessionTimeout: 10_000,
        heartbeatInterval: 3_000,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: fetchMaxWaitMs,
        metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
        retry: clientRetry,
      });
      const session: Session = { consumer, stopping: false, inFlight: new Set(), commits: Promise.resolve(), toInit: [] };
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        try {
          onJoin(e.payload.memberAssignment);
        } catch (err) {
          session.stopping = true;
          fail(toLogError(`positioning the consumer of group ${group}`, err));
        }
      });
      // Runs inside the join, before the first fetch of this generation: seeks land in time.
      const onJoin = (memberAssignment: Record<string, number[]>) => {
        const assigned: { topic: string; partition: number }[] = [];
        for (const [topic, parts] of Object.entries(memberAssignment)) {
          for (const partition of parts) assigned.push({ topic, partition });
        }
        const mine = new Set(assigned.map((p) => tp(p.topic, p.partition)));
        for (const p of assigned) {
          const entry = pending.get(tp(p.topic, p.partition));
          if (entry?.kind === 'seek') consumer.seek({ topic: p.topic, partition: p.partition, offset: entry.offset.toString() });
        }
        if (firstJoin) {
          // Explicit start positions belong to the partitions this member got first.
          for (const [key, entry] of pending) if (entry.kind === 'seek' && !mine.has(key)) pending.delete(key);
          firstJoin = false;
        }
        session.toInit = assigned.filter((p) => pending.has(tp(p.topic, p.partition)));
        opts.onAssigned?.(assigned);
      };
      // The commit of start positions waits for the first fetch: kafkajs drops commits made
      // before its runner is marked running, which happens just after the join.
      consumer.on(consumer.events.FETCH_START, () => {
        if (session.toInit.length === 0) return;
        const parts = session.toInit;
        session.toInit = [];
        void queueCommit(session, () => initCommits(session, parts)).catch((err) =>
          emit('debug', `kafka log: committing start positions of group ${group} failed (kept for the next join): ${describe(err)}`),
        );
      });
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) fail(toLogError(`consumer of group ${group}`, e.payload.error));
        else if (!session.stopping) emit('warn', `kafka log: consumer of group ${group} failed, kafkajs restarts it (${where}): ${describe(e.payload.error)}`);
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: 1,
          eachBatch: async (payload) => {
            if (session.stopping || fatal !== undefined) return;
            const p = handleBatch(session, payload);
            session.inFlight.add(p);
            try {
              await p;
            } finally {
              session.inFlight.delete(p);
            }
          },
        });
      } catch (err) {
        session.stopping = true;
        await consumer.disconnect().catch(() => undefined);
        throw toLogError(`start of a consumer in group ${group} for ${topics.join(',')}`, err);
      }
      return session;
    }

    async function stopSession(session: Session): Promise<void> {
      session.stopping = true;
      // Let the batch in hand finish and commit: kafkajs skips commits once stopping began.
      await Promise.allSettled([...session.inFlight]);
      await session.commits;
      await session.consumer.disconnect().catch((err) => emit('warn', `kafka log: disconnecting consumer of group ${group}: ${describe(err)}`));
    }

    let session: Session | undefined;
    try {
      let topics = await patiently(`kafka log: find topics for group ${group}`, () => matchingTopics(opts.topics));
      await patiently(`kafka log: plan start positions of group ${group}`, () => planStart(topics));
      let lastRefresh = Date.now();
      let refreshFailing = false;
      while (!stopped() && fatal === undefined) {
        if (opts.stopAtEnd && allAtEnd()) return;
        if (!session && topics.length > 0) {
          const t = topics;
          session = await patiently(`kafka log: consumer of group ${group}`, () => startSession(t));
          continue;
        }
        await sleep(Math.max(10, Math.min(1000, lastRefresh + topicRefreshMs - Date.now())));
        if (stopped() || fatal !== undefined) break;
        if (Date.now() - lastRefresh < topicRefreshMs) continue;
        lastRefresh = Date.now();
        try {
          const now = await matchingTopics(opts.topics);
          const added = now.filter((t) => !topics.includes(t));
          if (added.length > 0) {
            await planNewTopics(added);
            topics = [...topics, ...added];
            emit('debug', `kafka log: group ${group} picks up new topics ${added.join(', ')}`);
            if (session) {
              const old = session;
              session = undefined;
              await stopSession(old);
            }
          }
          if (opts.stopAtEnd && ends.size > 0) {
            // Other members of the group move positions too.
            for (const [key, c] of await committedOffsets(group, [...new Set([...ends.keys()].map(topicOf))])) {
              if (c !== null && c > (positions.get(key) ?? -1n)) positions.set(key, c);
            }
          }
          refreshFailing = false;
        } catch (err) {
          if (!isRetriable(err)) throw err;
          // Once per outage at warn; the consumer itself keeps running (kafkajs reconnects).
          emit(refreshFailing ? 'debug' : 'warn', `${describe(err)} (consume of group ${group} keeps running, checking again every ${topicRefreshMs} ms)`);
          refreshFailing = true;
        }
      }
    } catch (err) {
      // An abort during a setup retry surfaces as the last setup error: an abort is no failure.
      if (!stopped() || fatal !== undefined) throw err;
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      closing.signal.removeEventListener('abort', onAbort);
      if (session) await stopSession(session);
    }
    // what eachBatch (or the session) threw, rethrown as it was
    if (fatal !== undefined) throw fatal as Error;
  }

  // ---------------------------------------------------------------- lag, positions

  async function lag(group: string, topics: string[] | RegExp): Promise<PartitionLag[]> {
    ensureOpen();
    const names = await matchingTopics(topics);
    const committed = await committedOffsets(group, names);
    const out: PartitionLag[] = [];
    for (const topic of names) {
      for (const { partition, low, high } of await partitionEnds(topic)) {
        const c = committed.get(tp(topic, partition)) ?? null;
        const from = c ?? low;
        out.push({ topic, partition, committed: c, highWatermark: high, lag: high > from ? high - from : 0n });
      }
    }
    return out;
  }

  async function setCommitted(group: string, positions: { topic: string; partition: number; offset: bigint }[]): Promise<void> {
    ensureOpen();
    if (positions.length === 0) return;
    const { groups } = await withAdmin(`describe group ${group}`, (a) => a.describeGroups([group]));
    const state = groups[0]?.state ?? 'Dead';
    if (state !== 'Empty' && state !== 'Dead') {
      throw new LogError(
        `kafka log: cannot set committed positions of group ${group}: it has active members (state ${state}); stop its consumers first`,
        { retriable: false },
      );
    }
    const topics = [...new Set(positions.map((p) => p.topic))];
    const commits = positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset.toString() }));
    // A member of our own joins the empty group, commits with the group's generation, leaves.
    const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false, maxWaitTimeInMs: fetchMaxWaitMs, retry: clientRetry });
    try {
      await guard(`set committed positions of group ${group}`, async () => {
        let assigned = new Set<string>();
        let joined!: () => void;
        const firstFetch = new Promise<void>((resolve) => (joined = resolve));
        consumer.on(consumer.events.GROUP_JOIN, (e) => {
          assigned = new Set(Object.entries(e.payload.memberAssignment).flatMap(([t, ps]) => ps.map((p) => tp(t, p))));
          consumer.pause(topics.map((topic) => ({ topic })));
        });
        consumer.on(consumer.events.FETCH_START, () => joined());
        await consumer.connect();
        await consumer.subscribe({ topics });
        await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => undefined });
        await withTimeout(firstFetch, requestTimeout, `joining group ${group} timed out`);
        const missing = commits.filter((c) => !assigned.has(tp(c.topic, c.partition)));
        if (missing.length > 0) {
          const names = missing.map((m) => `${m.topic}[${m.partition}]`).join(', ');
          throw new LogError(`kafka log: ${names} not assigned while setting positions of group ${group} (another member joined?)`, { retriable: true });
        }
        await consumer.commitOffsets(commits);
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------- close

  async function close(): Promise<void> {
    closed ??= (async () => {
      closing.abort();
      await Promise.allSettled([...running]);
      const p = producerP;
      const a = adminP;
      producerP = undefined;
      adminP = undefined;
      await Promise.allSettled([p?.then((x) => x.disconnect()), a?.then((x) => x.disconnect())]);
    })();
    return closed;
  }

  return {
    kind: 'kafka',
    publish,
    consume,
    lag,
    listTopics: () => {
      ensureOpen();
      return existingTopics();
    },
    setCommitted,
    close,
  };
}

// ------------------------------------------------------------------ helpers

function tp(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function topicOf(key: string): string {
  return key.slice(0, key.indexOf('\u0000'));
}

function clamp(x: bigint, lo: bigint, hi: bigint): bigint {
  return x < lo ? lo : x > hi ? hi : x;
}

function toRecord(topic: string, partition: number, m: KafkaMessage): LogRecord {
  return {
    topic,
    partition,
    offset: BigInt(m.offset),
    key: m.key ? m.key.toString('utf8') : '',
    value: m.value ? m.value.toString('utf8') : '',
    headers: headersOf(m.headers),
    timestamp: Number(m.timestamp),
  };
}

function headersOf(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const [k, v] of Object.entries(h)) {
    // A repeated header key arrives as an array: the last value wins (Kafka's lastHeader).
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last !== undefined) out[k] = Buffer.isBuffer(last) ? last.toString('utf8') : String(last);
  }
  return out;
}

function* chunks(messages: LogMessage[], maxBytes: number): Generator<LogMessage[]> {
  let chunk: LogMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    let size = Buffer.byteLength(m.key) + Buffer.byteLength(m.value) + 70;
    for (const [k, v] of Object.entries(m.headers ?? {})) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

/** The error and the causes it wraps (kafkajs nests them: retries exceeded → connection error). */
function errorChain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const seen = new Set<unknown>();
  const walk = (e: unknown) => {
    if (!e || typeof e !== 'object' || seen.has(e) || out.length > 20) return;
    seen.add(e);
    const r = e as Record<string, unknown>;
    out.push(r);
    walk(r.cause);
    walk(r.originalError);
    if (Array.isArray(r.errors)) for (const x of r.errors) walk(x);
  };
  walk(err);
  return out;
}

function hasType(err: unknown, type: string): boolean {
  return errorChain(err).some((e) => e.type === type);
}

function isRetriable(err: unknown): boolean {
  const chain = errorChain(err);
  if (chain.length === 0) return true;
  for (const e of chain) {
    if (e instanceof LogError && !e.retriable) return false;
    if (typeof e.type === 'string' && PERMANENT_TYPES.has(e.type)) return false;
    if (typeof e.name === 'string' && PERMANENT_NAMES.has(e.name)) return false;
    if (typeof e.message === 'string' && /must have no running instances/.test(e.message)) return false;
  }
  return true;
}

/** The messages along the cause chain, without kafkajs' wrapper names ("NonRetriable" would mislead). */
function describe(err: unknown): string {
  const chain = errorChain(err);
  if (chain.length === 0) return String(err);
  const parts: string[] = [];
  for (const e of chain) {
    let msg = typeof e.message === 'string' ? e.message : '';
    if (!msg) continue;
    if (typeof e.type === 'string' && e.type !== 'UNKNOWN' && !msg.includes(e.type)) msg += ` [${e.type}]`;
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
  }
  return parts.join(' ← ');
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LogError(`kafka log: ${message}`, { retriable: true })), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function pem(x: string | undefined): string | undefined {
  if (x === undefined) return undefined;
  return x.includes('-----BEGIN') ? x : readFileSync(x, 'utf8');
}

function tlsOptions(ssl: KafkaLogOptions['ssl']): ConnectionOptions | boolean | undefined {
  if (ssl === undefined || typeof ssl === 'boolean') return ssl;
  const o: ConnectionOptions = {};
  if (ssl.ca !== undefined) o.ca = pem(ssl.ca);
  if (ssl.cert !== undefined) o.cert = pem(ssl.cert);
  if (ssl.key !== undefined) o.key = pem(ssl.key);
  if (ssl.passphrase !== undefined) o.passphrase = ssl.passphrase;
  if (ssl.rejectUnauthorized !== undefined) o.rejectUnauthorized = ssl.rejectUnauthorized;
  if (ssl.servername !== undefined) o.servername = ssl.servername;
  return o;
}

function saslOptions(s: KafkaSaslOptions): SASLOptions {
  switch (s.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username: s.username, password: s.password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username: s.username, password: s.password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username: s.username, password: s.password };
    default:
      throw new LogError(`kafka log: unsupported SASL mechanism ${String((s as { mechanism: unknown }).mechanism)} (plain, scram-sha-256, scram-sha-512)`, {
        retriable: false,
      });
  }
}

function mapLogEntry(entry: LogEntry): { level: KafkaLogLevel; text: string } {
  const { message, error } = entry.log as { message: string; error?: unknown };
  const ns = entry.namespace ? ` [${entry.namespace}]` : '';
  const said = error instanceof Error ? error.message : typeof error === 'string' ? error : JSON.stringify(error);
  const why = error !== undefined && !message.includes(said) ? `: ${said}` : '';
  const text = `kafkajs${ns} ${message}${why}`;
  switch (entry.level) {
    case logLevel.ERROR:
    case logLevel.WARN:
      return { level: TRANSIENT.test(text) ? 'debug' : 'warn', text };
    default:
      return { level: 'debug', text };
  }
}

function defaultLogger(level: KafkaLogLevel, message: string): void {
  if (level === 'warn' || level === 'error') process.stderr.write(`jobscribe kafka: ${message}\n`);
}

/**
 * Whether Kafka answers at `brokers` (connect and list topics, no retries, within `timeoutMs`):
 * undefined when it does, else what went wrong. For start-up checks and test prerequisites, so
 * nothing outside this module needs the client library.
 */
export async function probeKafka(brokers: string[], timeoutMs = 5000): Promise<string | undefined> {
  const admin = new Kafka({
    clientId: 'jobscribe-probe',
    brokers,
    connectionTimeout: Math.min(1000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  }).admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await admin.listTopics();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return undefined;
  } catch (err) {
    return `broker ${brokers.join(',')} does not answer: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
  }
}
