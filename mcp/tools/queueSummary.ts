/**
 * `queue_summary`: the current queue from `jobs` (pending and running rows), per group and per
 * cluster, with the oldest pending job and a best-effort split of why jobs are pending.
 * The counts are read through the read cache (readCache.ts: they change only when the projector
 * writes; at most LIST_LAG_MS behind it); waits are measured to the call's own as_of, and who
 * may be named is decided per call.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  QueueSummaryInputSchema,
  QueueSummaryOutputSchema,
  type QueueCounts,
  type QueueSummaryInput,
  type QueueSummaryOutput,
} from '../../schemas/tools/queueSummary.js';
import { canReadJob } from '../identity.js';
import { runTool, toolResult } from '../results.js';
import { f58For, isoFromMicros, microsNow, secondsBetween } from '../rows.js';
import { LIST_LAG_MS, LIST_REFRESH_MS } from '../readCache.js';
import { cachedRows, type QueryDeps } from '../sql.js';

type Count = string | number;
interface CountsRow {
  cluster: string;
  group_key: string;
  n_pending: Count;
  n_held: Count;
  n_running: Count;
  n_dependency: Count;
  /** [job_id, user, t_submit micros, scheduler] of the oldest pending job ('' values when none). */
  oldest: [string, string, string, string];
}

/** The grouping column for each group_by; fixed SQL, chosen from the enum. (Aliases must not
 *  reuse a column name: `countIf(... held) AS held` would refer to itself.) */
const GROUP_KEY: Record<QueueSummaryInput['group_by'], string> = { cluster: "''", queue: 'queue', user: 'user' };

function countsSql(groupKey: string, clusterFilter: boolean): string {
  return `SELECT cluster, ${groupKey} AS group_key,
       countIf(state = 'pending') AS n_pending,
       countIf(state = 'pending' AND held) AS n_held,
       countIf(state = 'running') AS n_running,
       countIf(state = 'pending' AND NOT held AND (length(dependencies) > 0 OR sched_state = 'DEPEND')) AS n_dependency,
       argMinIf(
         tuple(toString(job_id), user, toString(toUnixTimestamp64Micro(t_submit)), toString(scheduler)),
         tuple(t_submit, job_id),
         state = 'pending') AS oldest
     FROM {db:Identifier}.jobs FINAL
     WHERE state IN ('pending', 'running')${clusterFilter ? ' AND cluster = {cluster:String}' : ''}
     GROUP BY cluster, group_key
     ORDER BY n_pending DESC, n_running DESC, cluster, group_key
     LIMIT {max_rows:UInt32}`;
}

/**
 * One group's counts. The oldest pending job is named (id, user) only when the asker may read
 * its details: to a plain user, another user's job answers like a missing one here too, and
 * only how long it has waited is center-wide.
 */
function counts(r: CountsRow, groupBy: QueueSummaryInput['group_by'] | undefined, asof: number, mayName: (user: string) => boolean): QueueCounts {
  const pending = Number(r.n_pending);
  const held = Number(r.n_held);
  const dependency = Number(r.n_dependency);
  const [jobId, user, submitUs, scheduler] = r.oldest;
  return {
    cluster: r.cluster,
    ...(groupBy === 'queue' && { queue: r.group_key }),
    ...(groupBy === 'user' && { user: r.group_key }),
    pending,
    held,
    running: Number(r.n_running),
    pending_reasons: { held, dependency, resources_or_priority: pending - held - dependency },
    oldest_pending:
      pending > 0
        ? {
            ...(mayName(user) && { job_id: jobId, ...f58For(scheduler, jobId), user }),
            submitted: isoFromMicros(submitUs),
            waiting_s: Math.max(0, secondsBetween(submitUs, asof)),
          }
        : null,
  };
}

export function registerQueueSummary(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'queue_summary',
    {
      title: 'Queue summary',
      description:
        'What is queued and running right now: per queue (default), user or cluster, the pending, held and running ' +
        'job counts, the oldest pending job and how long it has waited, and why jobs are pending (held, dependency, ' +
        'resources or priority); plus totals per cluster.',
      inputSchema: QueueSummaryInputSchema,
      outputSchema: QueueSummaryOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'queue_summary', async () => {
        const signal = ctx.mcpReq.signal;
        const asof = microsNow(deps.now());
        const mayName = (user: string) => canReadJob(deps.identity, user, deps.jobDetails);
        const params = { max_rows: deps.limits.maxRows + 1, ...(args.cluster !== undefined && { cluster: args.cluster }) };
        const filtered = args.cluster !== undefined;
        const [groupRows, clusterRows] = await Promise.all([
          cachedRows<CountsRow>(deps, countsSql(GROUP_KEY[args.group_by], filtered), params, signal, undefined, LIST_LAG_MS, LIST_REFRESH_MS),
          cachedRows<CountsRow>(deps, countsSql("''", filtered), params, signal, undefined, LIST_LAG_MS, LIST_REFRESH_MS),
        ]);
        const groups = groupRows.slice(0, deps.limits.maxRows);
        const clusters = [...clusterRows.slice(0, deps.limits.maxRows)].sort((a, b) => a.cluster.localeCompare(b.cluster));
        const out: QueueSummaryOutput = {
          as_of: isoFromMicros(asof),
          group_by: args.group_by,
          groups: groups.map((r) => counts(r, args.group_by, asof, mayName)),
          clusters: clusters.map((r) => counts(r, 'cluster', asof, mayName)),
          truncated: groupRows.length > groups.length || clusterRows.length > deps.limits.maxRows,
        };
        return toolResult(out);
      }),
  );
}
