/**
 * The MCP resources (JSON, read-only): `jobscribe://clusters` (every cluster's status),
 * `jobscribe://cluster/{name}` (one cluster's status and job counts per queue and state),
 * `jobscribe://job/{cluster}/{id}` (one job's row; a plain user reads only their own jobs) and
 * `jobscribe://schema` (the read model, from schemaDoc.ts). Also the completions of cluster
 * names and job ids, which prompts.ts reuses.
 *
 * Errors are JSON-RPC errors: an unknown cluster or job is ResourceNotFoundError with a hint;
 * another user's job answers like a missing one (findJob restricts the lookup, existence never
 * leaks); a store failure is logged with a reference and answered with one line (as results.ts).
 */
import {
  ProtocolError,
  ProtocolErrorCode,
  ResourceNotFoundError,
  ResourceTemplate,
  type McpServer,
  type ReadResourceResult,
} from '@modelcontextprotocol/server';
import { JOB_STATES, type JobState } from '../schemas/tools/common.js';
import { ClusterIdSchema, toF58 } from '../schemas/ids.js';
import { findJob } from './findJob.js';
import { jobDetailsUserFilter } from './identity.js';
import { logStoreFailure, ToolInputError } from './results.js';
import { jobDetail } from './rows.js';
import type { RunSqlLimits } from './safeSql.js';
import { schemaDocFor } from './tools/describeSchema.js';
import type { LogPartitionLag } from './tools/clusterStatus.js';
import { selectRows, type QueryDeps } from './sql.js';
import { clusterStatus, knownClusters } from './tools/clusterStatus.js';

const JSON_MIME = 'application/json';
/** Most suggestions one completion returns. */
export const COMPLETION_LIMIT = 20;

export const CLUSTERS_URI = 'jobscribe://clusters';
export const SCHEMA_URI = 'jobscribe://schema';
export const CLUSTER_TEMPLATE = 'jobscribe://cluster/{name}';
export const JOB_TEMPLATE = 'jobscribe://job/{cluster}/{id}';

export const clusterUri = (name: string) => `jobscribe://cluster/${name}`;

function json(uri: URL, value: unknown): ReadResourceResult {
  return { contents: [{ uri: uri.href, mimeType: JSON_MIME, text: JSON.stringify(value) }] };
}

/** A template variable as the client wrote it (one value, percent-decoding undone). */
function variable(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Runs a resource read; store failures become one-line InternalErrors with a logged reference. */
async function readResource(deps: QueryDeps, uri: URL, body: () => Promise<ReadResourceResult>): Promise<ReadResourceResult> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    if (err instanceof ToolInputError) throw new ResourceNotFoundError(uri.href, err.message);
    const ref = logStoreFailure(deps, `resources/read ${uri.href}`, err);
    throw new ProtocolError(ProtocolErrorCode.InternalError, `${uri.href}: the job store could not answer; try again later (ref ${ref})`);
  }
}

// ---- completions -------------------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;
const F58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * The job-id ranges whose decimal (or f58) form starts with `prefix`: one inclusive [lo, hi] per
 * possible length of the full id. Undefined when the prefix cannot start any id.
 */
export function jobIdPrefixRanges(prefix: string): { ranges: Array<[bigint, bigint]>; f58: boolean } | undefined {
  const f58 = /^[ƒf]/.test(prefix);
  const digits = f58 ? prefix.slice(1) : prefix;
  const base = f58 ? 58n : 10n;
  const maxLen = f58 ? 11 : 20;
  if (digits === '') return { ranges: [[0n, U64_MAX]], f58 };
  let value = 0n;
  for (const ch of digits) {
    const d = f58 ? F58_ALPHABET.indexOf(ch) : '0123456789'.indexOf(ch);
    if (d < 0) return undefined;
    value = value * base + BigInt(d);
  }
  // A leading zero digit ("0…", "ƒ1…") only starts the id 0 itself.
  if (value === 0n) return digits.length === 1 ? { ranges: [[0n, 0n]], f58 } : undefined;
  if (digits[0] === (f58 ? '1' : '0')) return undefined;
  const ranges: Array<[bigint, bigint]> = [];
  let scale = 1n;
  for (let len = digits.length; len <= maxLen; len++, scale *= base) {
    const lo = value * scale;
    if (lo > U64_MAX) break;
    const hi = (value + 1n) * scale - 1n;
    ranges.push([lo, hi > U64_MAX ? U64_MAX : hi]);
  }
  return ranges.length ? { ranges, f58 } : undefined;
}

