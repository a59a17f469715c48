/**
 * `run_sql`: one agent-written SELECT over the read-model tables, through the layers of
 * mcp/safeSql.ts: the validator (`validateSelect`), then the execution layer (`executeSelect`:
 * the wrapper with LIMIT, running byte count and the read-only SETTINGS clause), then the caps
 * (`capResult`). What an identity may read is `sqlScope`: an admin every read-model table; a
 * plain user under the `own` job-details policy only their own jobs' rows of `jobs` and
 * `job_events` and their own commands in `actions` (ClickHouse row filters applied wherever the
 * query reads those tables), and no `dead_letters` (raw records of anyone's jobs).
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { READ_MODEL_TABLES } from '../../schemas/clickhouse/ddl.js';
import { RunSqlInputSchema, RunSqlOutputSchema, type RunSqlOutput } from '../../schemas/tools/runSql.js';
import { hasRole, jobDetailsUserFilter, type Identity, type JobDetailsPolicy } from '../identity.js';
import { ToolInputError, runTool, toolResult } from '../results.js';
import {
  BYTES_COLUMN,
  DEFAULT_RUN_SQL_LIMITS,
  ROWS_COLUMN,
  capResult,
  columnsTooLarge,
  executionSql,
  stringLiteral,
  validateSelect,
  type RowFilters,
  type RunSqlLimits,
} from '../safeSql.js';
import type { QueryDeps } from '../sql.js';
import { SqlBudget } from '../sqlBudget.js';
import type { ClickHouseClient } from '@clickhouse/client';

/** The tables run_sql may read: the read-model tables (never the event log's own tables). */
export const RUN_SQL_TABLES: readonly string[] = READ_MODEL_TABLES;

/** What run_sql lets one identity read: tables, and row filters on them (`refused` when nothing). */
export type SqlScope = { tables: readonly string[]; rowFilters: RowFilters } | { refused: string };

/**
 * The tables and rows an identity's run_sql reads. Pure. Job rows follow the job-details policy
 * (as get_job and search_jobs do); `actions` rows follow list_actions (admins and approvers see
 * every row, others their own commands, not the service's refusals); `dead_letters` is for admins.
 */
export function sqlScope(identity: Identity, policy: JobDetailsPolicy, database: string): SqlScope {
  if (hasRole(identity, 'admin')) return { tables: RUN_SQL_TABLES, rowFilters: {} };
  const jobs = jobDetailsUserFilter(identity, policy);
  if (jobs && 'none' in jobs) {
    return { refused: `run_sql: ${identity.subject} maps to no scheduler user, so it may read no job rows; use the summary tools (queue_summary, wait_time_stats, …)` };
  }
  const rowFilters: Record<string, string> = {};
  if (jobs) {
    const user = stringLiteral(jobs.user);
    rowFilters[`${database}.jobs`] = `user = ${user}`;
    // By the job's owner in `jobs`, not the event's own user field (not every event carries one).
    rowFilters[`${database}.job_events`] = `(cluster, job_id) IN (SELECT cluster, job_id FROM \`${database}\`.jobs WHERE user = ${user})`;
  }
  if (!hasRole(identity, 'approver')) rowFilters[`${database}.actions`] = `requested_by = ${stringLiteral(identity.subject)} AND status != 'refused'`;
  return { tables: RUN_SQL_TABLES.filter((t) => t !== 'dead_letters'), rowFilters };
}

/** run_sql limits from McpDeps.limits, defaults filled in and checked. */
export function runSqlLimits(given: Partial<RunSqlLimits> = {}): RunSqlLimits {
  const limits = { ...DEFAULT_RUN_SQL_LIMITS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`limits.sql ${k} must be a positive integer, got ${v}`);
  }
  if (limits.userMaxExecutionTimeS > limits.maxExecutionTimeS) limits.userMaxExecutionTimeS = limits.maxExecutionTimeS;
  if (limits.maxExecutionTimeS > 30) throw new Error(`limits.sql maxExecutionTimeS is at most 30, got ${limits.maxExecutionTimeS}`);
  return limits;
}

export interface SelectAnswer {
  columns: Array<{ name: string; type: string }>;
  /** Rows as ClickHouse returned them, wrapper columns included (capResult removes them). */
  rows: Array<Record<string, unknown>>;
  /** ClickHouse's rows_before_limit_at_least: rows the query had before the wrapper's LIMIT. */
  rowsBeforeLimit: number;
}

