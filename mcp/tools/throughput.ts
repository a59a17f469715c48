/**
 * `throughput`: per cluster and time bucket, how many jobs were submitted (t_submit), started
 * (t_start) and ended in each final state (t_end, else t_inactive) — one ClickHouse pass over
 * `jobs` that turns each job into up to three dated events and counts them per bucket. Every
 * bucket of the window is reported, empty ones as zeros.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  ThroughputInputSchema,
  ThroughputOutputSchema,
  type ThroughputCounts,
  type ThroughputOutput,
  type ThroughputRow,
} from '../../schemas/tools/throughput.js';
import {
  ENDED_STATES_SQL,
  bucketIndexes,
  bucketParams,
  bucketSql,
  bucketStartUs,
  jobFilters,
  planBuckets,
  resolveWindow,
  round,
  windowOut,
  windowParams,
  BUCKET_HI_SQL,
  BUCKET_LO_SQL,
  bucketsSpannedSql,
} from '../analytics.js';
import { runTool, toolResult } from '../results.js';
import { isoFromMicros } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

type Count = string | number;
interface Row {
  g_cluster: string;
  g_bucket: Count;
  n_submitted: Count;
  n_started: Count;
  n_completed: Count;
  n_failed: Count;
  n_canceled: Count;
  n_timeout: Count;
}

/** kind 0 = submitted, 1 = started, 2 = ended; -1 times fall outside any window. */
export function throughputSql(where: string[]): string {
  const us = (col: string) => `ifNull(toUnixTimestamp64Micro(${col}), toInt64(-1))`;
  return `SELECT g_cluster, ${bucketSql('ev.2')} AS g_bucket,
       countIf(ev.1 = 0) AS n_submitted,
       countIf(ev.1 = 1) AS n_started,
       countIf(ev.1 = 2 AND state = 'completed') AS n_completed,
       countIf(ev.1 = 2 AND state = 'failed') AS n_failed,
       countIf(ev.1 = 2 AND state = 'canceled') AS n_canceled,
       countIf(ev.1 = 2 AND state = 'timeout') AS n_timeout
     FROM (
       SELECT cluster AS g_cluster, state,
              arrayJoin(arrayFilter(e -> e.2 >= {since_us:Int64} AND e.2 < {until_us:Int64}, [
                tuple(toUInt8(0), toUnixTimestamp64Micro(t_submit)),
                tuple(toUInt8(1), ${us('t_start')}),
                tuple(toUInt8(2), if(${ENDED_STATES_SQL}, ${us('coalesce(t_end, t_inactive)')}, toInt64(-1)))])) AS ev
       FROM {db:Identifier}.jobs FINAL
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     )
     GROUP BY g_cluster, g_bucket
     ORDER BY g_cluster, g_bucket
     LIMIT {max_rows:UInt32}`;
}


/**
 * Job-microseconds spent waiting per (cluster, bucket): each job's wait [t_submit, t_start, or
 * its end if it never started, or now) overlapped with each bucket it spans. Divided by a bucket's
 * length, the mean number of jobs waiting in it (the backlog).
 */
export function backlogSql(where: string[]): string {
  return `SELECT g_cluster, g_bucket,
       toFloat64(sum(greatest(toInt64(0), least(p_end, ${BUCKET_HI_SQL}) - greatest(p_start, ${BUCKET_LO_SQL})))) AS pending_us
     FROM (
       SELECT cluster AS g_cluster, toUnixTimestamp64Micro(t_submit) AS p_start,
              ifNull(toUnixTimestamp64Micro(coalesce(t_start, t_end, t_inactive)), greatest({asof_us:Int64}, p_start)) AS p_end
       FROM {db:Identifier}.jobs FINAL
       WHERE ${['p_start < {until_us:Int64}', 'p_end > {since_us:Int64}', 'p_end > p_start', ...where].join(' AND ')}
     )
     ARRAY JOIN ${bucketsSpannedSql('p_start', 'p_end')} AS g_bucket
     GROUP BY g_cluster, g_bucket
     ORDER BY g_cluster, g_bucket
     LIMIT {max_rows:UInt32}`;
}

