/**
 * `user_summary`: one user's jobs in [since, until): jobs submitted in the window by current
 * state, core- and node-hours of their runs inside the window (as utilization computes them),
 * queue-wait statistics of the jobs that started in it (as wait_time_stats), and the most recently
 * ended failed or timed-out jobs — the last only when the identity may read that user's jobs.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  UserSummaryInputSchema,
  UserSummaryOutputSchema,
  type RecentFailure,
  type UserSummaryOutput,
} from '../../schemas/tools/userSummary.js';
import {
  END_US_SQL,
  ENDED_IN_WINDOW_SQL,
  RAN_IN_WINDOW_SQL,
  RUN_INTERVAL_SQL,
  inWindowSql,
  jobFilters,
  overlapSql,
  resolveWindow,
  round,
  waitAggregatesSql,
  waitStats,
  windowOut,
  windowParams,
  type WaitAggregatesRow,
} from '../analytics.js';
import { canReadJob } from '../identity.js';
import { ToolInputError, runTool, toolResult } from '../results.js';
import { isoFromMicros } from '../rows.js';
import { selectRows, type QueryDeps } from '../sql.js';

type Count = string | number;

const where = (filters: string[]) => filters.join(' AND ');

export const stateCountsSql = (filters: string[]) => `SELECT state AS s, count() AS n
     FROM {db:Identifier}.jobs FINAL
     WHERE ${where([...filters, inWindowSql('t_submit')])}
     GROUP BY s
     ORDER BY s`;

export const usageAndWaitSql = (filters: string[]) => `SELECT ${waitAggregatesSql('started_in')},
       sum(ov_us * ncores) AS core_us, sum(ov_us * nnodes) AS node_us
     FROM (
       SELECT wait_s, ncores, nnodes, ${inWindowSql('t_start')} AS started_in, ${RUN_INTERVAL_SQL},
              if(${RAN_IN_WINDOW_SQL}, toFloat64(${overlapSql('{since_us:Int64}', '{until_us:Int64}')}), 0) AS ov_us
       FROM {db:Identifier}.jobs FINAL
       WHERE ${where(filters)}
     )`;

export const recentFailuresSql = (filters: string[]) => `SELECT cluster AS g_cluster, toString(job_id) AS job_id_s, name AS job_name,
       toString(state) AS g_state, exit_code AS g_exit_code,
       exception_type AS g_exception_type, toString(${END_US_SQL}) AS end_us
     FROM {db:Identifier}.jobs FINAL
     WHERE ${where([...filters, ENDED_IN_WINDOW_SQL, "state IN ('failed', 'timeout')"])}
     ORDER BY ${END_US_SQL} DESC, cluster, job_id DESC
     LIMIT {failures:UInt32}`;

interface FailureRow {
  g_cluster: string;
  job_id_s: string;
  job_name: string;
  g_state: string;
  g_exit_code: number | null;
  g_exception_type: string;
  end_us: string;
}

const failure = (r: FailureRow): RecentFailure => ({
  cluster: r.g_cluster,
  job_id: r.job_id_s,
  name: r.job_name,
  state: r.g_state,
  exit_code: r.g_exit_code,
  exception_type: r.g_exception_type === '' ? null : r.g_exception_type,
  ended: isoFromMicros(r.end_us),
});

export function registerUserSummary(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'user_summary',
    {
      description:
        "One user's jobs in [since, until): submitted ones by current state, core-/node-hours run, queue waits of " +
        'those started (as wait_time_stats), latest failures (failed or timeout).',
      inputSchema: UserSummaryInputSchema,
      outputSchema: UserSummaryOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'user_summary', async () => {
        const signal = ctx.mcpReq.signal;
        const w = resolveWindow(args, deps.now());
        const { where: filters, params } = jobFilters({ user: args.user, cluster: args.cluster });
        const all = { ...params, ...windowParams(w), failures: args.failures };
        const mayReadJobs = canReadJob(deps.identity, args.user, deps.jobDetails);
        const [states, [agg], failures] = await Promise.all([
          selectRows<{ s: string; n: Count }>(deps, stateCountsSql(filters), all, signal),
          selectRows<WaitAggregatesRow & { core_us: number; node_us: number }>(deps, usageAndWaitSql(filters), all, signal),
          mayReadJobs ? selectRows<FailureRow>(deps, recentFailuresSql(filters), all, signal) : Promise.resolve(null),
        ]);
        const byState = Object.fromEntries(states.map((r) => [r.s, Number(r.n)]));
        const submitted = Object.values(byState).reduce((a, b) => a + b, 0);
        const wait = agg ? waitStats(agg) : waitStats({ wait_jobs: 0, wait_q: [], wait_mean: null, wait_max: null });
        if (submitted === 0 && wait.jobs === 0 && !(agg && agg.core_us > 0) && !failures?.length) {
          const [known] = await selectRows<{ n: Count }>(
            deps,
            `SELECT count() AS n FROM {db:Identifier}.jobs FINAL WHERE ${where(filters)}`,
            params,
            signal,
          );
          if (Number(known?.n ?? 0) === 0) {
            throw new ToolInputError(
              `no jobs of user "${args.user}" on record${args.cluster ? ` on ${args.cluster}` : ''}; user names are exact (search_jobs shows jobs with their users)`,
            );
          }
        }
        const out: UserSummaryOutput = {
          user: args.user,
          ...windowOut(w),
          submitted,
          by_state: byState,
          core_hours: round((agg?.core_us ?? 0) / 3.6e9, 3),
          node_hours: round((agg?.node_us ?? 0) / 3.6e9, 3),
          wait,
          ...(failures && { recent_failures: failures.map(failure) }),
        };
        return toolResult(out);
      }),
  );
}
