/** `get_job`: the whole `jobs` row of one job the caller may read (findJob.ts scopes the lookup). */
import type { McpServer } from '@modelcontextprotocol/server';
import { GetJobInputSchema, GetJobOutputSchema, type GetJobOutput } from '../../schemas/tools/getJob.js';
import { findJob } from '../findJob.js';
import { runTool, toolResult } from '../results.js';
import { jobDetail } from '../rows.js';
import type { QueryDeps } from '../sql.js';

export function registerGetJob(server: McpServer, deps: QueryDeps): void {
  server.registerTool(
    'get_job',
    {
      title: 'Get job',
      description:
        'One job by id (decimal, or Flux f58 like ƒRcvRGc7): owner, queue, resources, nodes, state, result, exit code, ' +
        'exception, priority, hold, dependencies, times (UTC ISO-8601) and queue wait / run seconds. ' +
        'Every scheduler: exit_code is the exit status if the process exited, else null (signal/signal_name say ' +
        'which signal killed it; a job that never ran has neither: see exception_type); oom: out of memory. ' +
        'Pass cluster when the same id exists on several clusters.',
      inputSchema: GetJobInputSchema,
      outputSchema: GetJobOutputSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, ctx) =>
      runTool(deps, 'get_job', async () => {
        const row = await findJob(deps, args, ctx.mcpReq.signal);
        const out: GetJobOutput = { job: jobDetail(row) };
        return toolResult(out);
      }),
  );
}
