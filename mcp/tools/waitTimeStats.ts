/**
 * `wait_time_stats`: queue wait (t_start − t_submit, i.e. the `wait_s` column; Flux t_start is the
 * alloc) of the jobs that started in [since, until): exact p50/p90/p99 (quantilesExactInclusive:
 * linear interpolation between order statistics, as numpy's default percentile), mean and max,
 * aggregated in ClickHouse per cluster, queue, user, size bin and start-time bucket.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { SIZE_BINS } from '../../schemas/tools/analytics.js';
import {
  WaitTimeStatsInputSchema,
  WaitTimeStatsOutputSchema,
  type WaitGroup,
  type WaitTimeStatsInput,
  type WaitTimeStatsOutput,
} from '../../schemas/tools/waitTimeStats.js';
import {
  SIZE_BIN_SQL,
  bucketParams,
  bucketSql,
  bucketStartUs,
  inWindowSql,
  jobFilters,
  planBuckets,
  resolveWindow,
  waitAggregatesSql,
  waitStats,
  windowOut,
  windowParams,
  type BucketPlan,
  type WaitAggregatesRow,
} from '../analytics.js';
import { runTool, toolResult } from '../results.js';
import { isoFromMicros } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

type Dim = WaitTimeStatsInput['group_by'][number] | 'bucket';

/** Group keys: fixed SQL per dimension; aliases never reuse a column name. */
const DIM_SQL: Record<Dim, string> = {
  cluster: 'cluster AS g_cluster',
  queue: 'queue AS g_queue',
  user: 'user AS g_user',
  size: `${SIZE_BIN_SQL} AS g_size`,
  bucket: `${bucketSql('toUnixTimestamp64Micro(assumeNotNull(t_start))')} AS g_bucket`,
};
const DIM_ORDER: Dim[] = ['cluster', 'queue', 'user', 'size', 'bucket'];

type Row = WaitAggregatesRow & { g_cluster?: string; g_queue?: string; g_user?: string; g_size?: number; g_bucket?: string | number };

export function waitStatsSql(dims: Dim[], where: string[]): string {
  const keys = dims.map((d) => `g_${d}`);
  return `SELECT ${[...dims.map((d) => DIM_SQL[d]), waitAggregatesSql('true')].join(',\n       ')}
     FROM {db:Identifier}.jobs FINAL
     WHERE ${[inWindowSql('t_start'), 'wait_s IS NOT NULL', ...where].join(' AND ')}
     ${keys.length ? `GROUP BY ${keys.join(', ')} ORDER BY ${keys.join(', ')}` : ''}
     LIMIT {max_rows:UInt32}`;
}

function group(r: Row, plan: BucketPlan | undefined): WaitGroup {
  return {
    ...(r.g_cluster !== undefined && { cluster: r.g_cluster }),
    ...(r.g_queue !== undefined && { queue: r.g_queue }),
    ...(r.g_user !== undefined && { user: r.g_user }),
    ...(r.g_size !== undefined && { size: SIZE_BINS[Number(r.g_size)]!.label }),
    ...(r.g_bucket !== undefined && plan && { bucket_start: isoFromMicros(bucketStartUs(Number(r.g_bucket), plan.widthUs)) }),
    ...waitStats(r),
  };
}

export function registerWaitTimeStats(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'wait_time_stats',
    {
      description:
        'Queue wait (start − submit, s) of jobs that started in [since, until): exact p50/p90/p99 (linear ' +
        'interpolation), mean, max; grouped by cluster, queue, user, size (ncores 1, 2-16, 17-64, 65-256, ' +
        '257-1024, 1025+) and optionally start-time bucket. Still-pending jobs: see queue_summary.',
      inputSchema: WaitTimeStatsInputSchema,
      outputSchema: WaitTimeStatsOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'wait_time_stats', async () => {
        const w = resolveWindow(args, deps.now());
        const plan = args.bucket === undefined ? undefined : planBuckets(w, args.bucket);
        const dims = DIM_ORDER.filter((d) => (d === 'bucket' ? plan !== undefined : (args.group_by as Dim[]).includes(d)));
        const { where, params } = jobFilters(args);
        const rows = await selectRows<Row>(
          deps,
          waitStatsSql(dims, where),
          { ...params, ...windowParams(w), ...(plan && bucketParams(plan)), max_rows: deps.limits.maxRows + 1 },
          ctx.mcpReq.signal,
        );
        const kept = rows.slice(0, deps.limits.maxRows);
        const out: WaitTimeStatsOutput = {
          ...windowOut(w),
          groups: kept.map((r) => group(r, plan)),
          truncated: rows.length > kept.length,
        };
        return toolResult(out);
      }),
  );
}