/**
 * Job ids of `cluster` (or any cluster) starting with `typed` (decimal or f58), most recently
 * submitted first, at most COMPLETION_LIMIT; only jobs the identity may read. Suggestions come in
 * the form typed: f58 (with the same ƒ or f) for an f58 prefix, else decimal.
 */
export async function completeJobIds(deps: QueryDeps, cluster: string | undefined, typed: string): Promise<string[]> {
  const scope = jobDetailsUserFilter(deps.identity, deps.jobDetails);
  if (scope && 'none' in scope) return [];
  if (cluster !== undefined && !ClusterIdSchema.safeParse(cluster).success) return [];
  const prefix = typed.trim();
  const match = jobIdPrefixRanges(prefix);
  if (!match) return [];
  const params: Record<string, unknown> = { limit: COMPLETION_LIMIT };
  const where: string[] = [];
  if (cluster !== undefined) {
    where.push('cluster = {cluster:String}');
    params.cluster = cluster;
  }
  if (scope) {
    where.push('user = {user:String}');
    params.user = scope.user;
  }
  if (match.f58) where.push("scheduler = 'flux'");
  where.push(`(${match.ranges.map((_, i) => `job_id BETWEEN {lo${i}:UInt64} AND {hi${i}:UInt64}`).join(' OR ')})`);
  match.ranges.forEach(([lo, hi], i) => {
    params[`lo${i}`] = lo.toString();
    params[`hi${i}`] = hi.toString();
  });
  const rows = await selectRows<{ id: string }>(
    deps,
    `SELECT toString(job_id) AS id
       FROM {db:Identifier}.jobs FINAL
      WHERE ${where.join(' AND ')}
      ORDER BY t_submit DESC, job_id DESC
      LIMIT {limit:UInt32}`,
    params,
  );
  const marker = prefix.startsWith('f') ? 'f' : 'ƒ';
  return [...new Set(rows.map((r) => (match.f58 ? marker + toF58(r.id).slice(1) : r.id)))];
}

/** Cluster names starting with `typed`. */
export async function completeClusters(deps: QueryDeps, typed: string): Promise<string[]> {
  return knownClusters(deps, typed.trim(), COMPLETION_LIMIT);
}

/** User names starting with `typed` (user names are visible in the center-wide aggregates). */
export async function completeUsers(deps: QueryDeps, typed: string): Promise<string[]> {
  const rows = await selectRows<{ u: string }>(
    deps,
    `SELECT DISTINCT user AS u FROM {db:Identifier}.jobs
      WHERE startsWith(user, {prefix:String})
      ORDER BY u
      LIMIT {limit:UInt32}`,
    { prefix: typed.trim(), limit: COMPLETION_LIMIT },
  );
  return rows.map((r) => r.u);
}

