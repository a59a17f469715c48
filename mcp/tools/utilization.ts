/**
 * `utilization`: per cluster and time bucket, the core-, node- and GPU-hours of the jobs that ran
 * — each job's run [t_start, t_end, or now while running) overlapped with each bucket (clipped to
 * the window), times its ncores / ngpus — summed in ClickHouse (ARRAY JOIN over the few buckets a
 * run spans), and the fraction of capacity that is.
 *
 * Node-hours are the time each node had at least one job (a node shared by several jobs
 * was counted once per job, and node_util exceeded 1): per (node, bucket) the union of the runs'
 * intervals on it (intervalLengthSum), summed over nodes (nodeUsageSql). A job whose row names no
 * nodes (none recorded) still counts nnodes × its run, as it cannot be told apart.
 *
 * Capacity: `McpDeps.capacity[cluster]` when configured; otherwise observed, since the read model
 * has no node inventory: distinct nodes seen in any job's allocation × the most cores (GPUs) per
 * node any job had, GPUs counted on the nodes seen running GPU jobs. Filters (user, queue) narrow
 * the usage, never the capacity.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  UtilizationInputSchema,
  UtilizationOutputSchema,
  type Usage,
  type UsageRow,
  type UtilizationOutput,
} from '../../schemas/tools/utilization.js';
import {
  RAN_IN_WINDOW_SQL,
  RUN_INTERVAL_SQL,
  bucketIndexes,
  bucketParams,
  bucketStartUs,
  jobFilters,
  overlapSql,
  planBuckets,
  resolveWindow,
  round,
  windowOut,
  windowParams,
  type BucketPlan,
  type Window,
  BUCKET_HI_SQL,
  BUCKET_LO_SQL,
  bucketsSpannedSql,
} from '../analytics.js';
import { runTool, toolResult } from '../results.js';
import { isoFromMicros } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

/** Configured capacity of one cluster (McpDeps.capacity). */
export interface ClusterCapacity {
  nodes: number;
  cores: number;
  gpus?: number;
}
export type CapacityConfig = Record<string, ClusterCapacity>;

type Count = string | number;
interface UsageSqlRow {
  g_cluster: string;
  g_bucket: Count;
  core_us: number;
  node_us: number;
  gpu_us: number;
}
interface NodeUsageSqlRow {
  g_cluster: string;
  g_bucket: Count;
  node_us: number;
}
interface ObservedRow {
  g_cluster: string;
  n_nodes: Count;
  cores_per_node: Count;
  n_gpu_nodes: Count;
  gpus_per_node: Count;
}


export function usageSql(where: string[]): string {
  return `SELECT g_cluster, g_bucket,
       sum(ov_us * ncores) AS core_us, sumIf(ov_us * nnodes, no_nodes) AS node_us, sum(ov_us * ngpus) AS gpu_us
     FROM (
       SELECT g_cluster, g_bucket, ncores, nnodes, ngpus, no_nodes, toFloat64(${overlapSql(BUCKET_LO_SQL, BUCKET_HI_SQL)}) AS ov_us
       FROM (
         SELECT cluster AS g_cluster, ncores, nnodes, ngpus, empty(nodes) AS no_nodes, ${RUN_INTERVAL_SQL}
         FROM {db:Identifier}.jobs FINAL
         WHERE ${[RAN_IN_WINDOW_SQL, ...where].join(' AND ')}
       )
       ARRAY JOIN ${bucketsSpannedSql('run_start_us', 'run_end_us')} AS g_bucket
     )
     GROUP BY g_cluster, g_bucket
     ORDER BY g_cluster, g_bucket
     LIMIT {max_rows:UInt32}`;
}

/**
 * Busy time per (cluster, bucket): for each node, the union of the intervals its jobs ran in the
 * bucket (a node with two jobs at once is busy once), summed over the nodes.
 */
export function nodeUsageSql(where: string[]): string {
  return `SELECT g_cluster, g_bucket, toFloat64(sum(busy_us)) AS node_us
     FROM (
       SELECT g_cluster, g_bucket, g_node, intervalLengthSum(lo_us, hi_us) AS busy_us
       FROM (
         SELECT g_cluster, g_bucket, g_node,
                greatest(run_start_us, ${BUCKET_LO_SQL}) AS lo_us, least(run_end_us, ${BUCKET_HI_SQL}) AS hi_us
         FROM (
           SELECT cluster AS g_cluster, nodes, ${RUN_INTERVAL_SQL}
           FROM {db:Identifier}.jobs FINAL
           WHERE ${[RAN_IN_WINDOW_SQL, 'notEmpty(nodes)', ...where].join(' AND ')}
         )
         ARRAY JOIN arrayDistinct(nodes) AS g_node
         ARRAY JOIN ${bucketsSpannedSql('run_start_us', 'run_end_us')} AS g_bucket
       )
       WHERE hi_us > lo_us
       GROUP BY g_cluster, g_bucket, g_node
     )
     GROUP BY g_cluster, g_bucket
     ORDER BY g_cluster, g_bucket
     LIMIT {max_rows:UInt32}`;
}

