/**
 * `cluster_status`: the clusters seen in `job_events` / `jobs` (and in the event log, when this
 * process has one), per cluster the newest event and publish times, pending/running counts,
 * scribe lag, publish delay and projector lag, and a health verdict (`clusterHealth`, pure).
 * `clusterStatus` is also what the `jobscribe://clusters` and `jobscribe://cluster/{name}`
 * resources show.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { clusterOfTopic, eventsTopicPattern, type EventLog } from '../../log/eventLog.js';
import {
  ClusterStatusInputSchema,
  ClusterStatusOutputSchema,
  DEFAULT_MAX_PROJECTOR_LAG_EVENTS,
  DEFAULT_MAX_PUBLISH_DELAY_S,
  DEFAULT_STALE_AFTER_S,
  type ClusterStatusEntry,
  type ClusterStatusOutput,
  type Health,
} from '../../schemas/tools/clusterStatus.js';
import { ToolInputError, runTool, toolResult } from '../results.js';
import { isoFromMicros, microsNow, secondsBetween } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

/** One event-log partition's projector position (log/eventLog.ts PartitionLag, JSON-friendly). */
export interface LogPartitionLag {
  topic: string;
  partition: number;
  /** Records published and not yet projected. */
  lag: number;
  committed?: string | null;
  high_watermark?: string;
}

type Count = string | number;

interface EventTimesRow {
  cluster: string;
  sched: 'flux' | 'slurm';
  last_ts_us: string;
  last_pub_us: string;
  /** ts of the most recently published event (ties: highest log offset). */
  newest_pub_ts_us: string;
}

interface JobCountsRow {
  cluster: string;
  n_jobs: Count;
  n_pending: Count;
  n_held: Count;
  n_running: Count;
}

export interface HealthThresholds {
  stale_after_s: number;
  max_projector_lag_events: number;
  max_publish_delay_s: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  stale_after_s: DEFAULT_STALE_AFTER_S,
  max_projector_lag_events: DEFAULT_MAX_PROJECTOR_LAG_EVENTS,
  max_publish_delay_s: DEFAULT_MAX_PUBLISH_DELAY_S,
};

/**
 * The verdict for one cluster. `lagging`: the projector is more than the threshold behind the
 * log, or the scribe published its newest event late; `stale`: nothing (projected) was published
 * within stale_after_s; `ok` otherwise. Lagging wins over stale: a projector behind the log also
 * makes the read model look stale, and it is the cause to fix.
 */
