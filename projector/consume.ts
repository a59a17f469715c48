/**
 * The projector: consumes every cluster's events topic and keeps the read model current.
 * For each batch: decode + validate (bad records → dead_letters), load the prior state of the
 * jobs it touches, fold, write job_events / dead_letters / jobs with the batch's dedup tokens,
 * and only then let the log commit the batch's offsets. Replay and rebuild are this same
 * consumer with another start position, a stop condition and a table suffix; they re-derive
 * the job rows they touch from the stored events (`rederive`) instead of loading them.
 */
import { EventEmitter } from 'node:events';
import type { ClickHouseClient } from '@clickhouse/client';
import { topicPattern, type Batch, type EventLog, type StartPosition } from '../log/eventLog.js';
import type { SignaturePolicy } from '../log/signing.js';
import { actionKey, projectActions, type ActionRow } from './tables/actions.js';
import { defaultOnRetry, retry } from '../log/retry.js';
import { decodeBatch, deriveStates, firstSeqs, jobKey, projectEvents, touchedJobs, type DecodedBatch } from './project.js';
import { JobStateCache } from './jobCache.js';
import type { JobRow } from './tables/jobs.js';
import { insertRows, jobInsertRow, loadActions, loadJobEvents, loadJobs, tableNames, type TableNames } from './write.js';

/**
 * The projector's consumer group: one per topic prefix, so deployments that share a Kafka cluster
 * under different prefixes never join one group (kafkajs' group leader assigns only the topics it
 * subscribes to, and a member drops the others: both would stall). "jobscribe-projector" for the
 * default prefix.
 */
export function projectorGroup(topicPrefix: string): string {
  return `${topicPrefix}-projector`;
}

export interface ProjectorOptions {
  clickhouse: ClickHouseClient;
  database: string;
  log: EventLog;
  topicPrefix: string;
  /** Consumer group; replays and rebuilds use their own. */
  group?: string;
  /** Table suffix: '' for the live tables, e.g. '__rebuild' for a rebuild. */
  suffix?: string;
  /** Upper bound of cached job states; finished jobs leave the cache at once. */
  maxCachedJobs?: number;
  /**
   * Re-derive the state of every job a batch touches (and this run has not folded itself) from
   * its stored events instead of loading its stored row: what a replay does, so it repairs a
   * wrong row rather than folding onto it. Its inserts get dedup tokens of their own (scoped by
   * the group): a repaired row may equal rows the live projector once wrote for the same log
   * range (before a wrong row replaced them), and ClickHouse would drop it as a duplicate.
   */
  rederive?: boolean;
  /** Signature checks (config `signingKeys`, `requireSignatures`); default: none. */
  signing?: SignaturePolicy;
}

export interface BatchProjected {
  topic: string;
  partition: number;
  firstOffset: bigint;
  lastOffset: bigint;
  highWatermark: bigint;
  events: number;
  deadLetters: number;
  jobs: number;
  /** Id and user of each job row this batch wrote (readers' caches drop what they hold of them: mcp/readCache.ts). */
  jobRows: { job_id: string; user: string }[];
  ms: number;
}

export class Projector extends EventEmitter<{ batch: [BatchProjected]; error: [Error]; retry: [{ topic: string; partition: number; error: unknown }] }> {
  readonly group: string;
  readonly tables: TableNames;
  private readonly cache: JobStateCache;
  totals = { events: 0, deadLetters: 0, batches: 0 };

  constructor(private readonly opts: ProjectorOptions) {
    super();
    this.group = opts.group ?? projectorGroup(opts.topicPrefix);
    this.tables = tableNames(opts.database, opts.suffix ?? '');
    this.cache = new JobStateCache(opts.maxCachedJobs ?? 200_000);
  }

  /** Consumes until `signal` aborts (or, with stopAtEnd, until caught up). */
  run(signal: AbortSignal, start: StartPosition = { from: 'committed' }, stopAtEnd = false): Promise<void> {
    return this.opts.log.consume({
      group: this.group,
      // every cluster's events and commands topics (commands feed `actions`)
      topics: topicPattern(this.opts.topicPrefix, ['events', 'commands']),
      start,
      stopAtEnd,
      signal,
      // Partitions moved: another member may have folded further events of any cached job.
      onAssigned: () => this.cache.clear(),
      eachBatch: (batch) => {
        const what = `project ${batch.topic}@${batch.firstOffset}`;
        const log = defaultOnRetry(what);
        return retry(() => this.handleBatch(batch), {
          signal,
          what,
          onRetry: (error, attempt, delayMs) => {
            log(error, attempt, delayMs);
            this.emit('retry', { topic: batch.topic, partition: batch.partition, error });
          },
        });
      },
    });
  }