/**
 * The execution layer on its own: runs `sql` (validated or not) wrapped by `executionSql`.
 * Throws when the text guard refuses it; ClickHouse errors propagate.
 */
export async function executeSelect(deps: QueryDeps, sql: string, limits: RunSqlLimits, signal?: AbortSignal, rowFilters?: RowFilters): Promise<SelectAnswer> {
  const rs = await deps.clickhouse.query({ query: executionSql(sql, limits, rowFilters), format: 'JSON', abort_signal: signal });
  const json = await rs.json<Record<string, unknown>>();
  const columns = (json.meta ?? []).filter((c) => c.name !== BYTES_COLUMN && c.name !== ROWS_COLUMN);
  return { columns, rows: json.data, rowsBeforeLimit: Number(json.rows_before_limit_at_least ?? 0) };
}

/**
 * ClickHouse errors whose text speaks only of the query itself (names, types, syntax), never of
 * a row's values. A filtered identity sees other errors as their class and a hint: a failing
 * cast or throwIf() prints the value it failed on, and although a filtered query only ever
 * evaluates the identity's own rows, the error text is no channel to trust.
 */
const QUERY_SHAPE_ERRORS = new Set([
  'SYNTAX_ERROR', 'UNKNOWN_IDENTIFIER', 'UNKNOWN_FUNCTION', 'UNKNOWN_TABLE', 'UNKNOWN_AGGREGATE_FUNCTION',
  'NUMBER_OF_ARGUMENTS_DOESNT_MATCH', 'TOO_FEW_ARGUMENTS_FOR_FUNCTION', 'TOO_MANY_ARGUMENTS_FOR_FUNCTION',
  'AMBIGUOUS_COLUMN_NAME', 'AMBIGUOUS_IDENTIFIER', 'NOT_AN_AGGREGATE', 'ILLEGAL_AGGREGATION', 'UNKNOWN_TYPE',
  'NO_COMMON_TYPE', 'MULTIPLE_EXPRESSIONS_FOR_ALIAS', 'UNSUPPORTED_METHOD', 'NOT_IMPLEMENTED',
]);
/** A hint per error class for filtered identities, whose error text is withheld. */
const ERROR_HINTS: Record<string, string> = {
  CANNOT_PARSE_TEXT: 'a value could not be converted: use the OrNull/OrZero conversion functions (toUInt64OrNull, …)',
  CANNOT_PARSE_NUMBER: 'a value could not be converted: use the OrNull/OrZero conversion functions',
  CANNOT_PARSE_DATETIME: 'a value could not be read as a date: use parseDateTimeBestEffortOrNull',
  FUNCTION_THROW_IF_VALUE_IS_NON_ZERO: 'throwIf() fired',
  ILLEGAL_TYPE_OF_ARGUMENT: 'a function got an argument of the wrong type: describe_schema lists the column types',
  TYPE_MISMATCH: 'a value has the wrong type: describe_schema lists the column types',
  ILLEGAL_DIVISION: 'division by zero',
  ARGUMENT_OUT_OF_BOUND: 'an argument is out of range',
  BAD_ARGUMENTS: 'a function got a bad argument',
};

/** A ClickHouse error as a line the agent can act on (the query text it echoes is cut). */
function sqlErrorText(err: unknown, limits: RunSqlLimits, filtered = false): string | undefined {
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || !(err instanceof Error)) return undefined;
  if (type === 'TIMEOUT_EXCEEDED' || type === 'TOO_SLOW') {
    return `the query ran longer than ${limits.maxExecutionTimeS} s; filter on cluster, time (t_submit) or job_id first, or aggregate`;
  }
  if (type === 'MEMORY_LIMIT_EXCEEDED') {
    return `the query needs more than ${limits.maxMemoryBytes} bytes of memory; filter first, or aggregate fewer groups`;
  }
  if (type === 'QUERY_WAS_CANCELLED') return 'cancelled';
  if (filtered && !QUERY_SHAPE_ERRORS.has(type)) {
    return `ClickHouse refused the query (${type}): ${ERROR_HINTS[type] ?? 'the error text is withheld for identities whose rows are filtered; check the query against describe_schema'}`;
  }
  const first = err.message.split('\n')[0]!.replace(/\s*In scope [\s\S]*$/, '').replace(/\.?\s*$/, '');
  return `ClickHouse refused the query (${type}): ${first.slice(0, 400)}`;
}

