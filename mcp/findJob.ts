/**
 * Finds one job by id (decimal or f58) and optional cluster, for get_job and job_timeline:
 * a missing job or an id on several clusters is a ToolInputError telling the agent what to do.
 */
import { parseJobId } from '../schemas/ids.js';
import { ToolInputError } from './results.js';
import { JOB_DETAIL_COLUMNS, describeJobId, type JobDetailRow } from './rows.js';
import { selectRows, type QueryDeps } from './sql.js';

export async function findJob(
  deps: QueryDeps,
  args: { cluster?: string | undefined; job_id: string },
  signal?: AbortSignal,
): Promise<JobDetailRow> {
  const id = parseJobId(args.job_id);
  if (id === undefined) throw new ToolInputError(`job_id '${args.job_id}' is not a decimal or f58 Flux job id`);
  const rows = await selectRows<JobDetailRow>(
    deps,
    `SELECT ${JOB_DETAIL_COLUMNS}
     FROM {db:Identifier}.jobs FINAL
     WHERE job_id = {job_id:UInt64}
     ORDER BY cluster
     LIMIT 100`,
    { job_id: id },
    signal,
  );
  const label = describeJobId(args.job_id, id);
  const clusters = rows.map((r) => r.cluster);
  if (args.cluster !== undefined) {
    const hit = rows.find((r) => r.cluster === args.cluster);
    if (hit) return hit;
    const elsewhere = clusters.length ? ` (a job ${id} exists on ${clusters.join(', ')})` : '';
    throw new ToolInputError(`no job ${label} on ${args.cluster}; try search_jobs${elsewhere}`);
  }
  const [only, ...more] = rows;
  if (!only) throw new ToolInputError(`no job ${label} on any cluster; try search_jobs`);
  if (more.length) {
    throw new ToolInputError(`job ${label} exists on several clusters (${clusters.join(', ')}); pass cluster to choose one`);
  }
  return only;
}
