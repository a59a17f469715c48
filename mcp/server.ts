/**
 * The jobscribe MCP service: `createJobscribeServer(deps, identity)` builds an McpServer for one
 * identity with every tool (tools/: one file each — the job tools get_job, search_jobs,
 * job_timeline, wait_for_job and queue_summary; the analytics tools; cluster_status,
 * describe_schema and run_sql; the action tools in tools/actions/), the resources
 * (resources.ts), prompts (prompts.ts), completions and the logging capability. An identity is
 * listed only the tools it can use (approve_command only to approvers). It does no I/O itself;
 * building one takes ~0.4 ms of CPU, so the HTTP transport reuses closed ones per identity
 * (serverPool.ts) rather than building one per request. Reads of the hot tools go through the
 * read cache when deps has one (readCache.ts).
 *
 * Owns: the tools' contracts (schemas/tools), their SQL (fixed text, values as query_params,
 * read-only settings and time/row limits on every query) and the agent-facing error texts.
 * Leaves to others: transports (stdio.ts, http.ts wrap this factory), authentication (auth.ts),
 * opening ClickHouse (deploy/).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { McpServer } from '@modelcontextprotocol/server';
import { LOCAL_IDENTITY, type Identity, type JobDetailsPolicy } from './identity.js';
import type { ToolMetricsSink } from './metrics.js';
import { leanToolSchemas } from './leanSchema.js';
import type { ReadCache } from './readCache.js';
import type { QueryDeps } from './sql.js';
import { registerGetJob } from './tools/getJob.js';
import { registerWaitForJob } from './tools/waitForJob.js';
import { registerClusterStatus, type LogPartitionLag } from './tools/clusterStatus.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import { registerJobTimeline } from './tools/jobTimeline.js';
import { registerQueueSummary } from './tools/queueSummary.js';
import { registerSearchJobs } from './tools/searchJobs.js';
import { registerActionTools, type ActionSettings } from './tools/actions/index.js';
import { registerFailureAnalysis } from './tools/failureAnalysis.js';
import { registerThroughput } from './tools/throughput.js';
import { registerUserSummary } from './tools/userSummary.js';
import { registerUtilization, type CapacityConfig } from './tools/utilization.js';
import { registerWaitTimeStats } from './tools/waitTimeStats.js';
import type { RunSqlLimits } from './safeSql.js';
import { PROCESS_SQL_BUDGET, type SqlBudget } from './sqlBudget.js';
import { registerDescribeSchema } from './tools/describeSchema.js';
import { registerRunSql, runSqlLimits } from './tools/runSql.js';

export interface McpDeps extends ActionSettings {
  clickhouse: ClickHouseClient;
  /** Database holding `jobs` and `job_events`. */
  database: string;
  limits?: {
    /** Most rows one query returns (events of a timeline, queue groups). Default 1000. */
    maxRows?: number;
    /** ClickHouse max_execution_time per query, seconds. Default 10. */
    maxExecutionTimeS?: number;
    /** run_sql caps (mcp/safeSql.ts): rows 1000, bytes 262144, 30 s (at most 30), memory 1 GiB by default. */
    sql?: Partial<RunSqlLimits>;
  };
  /** Milliseconds since the epoch; "now" for relative times and in-progress durations. */
  now?: () => number;
  /** Where store failures are reported in full (the agent sees one line). Default: stderr. */
  logError?: (message: string) => void;
  /** Whose job details a non-admin identity may read. Default `own`. */
  jobDetails?: JobDetailsPolicy;
  /** Receives every tool call's outcome and duration (http.ts passes its /metrics registry). */
  metrics?: ToolMetricsSink;
  /** The projector's lag on every events-topic partition, when this process has the event log
   *  (deploy/: `projectorLagOf`); cluster_status reports projector lag as unknown without it. */
  logLag?: () => Promise<LogPartitionLag[]>;
  /** Size of each cluster, for `utilization`; clusters missing here get capacity inferred from jobs. */
  capacity?: CapacityConfig;
  /**
   * Where run_sql runs, apart from the purpose-built tools (`clickhouse`) so they never wait
   * behind an agent's query: non-admins' queries on `users`, admins' on `admins`
   * (deploy/: `OpenedClickHouse.connect`). Default: `clickhouse`.
   */
  sqlClickhouse?: { users: ClickHouseClient; admins: ClickHouseClient };
  /**
   * Where the point lookups (one job by id: get_job, job_timeline, job resources) run, apart from
   * the list and aggregate queries, so they never wait in line behind those (deploy/up.ts:
   * a chDB connection of their own). Default: `clickhouse`.
   */
  lookupClickhouse?: ClickHouseClient;
  /** run_sql queries in flight per identity (mcp/sqlBudget.ts). Default: one budget per process. */
  sqlBudget?: SqlBudget;
  /**
   * The hot read tools' query results per read-model position (mcp/readCache.ts), one per
   * process, fed by the in-process projector (deploy/up.ts); without it (the projector in
   * another process) every query runs.
   */
  readCache?: ReadCache;
}


