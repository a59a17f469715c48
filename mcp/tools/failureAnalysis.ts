/**
 * `failure_analysis`: jobs that ended unsuccessfully in [since, until) (state failed or timeout,
 * and canceled on request; ended = t_end, else t_inactive), counted per dimension (exit_code only
 * for jobs whose process exited, signal by name: exit.ts's rule) in one
 * ClickHouse pass: each job becomes one (dimension, value) row per dimension (one per allocated
 * node for `node`), grouped, the `top` values of each kept (LIMIT BY). Examples are the most
 * recently ended jobs of a value among those the identity may read (mcp/identity.ts).
 *
 * Examples are aggregated as one packed integer per job, (asof − end) << 64 | job_id, so
 * groupArraySorted compares integers: carrying string tuples through the per-dimension rows made
 * the query about five times slower on a million jobs. Their clusters come from a second, bounded
 * query (at most 3 × 7 × top job ids).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import {
  FAILURE_DIMENSIONS,
  FAILURE_EXAMPLES,
  FailureAnalysisInputSchema,
  FailureAnalysisOutputSchema,
  type FailureAnalysisOutput,
  type FailureDimension,
  type FailureValue,
} from '../../schemas/tools/failureAnalysis.js';
import { END_US_SQL, ENDED_IN_WINDOW_SQL, jobFilters, resolveWindow, windowOut, windowParams } from '../analytics.js';
import { jobDetailsUserFilter } from '../identity.js';
import { runTool, toolResult } from '../results.js';
import { selectRows, type QueryDeps } from '../sql.js';

type Count = string | number;
interface ValueRow {
  dim: FailureDimension;
  /** '' stands for none (no exception, no exit code, no signal, no node). */
  val: string;
  jobs: Count;
  /** Packed examples, most recent first (UInt128 as text). */
  examples: string[];
}
interface ExampleRow {
  g_cluster: string;
  job_id_s: string;
  end_us: string;
}

/** Which example jobs the identity may see: params for READABLE_SQL. */
function readableParams(q: QueryDeps): Record<string, string | number> {
  const scope = jobDetailsUserFilter(q.identity, q.jobDetails);
  if (scope === undefined) return { ex_all: 1, ex_user: '', ex_own: 0 };
  return 'user' in scope ? { ex_all: 0, ex_user: scope.user, ex_own: 1 } : { ex_all: 0, ex_user: '', ex_own: 0 };
}
const READABLE_SQL = `({ex_all:UInt8} = 1 OR ({ex_own:UInt8} = 1 AND user = {ex_user:String}))`;

const FAILING_SQL = [ENDED_IN_WINDOW_SQL, 'state IN {states:Array(String)}'];

export function failureValuesSql(where: string[]): string {
  return `SELECT dv.1 AS dim, dv.2 AS val, count() AS jobs,
       groupArraySortedIf(${FAILURE_EXAMPLES})(packed, readable) AS examples
     FROM (
       SELECT bitShiftLeft(toUInt128({asof_us:Int64} - ${END_US_SQL}), 64) + job_id AS packed, ${READABLE_SQL} AS readable,
              arrayJoin(arrayConcat(
                [tuple('result', toString(result)), tuple('exception_type', exception_type),
                 tuple('exit_code', ifNull(toString(exit_code), '')), tuple('signal', toString(signal_name)),
                 tuple('user', user), tuple('queue', toString(queue))],
                if(empty(nodes), [tuple('node', '')], arrayMap(n -> tuple('node', n), nodes)))) AS dv
       FROM {db:Identifier}.jobs FINAL
       WHERE ${[...FAILING_SQL, ...where].join(' AND ')}
     )
     GROUP BY dim, val
     ORDER BY dim, jobs DESC, val
     LIMIT {top:UInt32} BY dim`;
}

export function failureTotalsSql(where: string[]): string {
  return `SELECT count() AS ended, countIf(state IN {states:Array(String)}) AS failures
     FROM {db:Identifier}.jobs FINAL
     WHERE ${[ENDED_IN_WINDOW_SQL, ...where].join(' AND ')}`;
}

