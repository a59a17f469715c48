/**
 * `search_jobs`: filtered job summaries with keyset pagination. The cursor is opaque base64url
 * JSON holding the last row's sort key, cluster and job id, the `as_of` time (so relative filters
 * and in-progress waits do not drift between pages) and a fingerprint of the filters and sort.
 * Rows inserted between pages never shift later pages: each page starts strictly after the key.
 * An identity restricted to its own jobs (findJob.ts `jobScope`) searches only those.
 * Pages and counts go through the read cache (readCache.ts); waits and run times of jobs in
 * progress are measured in JavaScript to the call's as_of (rows.ts waitAndRun), so cached rows
 * never carry an old "now".
 */
import { createHash } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { parseTimeArg } from '../../schemas/tools/common.js';
import {
  SearchJobsInputSchema,
  SearchJobsOutputSchema,
  type SearchJobsInput,
  type SearchJobsOutput,
  type SearchSort,
} from '../../schemas/tools/searchJobs.js';
import { jobScope, type JobScope } from '../findJob.js';
import { runTool, toolResult, ToolInputError } from '../results.js';
import { JOB_SUMMARY_COLUMNS, RUN_US_EXPR, WAIT_US_EXPR, isoFromMicros, jobSummary, microsNow, type JobSummaryRow } from '../rows.js';
import { LIST_LAG_MS, LIST_REFRESH_MS, userTag } from '../readCache.js';
import { cachedRows, type QueryDeps } from '../sql.js';

const SORT_KEYS: Record<SearchSort, { key: string; dir: 'ASC' | 'DESC' }> = {
  submit_desc: { key: 'toUnixTimestamp64Micro(t_submit)', dir: 'DESC' },
  submit_asc: { key: 'toUnixTimestamp64Micro(t_submit)', dir: 'ASC' },
  wait_desc: { key: WAIT_US_EXPR, dir: 'DESC' },
  runtime_desc: { key: RUN_US_EXPR, dir: 'DESC' },
};

const CursorSchema = z.object({
  v: z.literal(1),
  f: z.string(),
  a: z.number().int(),
  k: z.string().regex(/^-?\d{1,19}$/),
  c: z.string(),
  j: z.string().regex(/^\d{1,20}$/),
});
type Cursor = z.infer<typeof CursorSchema>;