/** Core- and GPU-microseconds per (cluster, user or queue) over the window, the `top` biggest per cluster. */
export function topUsageSql(where: string[], by: 'user' | 'queue'): string {
  return `SELECT g_cluster, g_key, sum(ov_us * ncores) AS core_us, sum(ov_us * ngpus) AS gpu_us
     FROM (
       SELECT cluster AS g_cluster, toString(${by}) AS g_key, ncores, ngpus,
              toFloat64(${overlapSql('{since_us:Int64}', '{until_us:Int64}')}) AS ov_us
       FROM (
         SELECT cluster, ${by}, ncores, ngpus, ${RUN_INTERVAL_SQL}
         FROM {db:Identifier}.jobs FINAL
         WHERE ${[RAN_IN_WINDOW_SQL, ...where].join(' AND ')}
       )
     )
     GROUP BY g_cluster, g_key
     ORDER BY g_cluster, core_us DESC, g_key
     LIMIT {top:UInt32} BY g_cluster
     LIMIT {max_rows:UInt32}`;
}
interface TopSqlRow {
  g_cluster: string;
  g_key: string;
  core_us: number;
  gpu_us: number;
}

export function observedCapacitySql(clusterFilter: boolean): string {
  return `SELECT cluster AS g_cluster,
       uniqExactArray(nodes) AS n_nodes,
       maxIf(intDivOrZero(ncores + nnodes - 1, nnodes), nnodes > 0) AS cores_per_node,
       uniqExactArrayIf(nodes, ngpus > 0) AS n_gpu_nodes,
       maxIf(intDivOrZero(ngpus + nnodes - 1, nnodes), nnodes > 0) AS gpus_per_node
     FROM {db:Identifier}.jobs FINAL
     ${clusterFilter ? 'WHERE cluster = {f_cluster:String}' : ''}
     GROUP BY g_cluster
     ORDER BY g_cluster
     LIMIT {max_rows:UInt32}`;
}

/** Refuses a capacity configuration that would make utilization meaningless. */
export function checkCapacityConfig(capacity: CapacityConfig | undefined): void {
  for (const [cluster, c] of Object.entries(capacity ?? {})) {
    for (const [k, v] of Object.entries(c)) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new Error(`capacity.${cluster}.${k} must be a non-negative integer, got ${v}`);
    }
  }
}

type Capacity = UtilizationOutput['clusters'][number]['capacity'];

/** Hours of use and the fraction of `cap` they are over `spanUs` (null without capacity). */
function usage(coreUs: number, nodeUs: number, cap: Capacity, spanUs: number) {
  const util = (used: number, units: number) => (units > 0 && spanUs > 0 ? round(used / (units * spanUs), 4) : null);
  return {
    core_hours: round(coreUs / 3.6e9, 3),
    node_hours: round(nodeUs / 3.6e9, 3),
    core_util: util(coreUs, cap.cores),
    node_util: util(nodeUs, cap.nodes),
  };
}

function clusterUsage(cluster: string, cap: Capacity, rows: UsageSqlRow[], plan: BucketPlan, w: Window) {
  const byBucket = new Map(rows.map((r) => [Number(r.g_bucket), r]));
  let core = 0;
  let node = 0;
  let gpu = 0;
  const buckets = bucketIndexes(plan).map((i): UsageRow => {
    const start = bucketStartUs(i, plan.widthUs);
    const span = Math.min(start + plan.widthUs, w.until) - Math.max(start, w.since);
    const r = byBucket.get(i);
    core += r?.core_us ?? 0;
    node += r?.node_us ?? 0;
    gpu += r?.gpu_us ?? 0;
    const u = usage(r?.core_us ?? 0, r?.node_us ?? 0, cap, span);
    return [isoFromMicros(start), u.core_hours, u.node_hours, u.core_util, u.node_util];
  });
  const totals: Usage = { ...usage(core, node, cap, w.until - w.since), gpu_hours: round(gpu / 3.6e9, 3) };
  return { cluster, capacity: cap, ...totals, buckets };
}