const ZERO: ThroughputCounts = { submitted: 0, started: 0, completed: 0, failed: 0, canceled: 0, timeout: 0 };

const counts = (r: Row): ThroughputCounts => ({
  submitted: Number(r.n_submitted),
  started: Number(r.n_started),
  completed: Number(r.n_completed),
  failed: Number(r.n_failed),
  canceled: Number(r.n_canceled),
  timeout: Number(r.n_timeout),
});

const row = (startUs: number, c: ThroughputCounts): ThroughputRow => [
  isoFromMicros(startUs),
  c.submitted,
  c.started,
  c.completed,
  c.failed,
  c.canceled,
  c.timeout,
];

function add(a: ThroughputCounts, b: ThroughputCounts): ThroughputCounts {
  return {
    submitted: a.submitted + b.submitted,
    started: a.started + b.started,
    completed: a.completed + b.completed,
    failed: a.failed + b.failed,
    canceled: a.canceled + b.canceled,
    timeout: a.timeout + b.timeout,
  };
}

export function registerThroughput(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'throughput',
    {
      description:
        'Jobs submitted, started and ended (completed, failed, canceled, timeout) in [since, until), per cluster and ' +
        'UTC time bucket (default: hour up to 3 days, day up to 90, else week; at most 200; edges clipped to the window). ' +
        'backlog: also the mean jobs waiting per bucket and the peak.',
      inputSchema: ThroughputInputSchema,
      outputSchema: ThroughputOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'throughput', async () => {
        const w = resolveWindow(args, deps.now());
        const plan = planBuckets(w, args.bucket);
        const { where, params } = jobFilters(args);
        const all = { ...params, ...windowParams(w), ...bucketParams(plan), max_rows: deps.limits.maxRows + 1 };
        const [rows, pendingRows] = await Promise.all([
          selectRows<Row>(deps, throughputSql(where), all, ctx.mcpReq.signal),
          args.backlog ? selectRows<{ g_cluster: string; g_bucket: Count; pending_us: number }>(deps, backlogSql(where), all, ctx.mcpReq.signal) : Promise.resolve([]),
        ]);
        const pending = new Map(pendingRows.map((r) => [`${r.g_cluster}\u0000${Number(r.g_bucket)}`, r.pending_us]));
        const truncated = rows.length > deps.limits.maxRows;
        // Rows come ordered by cluster: when cut, the last cluster may be incomplete, so it goes.
        const cut = truncated ? rows[deps.limits.maxRows - 1]?.g_cluster : undefined;
        const kept = rows.slice(0, deps.limits.maxRows).filter((r) => r.g_cluster !== cut);
        const perCluster = new Map<string, Map<number, ThroughputCounts>>();
        for (const r of kept) {
          const m = perCluster.get(r.g_cluster) ?? new Map<number, ThroughputCounts>();
          m.set(Number(r.g_bucket), counts(r));
          perCluster.set(r.g_cluster, m);
        }
        const out: ThroughputOutput = {
          ...windowOut(w),
          bucket: plan.bucket,
          clusters: [...perCluster].map(([cluster, m]) => {
            const counted = bucketIndexes(plan).map((i) => [bucketStartUs(i, plan.widthUs), m.get(i) ?? ZERO] as const);
            const c = {
              cluster,
              totals: counted.reduce<ThroughputCounts>((t, [, c]) => add(t, c), ZERO),
              buckets: counted.map(([start, c]) => row(start, c)),
            };
            if (!args.backlog) return c;
            const backlog = bucketIndexes(plan).map((i) => {
              const start = bucketStartUs(i, plan.widthUs);
              const span = Math.min(start + plan.widthUs, w.until) - Math.max(start, w.since);
              return span > 0 ? round((pending.get(`${cluster}\u0000${i}`) ?? 0) / span, 2) : 0;
            });
            const peak = backlog.reduce((best, v, i) => (v > backlog[best]! ? i : best), 0);
            return { ...c, backlog, peak_backlog: [isoFromMicros(bucketStartUs(bucketIndexes(plan)[peak]!, plan.widthUs)), backlog[peak] ?? 0] };
          }),
          truncated,
        };
        return toolResult(out);
      }),
  );
}
