/**
 * The MCP part of `npm run bench`: every read-only tool's p50/p95 latency over an in-memory SDK
 * client on a large read model (default 10 clusters × 100,000 jobs ≈ 10M events, see
 * readModel.ts), and the size of the tool definitions an agent loads (tools/list, in tokens
 * estimated at 4 characters each).
 *
 * Size with BENCH_MCP_CLUSTERS / BENCH_MCP_JOBS (jobs per cluster); BENCH_DATA_DIR keeps the
 * read model for later runs. Opens its own chDB: call it after other benches closed theirs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { createJobscribeServer } from '../../mcp/server.js';
import { buildBenchReadModel } from './readModel.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

export async function benchMcp(): Promise<void> {
  const clusters = Number(process.env.BENCH_MCP_CLUSTERS ?? 10);
  const jobsPerCluster = Number(process.env.BENCH_MCP_JOBS ?? 100_000);
  const keep = process.env.BENCH_DATA_DIR;
  const dataDir = keep ?? mkdtempSync(join(tmpdir(), 'jobscribe-bench-mcp-'));
  const ch = await openClickHouse({ dataDir, database: 'bench' });
  try {
    const rm = await buildBenchReadModel(ch.client, 'bench', { clusters, jobsPerCluster }, (l) => console.log(l));
    console.log(
      `mcp read model            ${rm.jobs.toLocaleString()} jobs, ${rm.events.toLocaleString()} events, ${rm.clusters.length} clusters` +
        (rm.reused ? ` (reused from ${dataDir})` : ` (built in ${rm.buildS.toFixed(0)} s, ${Math.round(rm.events / rm.buildS).toLocaleString()} events/s)`),
    );

    // A fixed "now" at the end of the simulated history, so relative windows hold data.
    const rs = await ch.client.query({ query: `SELECT toUnixTimestamp64Milli(max(last_event_ts)) AS t FROM bench.jobs`, format: 'JSONEachRow' });
    const nowMs = Number((await rs.json<{ t: string }>())[0]!.t);
    const server = createJobscribeServer({ clickhouse: ch.client, database: 'bench', now: () => nowMs });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(b);
    const client = new Client({ name: 'bench', version: '1' });
    await client.connect(a);

    const { tools } = await client.listTools();
    const defChars = JSON.stringify(tools).length;
    console.log(`mcp tool definitions      ${tools.length} tools, ${defChars.toLocaleString()} chars ≈ ${Math.round(defChars / 4).toLocaleString()} tokens (local admin)`);
    // What each role's agent loads: plain users are not listed approve_command.
    for (const [role, identity] of [
      ['plain user', { subject: 'u@bench', user: 'u', roles: [] }],
      ['approver', { subject: 'a@bench', user: 'a', roles: ['approver'] }],
      ['admin+approver', { subject: 'o@bench', roles: ['admin', 'approver'] }],
    ] as const) {
      const s = createJobscribeServer({ clickhouse: ch.client, database: 'bench', now: () => nowMs }, { ...identity, roles: [...identity.roles] });
      const [ca, cb] = InMemoryTransport.createLinkedPair();
      await s.connect(cb);
      const c = new Client({ name: 'bench-role', version: '1' });
      await c.connect(ca);
      const listed = (await c.listTools()).tools;
      const chars = JSON.stringify(listed).length;
      console.log(`  ${role.padEnd(22)}  ${listed.length} tools, ${chars.toLocaleString()} chars ≈ ${Math.round(chars / 4).toLocaleString()} tokens`);
      await c.close();
    }

    const sample = (await client.callTool({ name: 'search_jobs', arguments: { limit: 100, state: 'failed' } })).structuredContent as {
      jobs: { job_id: string; cluster: string; user: string }[];
    };
    if (!sample?.jobs?.length) throw new Error('search_jobs found no failed jobs in the bench read model');
    const job = () => {
      const j = pick(sample.jobs);
      return { job_id: j.job_id, cluster: j.cluster };
    };
    const user = () => pick(sample.jobs).user;
    const cluster = () => pick(rm.clusters);
    // Arguments per tool; tools not listed here are called without arguments.
    const args: Record<string, () => Record<string, unknown>> = {
      get_job: job,
      job_timeline: job,
      search_jobs: () => ({ limit: 50, state: 'failed', cluster: cluster() }),
      queue_summary: () => ({}),
      wait_time_stats: () => ({ since: '-7d' }),
      throughput: () => ({ since: '-7d', bucket: 'day' }),
      failure_analysis: () => ({ since: '-7d' }),
      utilization: () => ({ since: '-7d', bucket: 'day', cluster: cluster() }),
      user_summary: () => ({ user: user(), since: '-7d' }),
      cluster_status: () => ({}),
      describe_schema: () => ({}),
      run_sql: () => ({ sql: `SELECT queue, count() AS n, avg(wait_s) AS w FROM jobs WHERE cluster = '${cluster()}' GROUP BY queue ORDER BY n DESC` }),
    };
    const rounds = Number(process.env.BENCH_MCP_ROUNDS ?? 30);
    for (const tool of tools) {
      if (tool.annotations?.readOnlyHint !== true) continue; // actions change the scheduler: not benched
      if (tool.name === 'command_status') continue; // needs a command an action tool sent
      const make = args[tool.name] ?? (() => ({}));
      const ms: number[] = [];
      let error: string | undefined;
      for (let i = 0; i < rounds; i++) {
        const s = performance.now();
        const r = await client.callTool({ name: tool.name, arguments: make() });
        ms.push(performance.now() - s);
        if (r.isError) {
          error = JSON.stringify(r.content).slice(0, 200);
          break;
        }
      }
      if (error) console.log(`mcp ${tool.name.padEnd(18)}   error: ${error}`);
      else console.log(`mcp ${tool.name.padEnd(18)}   p50 ${pct(ms, 50).toFixed(1)} ms, p95 ${pct(ms, 95).toFixed(1)} ms`);
    }
    await client.close();

    // run_sql as a plain user: the same kind of queries, row-scoped by ClickHouse table filters.
    const owner = user();
    const plain = createJobscribeServer({ clickhouse: ch.client, database: 'bench', now: () => nowMs }, { subject: `${owner}@bench`, user: owner, roles: [] });
    const [pa, pb] = InMemoryTransport.createLinkedPair();
    await plain.connect(pb);
    const plainClient = new Client({ name: 'bench-user', version: '1' });
    await plainClient.connect(pa);
    const scoped: Record<string, () => string> = {
      'run_sql own jobs': () => `SELECT queue, count() AS n, avg(wait_s) AS w FROM jobs WHERE cluster = '${cluster()}' GROUP BY queue ORDER BY n DESC`,
      'run_sql own events': () => `SELECT name, count() AS n FROM job_events WHERE cluster = '${cluster()}' GROUP BY name ORDER BY n DESC`,
    };
    for (const [label, sql] of Object.entries(scoped)) {
      const ms: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const s = performance.now();
        const r = await plainClient.callTool({ name: 'run_sql', arguments: { sql: sql() } });
        ms.push(performance.now() - s);
        if (r.isError) throw new Error(`${label}: ${JSON.stringify(r.content).slice(0, 200)}`);
      }
      console.log(`mcp ${label.padEnd(18)}   p50 ${pct(ms, 50).toFixed(1)} ms, p95 ${pct(ms, 95).toFixed(1)} ms (plain user ${owner}: row filters)`);
    }
    await plainClient.close();
  } finally {
    await ch.close();
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  }
}
