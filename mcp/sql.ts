/**
 * How the MCP tools read ClickHouse: fixed SQL text, user values only through `query_params`, and
 * the read-only settings bundle on every query.
 *
 * The bundle goes into the statement's own `SETTINGS` clause, NOT into `clickhouse_settings`:
 * over chDB, `@clickhouse/client`'s `clickhouse_settings` become `SET k = v;` statements that
 * persist in the engine's one session, so `readonly` would then refuse the projector's inserts
 * in the same process (verified with chdb 3.4). A query-level `SETTINGS` clause is scoped to that
 * query on chDB and on a server alike; `readonly = 1` there still allows the other settings of
 * the same clause (they are checked against the settings before the clause applies).
 */
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import type { Identity, JobDetailsPolicy } from './identity.js';
import type { ToolMetricsSink } from './metrics.js';
import { ReadCache } from './readCache.js';

export interface QueryLimits {
  /** Largest number of rows one query may return (the tools ask for at most this + 1). */
  maxRows: number;
  maxExecutionTimeS: number;
}

/** The settings every MCP query runs with. */
export function readOnlySettings(limits: QueryLimits): ClickHouseSettings {
  return {
    readonly: '1',
    max_execution_time: limits.maxExecutionTimeS,
    max_result_rows: String(limits.maxRows + 1),
    result_overflow_mode: 'throw',
    // 64-bit integers as JSON strings: Flux job ids exceed 2^53.
    output_format_json_quote_64bit_integers: 1,
  };
}

/** A ClickHouse string literal of a value of ours (backslash and quote escaped). */
export function sqlStringLiteral(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Renders a settings bundle as a `SETTINGS` clause. Names and values are ours, never user input. */
export function settingsClause(settings: ClickHouseSettings | Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad setting name ${name}`);
    if (typeof value === 'number' || typeof value === 'boolean') parts.push(`${name} = ${Number(value)}`);
    else parts.push(`${name} = ${sqlStringLiteral(String(value))}`);
  }
  return parts.length ? `SETTINGS ${parts.join(', ')}` : '';
}

export interface QueryDeps {
  clickhouse: ClickHouseClient;
  database: string;
  limits: QueryLimits;
  /** Milliseconds since the epoch. */
  now: () => number;
  logError: (message: string) => void;
  /** Who is asking (mcp/identity.ts): job-detail tools restrict rows to what it may read. */
  identity: Identity;
  jobDetails: JobDetailsPolicy;
  /** Where runTool reports each call's outcome and duration (mcp/metrics.ts); none when unset. */
  metrics?: ToolMetricsSink;
  /** Where point lookups run (findJob.ts), apart from the other queries; default `clickhouse`. */
  lookupClickhouse?: ClickHouseClient;
  /** Results of the hot read queries, per read-model position (mcp/readCache.ts); none: every query runs. */
  cache?: ReadCache;
}

/**
 * Runs one read-only SELECT and returns its rows. `sql` references the database as
 * `{db:Identifier}`; the settings clause is appended here.
 */
export async function selectRows<T>(
  deps: QueryDeps,
  sql: string,
  params: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<T[]> {
  const rs = await deps.clickhouse.query({
    query: `${sql}\n${settingsClause(readOnlySettings(deps.limits))}`,
    query_params: { db: deps.database, ...params },
    format: 'JSONEachRow',
    abort_signal: signal,
  });
  return rs.json<T>();
}

/**
 * `selectRows` through the read cache (when the deps have one): the same rows, frozen, shared
 * with other callers of the same query at the same read-model position. `tag` (readCache.ts
 * jobTag / userTag): every row the query reads carries it, so it stays cached until a batch
 * touches it. `lagMs`, `refreshAfterMs`: the rows may miss batches younger than `lagMs`, and are
 * queried again in the background past `refreshAfterMs` (readCache.ts LIST_LAG_MS).
 * The query itself runs without the caller's signal (other callers may be waiting on it; every
 * query is bounded by max_execution_time); the caller still stops waiting when it aborts.
 */
export async function cachedRows<T>(
  deps: QueryDeps,
  sql: string,
  params: Record<string, unknown>,
  signal?: AbortSignal,
  tag?: string,
  lagMs = 0,
  refreshAfterMs = lagMs,
): Promise<readonly T[]> {
  const cache = deps.cache;
  if (!cache) return selectRows<T>(deps, sql, params, signal);
  signal?.throwIfAborted();
  // The key holds every parameter the text uses (an unused one, like search_jobs' as-of time when
  // no column needs it, must not make equal queries differ).
  const used = Object.fromEntries(Object.entries({ db: deps.database, ...params }).filter(([name]) => sql.includes(`{${name}:`)));
  const rows = cache.rows<T>(ReadCache.key(sql, used), tag, () => selectRows<T>(deps, sql, params), lagMs, refreshAfterMs);
  if (!signal) return rows;
  return new Promise<readonly T[]>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    signal.addEventListener('abort', onAbort, { once: true });
    rows.then(
      (r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