export function registerUtilization(server: McpServer, deps: QueryDeps, capacity: CapacityConfig | undefined): void {
  checkCapacityConfig(capacity);
  server.registerTool(
    'utilization',
    {
      description:
        'Core- and node-hours in [since, until) (running jobs: to now) per cluster and bucket, as fraction of ' +
        'capacity (*_util); GPU-hours. Node-hours: time a node had at least one job. Capacity: configured, else ' +
        'observed (nodes seen × most cores per node). user/queue narrow usage. top_by user|queue: the biggest ' +
        'per cluster.',
      inputSchema: UtilizationInputSchema,
      outputSchema: UtilizationOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'utilization', async () => {
        const signal = ctx.mcpReq.signal;
        const w = resolveWindow(args, deps.now());
        const plan = planBuckets(w, args.bucket);
        const { where, params } = jobFilters(args);
        const maxRows = deps.limits.maxRows + 1;
        const usageParams = { ...params, ...windowParams(w), ...bucketParams(plan), max_rows: maxRows };
        const [usageRows, nodeRows, observedRows, topRows] = await Promise.all([
          selectRows<UsageSqlRow>(deps, usageSql(where), usageParams, signal),
          selectRows<NodeUsageSqlRow>(deps, nodeUsageSql(where), usageParams, signal),
          selectRows<ObservedRow>(
            deps,
            observedCapacitySql(args.cluster !== undefined),
            { ...(args.cluster !== undefined && { f_cluster: args.cluster }), max_rows: maxRows },
            signal,
          ),
          args.top_by ? selectRows<TopSqlRow>(deps, topUsageSql(where, args.top_by), { ...usageParams, top: args.top }, signal) : Promise.resolve([]),
        ]);
        // a bucket with a job on named nodes has a usage row too: node rows are never more
        const busy = new Map(nodeRows.map((r) => [`${r.g_cluster}\u0000${Number(r.g_bucket)}`, r.node_us]));
        for (const r of usageRows) r.node_us += busy.get(`${r.g_cluster}\u0000${Number(r.g_bucket)}`) ?? 0;
        const truncated = usageRows.length > deps.limits.maxRows;
        // Rows come ordered by cluster: when cut, the last cluster may be incomplete, so it goes.
        const cut = truncated ? usageRows[deps.limits.maxRows - 1]?.g_cluster : undefined;
        const rowsOf = new Map<string, UsageSqlRow[]>();
        for (const r of usageRows.slice(0, deps.limits.maxRows)) {
          if (r.g_cluster === cut) continue;
          rowsOf.set(r.g_cluster, [...(rowsOf.get(r.g_cluster) ?? []), r]);
        }
        const caps = new Map<string, Capacity>();
        for (const r of observedRows) {
          const nodes = Number(r.n_nodes);
          const gpus = Number(r.n_gpu_nodes) * Number(r.gpus_per_node);
          caps.set(r.g_cluster, { nodes, cores: nodes * Number(r.cores_per_node), gpus: gpus > 0 ? gpus : null, source: 'observed' });
        }
        for (const [cluster, c] of Object.entries(capacity ?? {})) {
          if (args.cluster !== undefined && cluster !== args.cluster) continue;
          caps.set(cluster, { nodes: c.nodes, cores: c.cores, gpus: c.gpus ?? null, source: 'configured' });
        }
        const clusters = [...caps.keys()].filter((c) => c !== cut && (!truncated || rowsOf.has(c))).sort();
        const out: UtilizationOutput = {
          ...windowOut(w),
          bucket: plan.bucket,
          clusters: clusters.map((c) => clusterUsage(c, caps.get(c)!, rowsOf.get(c) ?? [], plan, w)),
          truncated: truncated || observedRows.length > deps.limits.maxRows || topRows.length > deps.limits.maxRows,
        };
        if (args.top_by) {
          const coreOf = new Map(out.clusters.map((c) => [c.cluster, c.core_hours]));
          out.top = topRows.slice(0, deps.limits.maxRows).map((r) => {
            const core = round(r.core_us / 3.6e9, 3);
            const total = coreOf.get(r.g_cluster) ?? 0;
            return [r.g_cluster, r.g_key, core, round(r.gpu_us / 3.6e9, 3), total > 0 ? round(core / total, 4) : 0];
          });
        }
        return toolResult(out);
      }),
  );
}