function fingerprint(args: SearchJobsInput): string {
  const states = args.state === undefined ? null : [...new Set([args.state].flat())].sort();
  const canonical = JSON.stringify([
    args.cluster ?? null,
    args.user ?? null,
    args.queue ?? null,
    states,
    args.name ?? null,
    args.submitted_after ?? null,
    args.submitted_before ?? null,
    args.sort,
    // filters added later go last, so cursors of searches without them keep their fingerprint
    ...(['node', 'held', 'exit_code', 'signal', 'min_wait_s', 'max_wait_s', 'min_limit_used', 'max_limit_used'] as const).flatMap((k) => (args[k] === undefined ? [] : [[k, args[k]]])),
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(text: string, expectedFingerprint: string): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const cursor = CursorSchema.safeParse(parsed);
  if (!cursor.success) {
    throw new ToolInputError('cursor is not a next_cursor that search_jobs returned; pass it back unchanged, or drop it to start from the first page');
  }
  if (cursor.data.f !== expectedFingerprint) {
    throw new ToolInputError(
      'cursor belongs to a search with other filters or sort; repeat that search with the same arguments (only limit may change), or drop cursor to start over',
    );
  }
  return cursor.data;
}

function filters(args: SearchJobsInput, asof: number, scope: JobScope | undefined): { where: string[]; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { asof };
  if (scope) {
    if (args.user !== undefined && args.user !== scope.user) {
      throw new ToolInputError(
        `user '${args.user}': you may search only your own jobs (user ${scope.user}); drop user or set it to ${scope.user}, ` +
          'or use the aggregate tools (queue_summary and the like) for other users',
      );
    }
    where.push('user = {scope_user:String}');
    params.scope_user = scope.user;
  }
  if (args.cluster !== undefined) {
    where.push('cluster = {cluster:String}');
    params.cluster = args.cluster;
  }
  if (args.user !== undefined) {
    where.push('user = {user:String}');
    params.user = args.user;
  }
  if (args.queue !== undefined) {
    where.push('queue = {queue:String}');
    params.queue = args.queue;
  }
  if (args.state !== undefined) {
    where.push('state IN {states:Array(String)}');
    params.states = [...new Set([args.state].flat())];
  }
  if (args.name !== undefined) {
    where.push('positionCaseInsensitiveUTF8(name, {name:String}) > 0');
    params.name = args.name;
  }
  const after = args.submitted_after === undefined ? undefined : parseTimeArg(args.submitted_after, asof);
  const before = args.submitted_before === undefined ? undefined : parseTimeArg(args.submitted_before, asof);
  if (after !== undefined && before !== undefined && after >= before) {
    throw new ToolInputError(
      `submitted_after (${isoFromMicros(after)}) is not before submitted_before (${isoFromMicros(before)}); nothing can match, widen the range`,
    );
  }
  if (args.node !== undefined) {
    where.push('has(nodes, {node:String})');
    params.node = args.node;
  }
  if (args.held !== undefined) {
    where.push('held = {held:Bool}');
    params.held = args.held;
  }
  if (args.exit_code !== undefined) {
    where.push('exit_code = {exit_code:Int32}');
    params.exit_code = args.exit_code;
  }
  if (args.signal !== undefined) {
    where.push('signal_name = {signal:String}');
    params.signal = args.signal.toUpperCase().startsWith('SIG') ? args.signal.toUpperCase() : `SIG${args.signal.toUpperCase()}`;
  }
  for (const [arg, cmp] of [['min_wait_s', '>='], ['max_wait_s', '<=']] as const) {
    if (args[arg] === undefined) continue;
    where.push(`${WAIT_US_EXPR} >= 0 AND ${WAIT_US_EXPR} ${cmp} {${arg}:Int64}`);
    params[arg] = Math.round(args[arg] * 1e6);
  }
  if (args.min_wait_s !== undefined && args.max_wait_s !== undefined && args.min_wait_s > args.max_wait_s) {
    throw new ToolInputError(`min_wait_s (${args.min_wait_s}) is above max_wait_s (${args.max_wait_s}); nothing can match`);
  }
  // Fraction of the time limit used: jobs with a limit and a run time (running ones so far).
  for (const [arg, cmp] of [['min_limit_used', '>='], ['max_limit_used', '<=']] as const) {
    if (args[arg] === undefined) continue;
    where.push(`time_limit_s > 0 AND ${RUN_US_EXPR} >= 0 AND ${RUN_US_EXPR} / 1e6 / assumeNotNull(time_limit_s) ${cmp} {${arg}:Float64}`);
    params[arg] = args[arg];
  }
  if (after !== undefined) {
    where.push('toUnixTimestamp64Micro(t_submit) >= {after:Int64}');
    params.after = after;
  }
  if (before !== undefined) {
    where.push('toUnixTimestamp64Micro(t_submit) < {before:Int64}');
    params.before = before;
  }
  return { where, params };
}

export function registerSearchJobs(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'search_jobs',
    {
      title: 'Search jobs',
      description:
        'Find jobs by cluster, user, queue, state(s), name substring, submit-time range (ISO-8601 or relative like "-24h"), ' +
        'node, held, exit code, signal, queue wait, or fraction of the time limit used, ' +
        'sorted by submit time, queue wait or run time. Returns compact summaries, a next_cursor for the next page ' +
        '(pass it back with the same arguments), and on the first page the total number of matches.',
      inputSchema: SearchJobsInputSchema,
      outputSchema: SearchJobsOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'search_jobs', async () => {
        const signal = ctx.mcpReq.signal;
        const fp = fingerprint(args);
        const cursor = args.cursor === undefined ? undefined : decodeCursor(args.cursor, fp);
        const asof = cursor?.a ?? microsNow(deps.now());
        const scope = jobScope(deps);
        const { where, params } = filters(args, asof, scope);
        // Rows of one user's jobs only: cached until a batch touches that user's jobs (readCache.ts).
        const onlyUser = scope?.user ?? args.user;
        const tag = onlyUser === undefined ? undefined : userTag(onlyUser);
        const sort = SORT_KEYS[args.sort];
        const cmp = sort.dir === 'DESC' ? '<' : '>';
        const pageWhere = cursor
          ? [...where, `(sort_key, cluster, job_id) ${cmp} ({cursor_key:Int64}, {cursor_cluster:String}, {cursor_job:UInt64})`]
          : where;
        const whereSql = (w: string[]) => (w.length ? `WHERE ${w.join('\n  AND ')}` : '');
        // The first page counts every match in the same query (a window over the filtered rows,
        // computed before LIMIT): one engine query per call, not two.
        const rows = await cachedRows<JobSummaryRow & { sort_key_s: string; total_n?: string | number }>(
          deps,
          `SELECT ${JOB_SUMMARY_COLUMNS}, ${sort.key} AS sort_key, toString(sort_key) AS sort_key_s${cursor ? '' : ', count() OVER () AS total_n'}
           FROM {db:Identifier}.jobs FINAL
           ${whereSql(pageWhere)}
           ORDER BY sort_key ${sort.dir}, cluster ${sort.dir}, job_id ${sort.dir}
           LIMIT {page_rows:UInt32}`,
          {
            ...params,
            page_rows: args.limit + 1,
            ...(cursor && { cursor_key: cursor.k, cursor_cluster: cursor.c, cursor_job: cursor.j }),
          },
          signal,
          tag,
          LIST_LAG_MS,
          LIST_REFRESH_MS,
        );
        const shown = rows.slice(0, args.limit);
        const last = shown.at(-1);
        const out: SearchJobsOutput = {
          jobs: shown.map((r) => jobSummary(r, asof)),
          next_cursor:
            rows.length > args.limit && last
              ? encodeCursor({ v: 1, f: fp, a: asof, k: last.sort_key_s, c: last.cluster, j: last.job_id_s })
              : null,
          as_of: isoFromMicros(asof),
        };
        if (!cursor) out.total_matching = Number(rows[0]?.total_n ?? 0);
        return toolResult(out);
      }),
  );
}