/** The clusters of the example jobs (by id and end time, as packed). */
export function exampleClustersSql(where: string[]): string {
  return `SELECT cluster AS g_cluster, toString(job_id) AS job_id_s, toString(${END_US_SQL}) AS end_us
     FROM {db:Identifier}.jobs FINAL
     WHERE ${[...FAILING_SQL, 'job_id IN {example_ids:Array(UInt64)}', ...where].join(' AND ')}
     ORDER BY g_cluster
     LIMIT {max_rows:UInt32}`;
}

const MASK64 = (1n << 64n) - 1n;
/** A packed example → its job id and end time (microseconds, as text). */
function unpack(packed: string, asof: number): { jobId: string; endUs: string } {
  const p = BigInt(packed);
  return { jobId: String(p & MASK64), endUs: String(BigInt(asof) - (p >> 64n)) };
}

export function registerFailureAnalysis(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'failure_analysis',
    {
      description:
        'Jobs ended failed or timeout (canceled too if include_canceled) in [since, until), counted by result, ' +
        'exception_type, exit_code, signal (name), user, queue, node (null: none), top first, each with ≤3 recent ' +
        'example jobs you may read. exit_code counts only jobs whose process exited: killed ones are under signal, ' +
        'ones that never ran under exception_type (both null in exit_code).',
      inputSchema: FailureAnalysisInputSchema,
      outputSchema: FailureAnalysisOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'failure_analysis', async () => {
        const signal = ctx.mcpReq.signal;
        const w = resolveWindow(args, deps.now());
        const { where, params } = jobFilters(args);
        const states = args.include_canceled ? ['failed', 'timeout', 'canceled'] : ['failed', 'timeout'];
        // Every dimension's values must fit in one answer (max_result_rows).
        const top = Math.max(1, Math.min(args.top, Math.floor(deps.limits.maxRows / FAILURE_DIMENSIONS.length)));
        const all = { ...params, ...windowParams(w), ...readableParams(deps), states, top };
        const [[totals], values] = await Promise.all([
          selectRows<{ ended: Count; failures: Count }>(deps, failureTotalsSql(where), all, signal),
          selectRows<ValueRow>(deps, failureValuesSql(where), all, signal),
        ]);

        const ids = [...new Set(values.flatMap((r) => r.examples.map((p) => unpack(p, w.asof).jobId)))];
        const clustersOf = new Map<string, string>();
        if (ids.length > 0) {
          const rows = await selectRows<ExampleRow>(
            deps,
            exampleClustersSql(where),
            { ...all, example_ids: ids.map(BigInt), max_rows: deps.limits.maxRows + 1 },
            signal,
          );
          // Rows come by cluster name: an id and end time on two clusters (never seen) takes the first.
          for (const r of rows) if (!clustersOf.has(`${r.job_id_s}@${r.end_us}`)) clustersOf.set(`${r.job_id_s}@${r.end_us}`, r.g_cluster);
        }
        const value = (r: ValueRow): FailureValue => ({
          value: r.val === '' ? null : r.val,
          jobs: Number(r.jobs),
          examples: r.examples.flatMap((p) => {
            const { jobId, endUs } = unpack(p, w.asof);
            const cluster = clustersOf.get(`${jobId}@${endUs}`);
            return cluster === undefined ? [] : [{ cluster, job_id: jobId }];
          }),
        });

        const by = Object.fromEntries(FAILURE_DIMENSIONS.map((d) => [d, [] as FailureValue[]])) as Record<FailureDimension, FailureValue[]>;
        for (const r of values) by[r.dim].push(value(r));
        const out: FailureAnalysisOutput = {
          ...windowOut(w),
          ended: Number(totals?.ended ?? 0),
          failures: Number(totals?.failures ?? 0),
          by,
        };
        return toolResult(out);
      }),
  );
}