export interface RunSqlPlacement {
  /** Connections of run_sql's own (McpDeps.sqlClickhouse); default the tools' one. */
  clients?: { users: ClickHouseClient; admins: ClickHouseClient };
  budget: SqlBudget;
}

export function registerRunSql(server: McpServer, deps: QueryDeps, limits: RunSqlLimits, placement: RunSqlPlacement = { budget: new SqlBudget() }): void {
  const tables = RUN_SQL_TABLES; // an admin's; sqlScope narrows them per identity
  server.registerTool(
    'run_sql',
    {
      title: 'Run a read-only SQL query',
      description:
        `One ClickHouse SELECT over ${tables.join(', ')} (columns: describe_schema). Read-only, ` +
        `at most ${limits.maxRows} rows / ${limits.maxBytes} bytes (truncated: true says when cut), ` +
        `${limits.userMaxExecutionTimeS} s (admins ${limits.maxExecutionTimeS} s), ${limits.userConcurrency} query at a time (admins ${limits.adminConcurrency}); rows limited to what you may read (as get_job). Prefer the dedicated tools; use this for questions they do not answer.`,
      inputSchema: RunSqlInputSchema,
      outputSchema: RunSqlOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'run_sql', async () => {
        const scope = sqlScope(deps.identity, deps.jobDetails, deps.database);
        if ('refused' in scope) throw new ToolInputError(scope.refused);
        if (args.max_rows !== undefined && args.max_rows > limits.maxRows) {
          throw new ToolInputError(`max_rows: at most ${limits.maxRows} (it may lower the cap, not raise it)`);
        }
        if (args.max_bytes !== undefined && args.max_bytes > limits.maxBytes) {
          throw new ToolInputError(`max_bytes: at most ${limits.maxBytes} (it may lower the cap, not raise it)`);
        }
        const filtered = Object.keys(scope.rowFilters).length > 0;
        const tableFilters = Object.fromEntries(Object.entries(scope.rowFilters).map(([t, f]) => [t.slice(deps.database.length + 1), f]));
        const checked = validateSelect(args.sql, { database: deps.database, tables: scope.tables, rowFilters: tableFilters });
        if (!checked.ok) throw new ToolInputError(`sql: ${checked.error}`);
        const maxRows = args.max_rows ?? limits.maxRows;
        const maxBytes = args.max_bytes ?? limits.maxBytes;
        const admin = hasRole(deps.identity, 'admin');
        const maxExecutionTimeS = admin ? limits.maxExecutionTimeS : Math.min(limits.userMaxExecutionTimeS, limits.maxExecutionTimeS);
        const concurrency = admin ? limits.adminConcurrency : limits.userConcurrency;
        const release = placement.budget.take(deps.identity.subject, concurrency);
        if (!release) {
          throw new ToolInputError(
            `run_sql: ${concurrency === 1 ? 'one query' : `${concurrency} queries`} at a time per identity, and ${deps.identity.subject} has ${concurrency === 1 ? 'one' : concurrency} running: wait for it to finish, then ask again`,
          );
        }
        const run = { ...limits, maxRows, maxBytes, maxExecutionTimeS };
        const clickhouse = placement.clients ? (admin ? placement.clients.admins : placement.clients.users) : deps.clickhouse;
        let answer: SelectAnswer;
        try {
          answer = await executeSelect({ ...deps, clickhouse }, checked.sql, run, ctx.mcpReq.signal, scope.rowFilters);
        } catch (err) {
          const text = sqlErrorText(err, run, filtered);
          if (text) throw new ToolInputError(`sql: ${text}`);
          throw err;
        } finally {
          release();
        }
        const tooWide = columnsTooLarge(answer.columns);
        if (tooWide) throw new ToolInputError(`sql: ${tooWide}`);
        const capped = capResult(answer.rows, maxRows, maxBytes, answer.rowsBeforeLimit);
        const out: RunSqlOutput = {
          columns: answer.columns,
          rows: capped.rows,
          row_count: capped.rows.length,
          truncated: capped.truncated,
          ...(capped.truncated_reason !== undefined && { truncated_reason: capped.truncated_reason }),
          limits: { max_rows: maxRows, max_bytes: maxBytes, max_execution_time_s: maxExecutionTimeS },
          executed_sql: checked.sql,
        };
        return toolResult(out);
      }),
  );
}