export function clusterHealth(
  s: Pick<ClusterStatusEntry, 'scribe_lag_s' | 'publish_delay_s' | 'projector_lag_events'>,
  t: HealthThresholds,
): { health: Health; reasons: string[] } {
  const lagging: string[] = [];
  const stale: string[] = [];
  if (s.projector_lag_events !== null && s.projector_lag_events > t.max_projector_lag_events) {
    lagging.push(`projector is ${s.projector_lag_events} events behind the log (threshold ${t.max_projector_lag_events})`);
  }
  if (s.publish_delay_s !== null && s.publish_delay_s > t.max_publish_delay_s) {
    lagging.push(`the newest event was published ${round(s.publish_delay_s)} s after it happened (threshold ${t.max_publish_delay_s} s)`);
  }
  if (s.scribe_lag_s === null) stale.push('no event of this cluster is in the read model yet');
  else if (s.scribe_lag_s > t.stale_after_s) {
    stale.push(`nothing published for ${round(s.scribe_lag_s)} s (threshold ${t.stale_after_s} s): is the scribe running?`);
  }
  const health: Health = lagging.length ? 'lagging' : stale.length ? 'stale' : 'ok';
  return { health, reasons: [...lagging, ...stale] };
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Projector lag per cluster (sum over the cluster's events-topic partitions). */
export function lagByCluster(partitions: readonly LogPartitionLag[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of partitions) {
    const cluster = clusterOfTopic(p.topic);
    if (cluster === undefined) continue;
    out.set(cluster, (out.get(cluster) ?? 0) + p.lag);
  }
  return out;
}

/** `McpDeps.logLag` over an event log: the projector group's lag on every events topic. */
export function projectorLagOf(log: Pick<EventLog, 'lag'>, group: string, topicPrefix: string): () => Promise<LogPartitionLag[]> {
  return async () =>
    (await log.lag(group, eventsTopicPattern(topicPrefix))).map((p) => ({
      topic: p.topic,
      partition: p.partition,
      lag: Number(p.lag),
      committed: p.committed === null ? null : p.committed.toString(),
      high_watermark: p.highWatermark.toString(),
    }));
}

const EVENT_TIMES_SQL = (filtered: boolean) => `
  SELECT cluster, any(scheduler) AS sched,
         toString(toUnixTimestamp64Micro(max(ts))) AS last_ts_us,
         toString(toUnixTimestamp64Milli(max(published_at)) * 1000) AS last_pub_us,
         -- newest by (published_at, log_offset), packed into one UInt128: ~2.5x faster than a tuple key on 10M events
         toString(argMax(toUnixTimestamp64Micro(ts), bitShiftLeft(toUInt128(toUnixTimestamp64Milli(published_at)), 64) + log_offset)) AS newest_pub_ts_us
    FROM {db:Identifier}.job_events
   ${filtered ? 'WHERE cluster = {cluster:String}' : ''}
   GROUP BY cluster
   ORDER BY cluster
   LIMIT {max_rows:UInt32}`;

const JOB_COUNTS_SQL = (filtered: boolean) => `
  SELECT cluster, count() AS n_jobs,
         countIf(state = 'pending') AS n_pending,
         countIf(state = 'pending' AND held) AS n_held,
         countIf(state = 'running') AS n_running
    FROM {db:Identifier}.jobs FINAL
   ${filtered ? 'WHERE cluster = {cluster:String}' : ''}
   GROUP BY cluster
   ORDER BY cluster
   LIMIT {max_rows:UInt32}`;

/** Cluster names in the read model starting with `prefix`, sorted; at most `limit`. */
export async function knownClusters(deps: QueryDeps, prefix = '', limit = 100, signal?: AbortSignal): Promise<string[]> {
  const rows = await selectRows<{ cluster: string }>(
    deps,
    `SELECT DISTINCT cluster FROM {db:Identifier}.jobs
      WHERE startsWith(cluster, {prefix:String})
      ORDER BY cluster
      LIMIT {limit:UInt32}`,
    { prefix, limit: Math.min(limit, deps.limits.maxRows) },
    signal,
  );
  return rows.map((r) => r.cluster);
}

/** Everything cluster_status reports, for one cluster or all. A named cluster not seen is a ToolInputError. */
export async function clusterStatus(
  deps: QueryDeps,
  logLag: (() => Promise<LogPartitionLag[]>) | undefined,
  options: { cluster?: string | undefined; thresholds?: Partial<HealthThresholds> },
  signal?: AbortSignal,
): Promise<ClusterStatusOutput> {
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const asof = microsNow(deps.now());
  const filtered = options.cluster !== undefined;
  const params = { max_rows: deps.limits.maxRows + 1, ...(filtered && { cluster: options.cluster }) };
  const [times, counts, partitions] = await Promise.all([
    selectRows<EventTimesRow>(deps, EVENT_TIMES_SQL(filtered), params, signal),
    selectRows<JobCountsRow>(deps, JOB_COUNTS_SQL(filtered), params, signal),
    logLag ? logLag() : Promise.resolve(undefined),
  ]);
  const lag = partitions ? lagByCluster(partitions) : undefined;
  const timesOf = new Map(times.map((r) => [r.cluster, r]));
  const countsOf = new Map(counts.map((r) => [r.cluster, r]));
  const names = new Set([...timesOf.keys(), ...countsOf.keys(), ...(lag?.keys() ?? [])]);
  const all = [...names].filter((c) => !filtered || c === options.cluster).sort();
  if (filtered && all.length === 0) {
    const known = await knownClusters(deps, '', 20, signal);
    throw new ToolInputError(
      `no cluster '${options.cluster}' in the job store; ${known.length ? `known clusters: ${known.join(', ')}` : 'no cluster has recorded events yet'}`,
    );
  }
  const clusters = all.slice(0, deps.limits.maxRows).map((cluster): ClusterStatusEntry => {
    const t = timesOf.get(cluster);
    const c = countsOf.get(cluster);
    const measured = {
      scribe_lag_s: t ? secondsBetween(t.last_pub_us, asof) : null,
      publish_delay_s: t ? secondsBetween(t.newest_pub_ts_us, t.last_pub_us) : null,
      projector_lag_events: lag ? (lag.get(cluster) ?? 0) : null,
    };
    return {
      cluster,
      scheduler: t?.sched ?? null,
      jobs: Number(c?.n_jobs ?? 0),
      pending: Number(c?.n_pending ?? 0),
      held: Number(c?.n_held ?? 0),
      running: Number(c?.n_running ?? 0),
      last_event_ts: t ? isoFromMicros(t.last_ts_us) : null,
      last_published_at: t ? isoFromMicros(t.last_pub_us) : null,
      ...measured,
      ...clusterHealth(measured, thresholds),
    };
  });
  return {
    as_of: isoFromMicros(asof),
    thresholds,
    projector_lag_known: lag !== undefined,
    clusters,
    truncated: times.length > deps.limits.maxRows || counts.length > deps.limits.maxRows || all.length > clusters.length,
  };
}

export function registerClusterStatus(server: McpServer, deps: QueryDeps, logLag: (() => Promise<LogPartitionLag[]>) | undefined): void {
  server.registerTool(
    'cluster_status',
    {
      title: 'Cluster status',
      description:
        'Clusters jobscribe has seen and how fresh their data is: newest event and publish time, pending/running ' +
        'jobs, scribe lag (s since the last publish), publish delay, projector lag (events not yet in the read ' +
        `model; null if unknown) and health: lagging (projector > ${DEFAULT_MAX_PROJECTOR_LAG_EVENTS} events behind, ` +
        `or newest event published > ${DEFAULT_MAX_PUBLISH_DELAY_S} s late), stale (nothing published for > ` +
        `${DEFAULT_STALE_AFTER_S} s), else ok.`,
      inputSchema: ClusterStatusInputSchema,
      outputSchema: ClusterStatusOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'cluster_status', async () => {
        const out = await clusterStatus(
          deps,
          logLag,
          {
            cluster: args.cluster,
            thresholds: { stale_after_s: args.stale_after_s, max_projector_lag_events: args.max_projector_lag_events },
          },
          ctx.mcpReq.signal,
        );
        for (const c of out.clusters) {
          if (c.health !== 'ok') {
            await ctx.mcpReq.log('warning', { cluster: c.cluster, health: c.health, reasons: c.reasons }, 'jobscribe.cluster_status').catch(() => undefined);
          }
        }
        return toolResult(out);
      }),
  );
}
