/**
 * The client side of the MCP load bench (mcpLoad.ts forks it, so that the clients' JavaScript
 * does not share the server's event loop and the server's CPU time per call can be measured):
 * N concurrent official-SDK clients over Streamable HTTP make a fixed count of calls of
 * get_job / search_jobs / queue_summary (after `warmup` calls not counted), then send the
 * latencies to the parent and exit.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

export interface LoadPlan {
  url: string;
  clients: number;
  calls: number;
  /** Calls made first and not counted (the read cache fills; connections open). */
  warmup: number;
  jobIds: string[];
  users: string[];
}

export interface LoadResult {
  wallS: number;
  latencies: Record<string, number[]>;
  errors: number;
  firstError?: string;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

async function run(plan: LoadPlan): Promise<LoadResult> {
  const clients = await Promise.all(
    Array.from({ length: plan.clients }, async () => {
      const c = new Client({ name: 'bench-load', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(plan.url)));
      return c;
    }),
  );
  const tools: Record<string, () => Record<string, unknown>> = {
    get_job: () => ({ job_id: pick(plan.jobIds) }),
    search_jobs: () => ({ limit: 20, user: pick(plan.users), ...(Math.random() < 0.5 && { state: 'completed' }) }),
    queue_summary: () => (Math.random() < 0.5 ? {} : { group_by: 'user' }),
  };
  const names = Object.keys(tools);
  // Warm-up: every hot job, user search and queue view once (the read cache fills), then
  // `warmup` mixed calls; none of it counted.
  const warmCalls: [string, Record<string, unknown>][] = [
    ...plan.jobIds.map((job_id): [string, Record<string, unknown>] => ['get_job', { job_id }]),
    ...plan.users.flatMap((user): [string, Record<string, unknown>][] => [
      ['search_jobs', { limit: 20, user }],
      ['search_jobs', { limit: 20, user, state: 'completed' }],
    ]),
    ['queue_summary', {}],
    ['queue_summary', { group_by: 'user' }],
  ];
  for (let i = 0; i < plan.warmup; i++) {
    const name = names[i % names.length]!;
    warmCalls.push([name, tools[name]!()]);
  }
  let warm = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (warm < warmCalls.length) {
        const [name, args] = warmCalls[warm++]!;
        await c.callTool({ name, arguments: args });
      }
    }),
  );
  process.send!({ warm: true });
  const latencies: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  let issued = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (issued < plan.calls) {
        const name = names[issued++ % names.length]!;
        const s = performance.now();
        const r = await c.callTool({ name, arguments: tools[name]!() });
        latencies[name]!.push(performance.now() - s);
        if (r.isError) {
          errors++;
          firstError ??= `${name}: ${JSON.stringify(r.content).slice(0, 200)}`;
        }
      }
    }),
  );
  const wallS = (performance.now() - start) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  return { wallS, latencies, errors, ...(firstError && { firstError }) };
}

process.once('message', (plan: LoadPlan) => {
  run(plan).then(
    (result) => process.send!(result, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
