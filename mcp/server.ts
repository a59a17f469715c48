/**
 * The jobscribe MCP service: `createJobscribeServer(deps)` builds an McpServer with the read-only
 * job tools (get_job, search_jobs, job_timeline, queue_summary) over the `jobs` and `job_events`
 * tables. It does no I/O itself and is cheap, so transports may build one per request.
 *
 * Owns: the tools' contracts (schemas/tools), their SQL (fixed text, values as query_params,
 * read-only settings and time/row limits on every query) and the agent-facing error texts.
 * Leaves to others: transports (stdio.ts, http.ts wrap this factory), authentication and
 * authorization (not yet: http.ts refuses non-loopback binds), opening ClickHouse (deploy/).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { McpServer } from '@modelcontextprotocol/server';
import { LOCAL_IDENTITY, type Identity, type JobDetailsPolicy } from './identity.js';
import type { QueryDeps } from './sql.js';
import { registerGetJob } from './tools/getJob.js';
import { registerJobTimeline } from './tools/jobTimeline.js';
import { registerQueueSummary } from './tools/queueSummary.js';
import { registerSearchJobs } from './tools/searchJobs.js';

export interface McpDeps {
  clickhouse: ClickHouseClient;
  /** Database holding `jobs` and `job_events`. */
  database: string;
  limits?: {
    /** Most rows one query returns (events of a timeline, queue groups). Default 1000. */
    maxRows?: number;
    /** ClickHouse max_execution_time per query, seconds. Default 10. */
    maxExecutionTimeS?: number;
  };
  /** Milliseconds since the epoch; "now" for relative times and in-progress durations. */
  now?: () => number;
  /** Where store failures are reported in full (the agent sees one line). Default: stderr. */
  logError?: (message: string) => void;
  /** Whose job details a non-admin identity may read. Default `own`. */
  jobDetails?: JobDetailsPolicy;
}

export const SERVER_INFO = { name: 'jobscribe', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'jobscribe records every job event of the HPC clusters it watches (Flux, Slurm). Use search_jobs to find jobs, ' +
  'get_job for one job, job_timeline to explain its waits and failures, queue_summary for what is queued now. ' +
  'Job ids are decimal strings or Flux f58 ids (ƒRcvRGc7); times are UTC ISO-8601. Data is read-only.';

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
  };
}

/** One server for one identity (LOCAL_IDENTITY: stdio, unauthenticated loopback HTTP). */
export function createJobscribeServer(deps: McpDeps, identity: Identity = LOCAL_IDENTITY): McpServer {
  const q = queryDeps(deps, identity);
  const server = new McpServer(SERVER_INFO, {
    instructions: INSTRUCTIONS,
    capabilities: { tools: { listChanged: false } },
    maxToolInputElements: 200,
  });
  registerGetJob(server, q);
  registerSearchJobs(server, q);
  registerJobTimeline(server, q);
  registerQueueSummary(server, q);
  return server;
}