export const SERVER_INFO = { name: 'jobscribe', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'jobscribe records every job event of the HPC clusters it watches (Flux, Slurm). Use search_jobs to find jobs, ' +
  'get_job for one job, job_timeline to explain its waits and failures, queue_summary for what is queued now; ' +
  'wait_time_stats, throughput, failure_analysis, utilization and user_summary for trends over [since, until) ' +
  '(ISO-8601 or relative like "-7d"); describe_schema then run_sql (one read-only SELECT) for anything else. ' +
  'Job ids are decimal strings or Flux f58 ids (ƒRcvRGc7); times are UTC ISO-8601. ' +
  'Actions (cancel_job, hold_job, release_job, set_urgency, signal_job, submit_job, act_on_jobs, cancel_jobs) go to the cluster as commands; ' +
  'command_status reports them later.';

/** Resolves defaults once; the tools see complete settings. */
export function queryDeps(deps: McpDeps, identity: Identity = LOCAL_IDENTITY): QueryDeps {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(deps.database)) {
    throw new Error(`database name "${deps.database}" is not a plain identifier`);
  }
  const maxRows = deps.limits?.maxRows ?? 1000;
  const maxExecutionTimeS = deps.limits?.maxExecutionTimeS ?? 10;
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new Error(`limits.maxRows must be a positive integer, got ${maxRows}`);
  if (!(maxExecutionTimeS > 0)) throw new Error(`limits.maxExecutionTimeS must be positive, got ${maxExecutionTimeS}`);
  return {
    clickhouse: deps.clickhouse,
    database: deps.database,
    limits: { maxRows, maxExecutionTimeS },
    now: deps.now ?? Date.now,
    logError: deps.logError ?? ((m) => process.stderr.write(`${m}\n`)),
    identity,
    jobDetails: deps.jobDetails ?? 'own',
    ...(deps.metrics && { metrics: deps.metrics }),
    ...(deps.readCache && { cache: deps.readCache }),
    ...(deps.lookupClickhouse && { lookupClickhouse: deps.lookupClickhouse }),
  };
}

/**
 * Store failures also go to a 2025-era client as a `notifications/message` at level error (first
 * line only: tool, reference and cause; the stack stays in the server log); the SDK drops it
 * below the level set with logging/setLevel. The 2026-07-28 revision has no session log level
 * (a request asks for logs in its own _meta), so nothing unsolicited is sent there.
 */
function withClientLogging(q: QueryDeps, server: McpServer): QueryDeps {
  return {
    ...q,
    logError: (message) => {
      q.logError(message);
      const version = server.server.getNegotiatedProtocolVersion();
      if (version === undefined || version >= '2026-07-28') return;
      const data = (message.split('\n', 1)[0] ?? '').slice(0, 500);
      server.sendLoggingMessage({ level: 'error', logger: 'jobscribe', data }).catch(() => undefined);
    },
  };
}

/** One server for one identity (LOCAL_IDENTITY: stdio, unauthenticated loopback HTTP). */
export function createJobscribeServer(deps: McpDeps, identity: Identity = LOCAL_IDENTITY): McpServer {
  const server = new McpServer(SERVER_INFO, {
    instructions: INSTRUCTIONS,
    capabilities: {
      tools: { listChanged: false },
      resources: { listChanged: false },
      prompts: { listChanged: false },
      completions: {},
      logging: {},
    },
    maxToolInputElements: 200,
  });
  leanToolSchemas(server);
  const q = withClientLogging(queryDeps(deps, identity), server);
  registerGetJob(server, q);
  registerSearchJobs(server, q);
  registerJobTimeline(server, q);
  registerWaitForJob(server, q);
  registerQueueSummary(server, q);
  registerWaitTimeStats(server, q);
  registerThroughput(server, q);
  registerFailureAnalysis(server, q);
  registerUtilization(server, q, deps.capacity);
  registerUserSummary(server, q);
  registerClusterStatus(server, q, deps.logLag);
  const sqlLimits = runSqlLimits(deps.limits?.sql);
  registerDescribeSchema(server, q, sqlLimits);
  registerRunSql(server, q, sqlLimits, { ...(deps.sqlClickhouse && { clients: deps.sqlClickhouse }), budget: deps.sqlBudget ?? PROCESS_SQL_BUDGET });
  registerActionTools(server, q, deps);
  registerResources(server, q, deps.logLag, sqlLimits);
  registerPrompts(server, q);
  return server;
}