/** A completion that never fails the request: a store failure is logged and suggests nothing. */
export function safeCompletion(deps: QueryDeps, what: string, fn: () => Promise<string[]>): Promise<string[]> {
  return fn().catch((err: unknown) => {
    deps.logError(`jobscribe mcp: completion of ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    return [];
  });
}

// ---- one cluster -------------------------------------------------------------------------------

type Count = string | number;
interface QueueStatesRow {
  queue: string;
  n_held: Count;
  /** Counts in JOB_STATES order. */
  n_states: Count[];
}

export interface QueueStateCounts extends Record<JobState, number> {
  queue: string;
  jobs: number;
  held: number;
}

async function queueStates(deps: QueryDeps, cluster: string, signal: AbortSignal): Promise<{ queues: QueueStateCounts[]; truncated: boolean }> {
  const rows = await selectRows<QueueStatesRow>(
    deps,
    `SELECT queue, countIf(state = 'pending' AND held) AS n_held,
            [${JOB_STATES.map((s) => `countIf(state = '${s}')`).join(', ')}] AS n_states
       FROM {db:Identifier}.jobs FINAL
      WHERE cluster = {cluster:String}
      GROUP BY queue
      ORDER BY queue
      LIMIT {max_rows:UInt32}`,
    { cluster, max_rows: deps.limits.maxRows + 1 },
    signal,
  );
  const queues = rows.slice(0, deps.limits.maxRows).map((r) => {
    const states = Object.fromEntries(JOB_STATES.map((s, i) => [s, Number(r.n_states[i] ?? 0)])) as Record<JobState, number>;
    return { queue: r.queue, jobs: JOB_STATES.reduce((a, s) => a + states[s], 0), held: Number(r.n_held), ...states };
  });
  return { queues, truncated: rows.length > queues.length };
}

// ---- registration ------------------------------------------------------------------------------

export function registerResources(
  server: McpServer,
  deps: QueryDeps,
  logLag: (() => Promise<LogPartitionLag[]>) | undefined,
  sqlLimits?: RunSqlLimits,
): void {
  server.registerResource(
    'clusters',
    CLUSTERS_URI,
    {
      title: 'Clusters',
      description: 'Every cluster jobscribe has seen: job counts, newest event, scribe and projector lag, health (as cluster_status).',
      mimeType: JSON_MIME,
    },
    (uri, ctx) =>
      readResource(deps, uri, async () => {
        const status = await clusterStatus(deps, logLag, {}, ctx.mcpReq.signal);
        return json(uri, { ...status, clusters: status.clusters.map((c) => ({ ...c, uri: clusterUri(c.cluster) })) });
      }),
  );

  server.registerResource(
    'cluster',
    new ResourceTemplate(CLUSTER_TEMPLATE, {
      list: async () => ({
        resources: (await safeCompletion(deps, 'clusters', () => knownClusters(deps, '', deps.limits.maxRows))).map((name) => ({
          uri: clusterUri(name),
          name: `cluster ${name}`,
          mimeType: JSON_MIME,
        })),
      }),
      complete: { name: (value) => safeCompletion(deps, 'cluster', () => completeClusters(deps, value)) },
    }),
    {
      title: 'One cluster',
      description: "One cluster's status (as cluster_status) and its job counts per queue and state.",
      mimeType: JSON_MIME,
    },
    (uri, vars, ctx) =>
      readResource(deps, uri, async () => {
        const name = variable(vars.name);
        if (!ClusterIdSchema.safeParse(name).success) {
          throw new ResourceNotFoundError(uri.href, `'${name}' is not a cluster name (1-63 of a-z, 0-9, "-", "_"); read ${CLUSTERS_URI} for the list`);
        }
        const signal = ctx.mcpReq.signal;
        const [status, byQueue] = await Promise.all([clusterStatus(deps, logLag, { cluster: name }, signal), queueStates(deps, name, signal)]);
        const totals = Object.fromEntries(JOB_STATES.map((s) => [s, byQueue.queues.reduce((a, q) => a + q[s], 0)]));
        return json(uri, {
          as_of: status.as_of,
          thresholds: status.thresholds,
          projector_lag_known: status.projector_lag_known,
          status: status.clusters[0],
          states: totals,
          queues: byQueue.queues,
          truncated: byQueue.truncated,
        });
      }),
  );

  server.registerResource(
    'job',
    new ResourceTemplate(JOB_TEMPLATE, {
      list: undefined,
      complete: {
        cluster: (value) => safeCompletion(deps, 'cluster', () => completeClusters(deps, value)),
        id: (value, context) => safeCompletion(deps, 'job id', () => completeJobIds(deps, context?.arguments?.cluster, value)),
      },
    }),
    {
      title: 'One job',
      description: "One job's whole row (as get_job): owner, queue, resources, state, result, times. Id decimal or f58.",
      mimeType: JSON_MIME,
    },
    (uri, vars, ctx) =>
      readResource(deps, uri, async () => {
        const cluster = variable(vars.cluster);
        const id = variable(vars.id);
        if (!ClusterIdSchema.safeParse(cluster).success) throw new ResourceNotFoundError(uri.href, `'${cluster}' is not a cluster name; read ${CLUSTERS_URI}`);
        // findJob restricts the lookup to what the identity may read (jobScope).
        const row = await findJob(deps, { cluster, job_id: id }, ctx.mcpReq.signal);
        return json(uri, { job: jobDetail(row) });
      }),
  );

  server.registerResource(
    'schema',
    SCHEMA_URI,
    {
      title: 'Read-model schema',
      description: 'The tables and columns jobscribe answers from (as describe_schema), for run_sql.',
      mimeType: JSON_MIME,
    },
    (uri) => readResource(deps, uri, async () => json(uri, await schemaDocFor(deps, sqlLimits))),
  );
}