  async handleBatch(batch: Batch): Promise<void> {
    const started = performance.now();
    const { clickhouse } = this.opts;
    const decoded = decodeBatch(batch, this.opts.signing);
    const run = this.cache.beginBatch(batch);
    const prior = await this.priorStates(batch, decoded.events);
    const { jobEvents, jobs } = projectEvents(decoded.events, prior);
    const actions = await this.foldActions(decoded.commands);

    const scope = this.opts.rederive ? this.group : '';
    // The tables are independent: their inserts run at once (chDB runs them outside the JS
    // thread), and the batch is done when all resolved. A failed one fails the batch, whose retry
    // re-sends all of them under the same tokens: what already landed is dropped as a duplicate.
    const written = await Promise.allSettled([
      insertRows(clickhouse, this.tables.jobEvents, jobEvents, batch, scope),
      insertRows(clickhouse, this.tables.deadLetters, decoded.deadLetters, batch, scope),
      insertRows(clickhouse, this.tables.jobs, [...jobs.values()].map(jobInsertRow), batch, scope),
      insertRows(clickhouse, this.tables.actions, actions, batch, scope),
    ]);
    for (const w of written) if (w.status === 'rejected') throw w.reason;

    this.cache.endBatch(batch, run, jobs);
    this.totals.events += jobEvents.length;
    this.totals.deadLetters += decoded.deadLetters.length;
    this.totals.batches += 1;
    this.emit('batch', {
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: batch.firstOffset,
      lastOffset: batch.lastOffset,
      highWatermark: batch.highWatermark,
      events: jobEvents.length,
      deadLetters: decoded.deadLetters.length,
      jobs: jobs.size,
      jobRows: [...jobs.values()].map((j) => ({ job_id: j.job_id, user: j.user })),
      ms: performance.now() - started,
    });
  }

  /** Loads the rows of the commands a batch touches (few: commands are rare) and folds onto them. */
  private async foldActions(records: ReturnType<typeof decodeBatch>['commands']): Promise<ActionRow[]> {
    if (records.length === 0) return [];
    const keys = new Map<string, [string, string]>();
    for (const r of records) keys.set(actionKey(r.cluster, r.command_id), [r.cluster, r.command_id]);
    const prior = new Map<string, ActionRow>();
    const pairs = [...keys.values()];
    for (let i = 0; i < pairs.length; i += 1000) {
      for (const row of await loadActions(this.opts.clickhouse, this.tables.actions, pairs.slice(i, i + 1000))) prior.set(actionKey(row.cluster, row.command_id), row);
    }
    return [...projectActions(records, prior).values()];
  }

  /**
   * The states the batch's events fold onto: cached ones this process can still trust (see
   * jobCache.ts), else the stored rows, or with `rederive` the fold of the stored events.
   */
  private async priorStates(batch: Batch, events: DecodedBatch['events']): Promise<Map<string, JobRow>> {
    const prior = new Map<string, JobRow>();
    const missing: [string, string][] = [];
    for (const [cluster, id] of touchedJobs(events)) {
      const hit = this.cache.get(jobKey(cluster, id), batch);
      if (hit) prior.set(jobKey(cluster, id), hit);
      else missing.push([cluster, id]);
    }
    if (this.opts.rederive) {
      const below = firstSeqs(events);
      // A job whose first event here is seq 0 has nothing before it.
      const toLoad = missing.filter(([c, id]) => (below.get(jobKey(c, id)) ?? 0) > 0);
      for (let i = 0; i < toLoad.length; i += 1000) {
        const stored = await loadJobEvents(this.opts.clickhouse, this.tables.jobEvents, toLoad.slice(i, i + 1000));
        for (const [key, row] of deriveStates(stored, below)) prior.set(key, row);
      }
      return prior;
    }
    for (let i = 0; i < missing.length; i += 1000) {
      for (const row of await loadJobs(this.opts.clickhouse, this.tables.jobs, missing.slice(i, i + 1000))) {
        prior.set(jobKey(row.cluster, row.job_id), row);
      }
    }
    return prior;
  }
}
