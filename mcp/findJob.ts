/**
 * Finds one job by id (decimal or f58) and optional cluster, for get_job and job_timeline, and
 * says whose jobs an identity may read (`jobScope`, also used by search_jobs). A missing job or
 * an id on several clusters is a ToolInputError telling the agent what to do. For an identity
 * restricted to its own jobs the lookup itself is restricted, so another user's job and a job
 * that does not exist give the same answer: existence never leaks.
 */
import { parseJobId } from '../schemas/ids.js';
import { jobDetailsUserFilter } from './identity.js';
import { ToolInputError } from './results.js';
import { JOB_DETAIL_COLUMNS, describeJobId, type JobDetailRow } from './rows.js';
import { jobTag } from './readCache.js';
import { cachedRows, selectRows, type QueryDeps } from './sql.js';

/** The restriction on job-detail queries for `deps.identity`: none (undefined), or one user's jobs. */
export interface JobScope {
  user: string;
}

/**
 * Whose job details the caller may read. Throws (as a tool error) when it may read none: an
 * identity with neither a scheduler user nor the admin role.
 */
export function jobScope(deps: QueryDeps): JobScope | undefined {
  const filter = jobDetailsUserFilter(deps.identity, deps.jobDetails);
  if (filter === undefined) return undefined;
  if ('none' in filter) {
    throw new ToolInputError(
      `this identity (${deps.identity.subject}) is not mapped to a scheduler user, so it may read no job details; ` +
        'the center-wide aggregate tools (queue_summary and the like) still answer',
    );
  }
  return { user: filter.user };
}

/** A job id looked up in `jobs`: the decimal id, its label for messages, and the rows found (by cluster). */
export interface JobLookup<T> {
  id: string;
  label: string;
  rows: readonly T[];
}

/**
 * The rows of `jobs` (FINAL, `columns` selected, ordered by cluster) for a job id, optionally on
 * one cluster and of one user. An id that does not parse is thrown as `refuse(message)`.
 * `cached`: through the read cache (readCache.ts), kept until a batch touches the job id; the
 * action tools look up without it.
 */
export async function lookupJobRows<T>(
  deps: QueryDeps,
  columns: string,
  args: { job_id: string; cluster?: string | undefined; user?: string | undefined },
  signal?: AbortSignal,
  refuse: (message: string) => Error = (message) => new ToolInputError(message),
  cached = false,
): Promise<JobLookup<T>> {
  const id = parseJobId(args.job_id);
  if (id === undefined) throw refuse(`job_id '${args.job_id}' is not a decimal or f58 Flux job id`);
  const select = cached ? (d: QueryDeps, sql: string, p: Record<string, unknown>, s?: AbortSignal) => cachedRows<T>(d, sql, p, s, jobTag(id)) : selectRows<T>;
  // A connection of its own when there is one: a point lookup never waits behind list queries.
  const on = deps.lookupClickhouse ? { ...deps, clickhouse: deps.lookupClickhouse } : deps;
  const rows = await select(
    on,
    `SELECT ${columns}
     FROM {db:Identifier}.jobs FINAL
     WHERE job_id = {job_id:UInt64}${args.cluster !== undefined ? ' AND cluster = {cluster:String}' : ''}${args.user !== undefined ? ' AND user = {scope_user:String}' : ''}
     ORDER BY cluster
     LIMIT 100`,
    { job_id: id, ...(args.cluster !== undefined && { cluster: args.cluster }), ...(args.user !== undefined && { scope_user: args.user }) },
    signal,
  );
  return { id, label: describeJobId(args.job_id, id), rows };
}

/** The refusal of a job id found on several clusters when no cluster was given. */
export function onSeveralClusters(label: string, clusters: readonly string[]): string {
  return `job ${label} exists on several clusters (${clusters.join(', ')}); pass cluster to choose one`;
}

export async function findJob(
  deps: QueryDeps,
  args: { cluster?: string | undefined; job_id: string },
  signal?: AbortSignal,
): Promise<JobDetailRow> {
  const scope = jobScope(deps);
  const { id, label, rows } = await lookupJobRows<JobDetailRow>(deps, JOB_DETAIL_COLUMNS, { job_id: args.job_id, user: scope?.user }, signal, undefined, true);
  const clusters = rows.map((r) => r.cluster);
  // Same words whether the job is missing or someone else's.
  const notYours = scope ? ` that you may read (it does not exist or is not yours: you see the details of ${scope.user}'s jobs only)` : '';
  if (args.cluster !== undefined) {
    const hit = rows.find((r) => r.cluster === args.cluster);
    if (hit) return hit;
    const elsewhere = clusters.length ? ` (a job ${id} exists on ${clusters.join(', ')})` : '';
    throw new ToolInputError(`no job ${label} on ${args.cluster}${notYours}; try search_jobs${elsewhere}`);
  }
  const [only, ...more] = rows;
  if (!only) throw new ToolInputError(`no job ${label} on any cluster${notYours}; try search_jobs`);
  if (more.length) throw new ToolInputError(onSeveralClusters(label, clusters));
  return only;
}
