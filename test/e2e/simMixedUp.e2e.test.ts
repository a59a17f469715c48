/**
 * The mixed-center demo end to end: `jobscribe up --sim-clusters fluke:flux,slurmy:slurm` runs a
 * simulated Flux cluster and a simulated Slurm cluster in one process; an MCP client sees both
 * clusters' jobs, each cluster's totals equal its simulation's ground truth, also after a SIGKILL
 * mid-stream and a restart (each cluster resumes from its own checkpoint); bad pairs exit 2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { groundTruth } from '../../scribe/sim/index.js';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { runCli, startCli, waitUntil, type Running } from '../support/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-mixed-'));
const EPOCH = 1_795_305_600;
const COMMON = { nodes: 6, maxJobs: 80, epoch: EPOCH } as const;
// `up` gives the clusters seeds seed, seed+1, ... in the order named
const CLUSTERS = [
  { ...COMMON, seed: 7, cluster: 'fluke', scheduler: 'flux' as const },
  { ...COMMON, seed: 8, cluster: 'slurmy', scheduler: 'slurm' as const },
];
const upArgs = (speed: number) => [
  'up', '--data-dir', dataDir, '--http-port', '0', '--log-level', 'warn', '--sim-speed', String(speed),
  '--sim-clusters', 'fluke:flux,slurmy:slurm', '--seed', '7', '--sim-nodes', '6', '--sim-jobs', '80', '--sim-epoch', String(EPOCH),
];
const running: Running[] = [];

afterAll(() => {
  for (const r of running) r.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent as Record<string, unknown>;
}
const count = async (client: Client, cluster: string, state?: string) =>
  Number((await call(client, 'search_jobs', { limit: 1, cluster, ...(state ? { state } : {}) })).total_matching ?? 0);

async function startUp(speed: number): Promise<{ proc: Running; client: Client }> {
  const proc = startCli(upArgs(speed));
  running.push(proc);
  const m = await proc.waitFor(/MCP endpoint: (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 60_000);
  expect(proc.stdout()).toMatch(/clusters: +fluke \(simulated Flux, seed 7[^)]*\)\n +slurmy \(simulated Slurm, seed 8/);
  const client = new Client({ name: 'e2e-mixed', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(m[1]!)));
  return { proc, client };
}

it('serves a Flux and a Slurm cluster from one process, equal to each ground truth after a kill and restart', async () => {
  const truths = CLUSTERS.map((c) => groundTruth(c));
  const first = await startUp(300);
  await waitUntil(async () => (await count(first.client, 'fluke')) > 0 && (await count(first.client, 'slurmy')) > 0, {
    timeoutMs: 30_000,
    what: 'jobs of both clusters over MCP',
  });
  // the kill lands mid-stream
  expect(await count(first.client, 'slurmy')).toBeLessThan(truths[1]!.jobs);
  await first.client.close();
  first.proc.child.kill('SIGKILL');
  await first.proc.exited;

  const second = await startUp(50_000);
  const c = second.client;
  for (const [i, sim] of CLUSTERS.entries()) {
    const t = truths[i]!;
    await waitUntil(async () => (await count(c, sim.cluster)) === t.jobs && (await count(c, sim.cluster, 'pending')) + (await count(c, sim.cluster, 'running')) === 0, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `all ${t.jobs} jobs of ${sim.cluster} finished`,
    });
    expect([await count(c, sim.cluster, 'completed'), await count(c, sim.cluster, 'failed'), await count(c, sim.cluster, 'canceled'), await count(c, sim.cluster, 'timeout')]).toEqual([
      t.results.COMPLETED,
      t.results.FAILED,
      t.results.CANCELED,
      t.results.TIMEOUT,
    ]);
  }
  await c.close();
  second.proc.child.kill('SIGTERM');
  expect(await second.proc.exited).toBe(0);

  // each event once, each cluster under its own scheduler
  const ch = await openClickHouse({ dataDir, database: 'jobscribe' });
  try {
    const rows = await (
      await ch.client.query({
        query: `SELECT cluster, scheduler, count() AS n, uniqExact(job_id, seq) AS u FROM jobscribe.job_events GROUP BY cluster, scheduler ORDER BY cluster`,
        format: 'JSONEachRow',
      })
    ).json<{ cluster: string; scheduler: string; n: number; u: number }>();
    expect(rows.map((r) => [r.cluster, r.scheduler, Number(r.u)])).toEqual(CLUSTERS.map((s, i) => [s.cluster, s.scheduler, truths[i]!.events]));
  } finally {
    await ch.close();
  }
}, 300_000);

it('exits 2 naming the setting on a bad --sim-clusters', async () => {
  const bad = await runCli(['up', '--data-dir', dataDir, '--sim-clusters', 'fluke:pbs']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/simClusters \(--sim-clusters.*NAME:flux\|slurm/);
  const twice = await runCli(['up', '--data-dir', dataDir, '--sim-clusters', 'a:flux,a:slurm']);
  expect(twice.code).toBe(2);
  expect(twice.stderr).toMatch(/simClusters \(--sim-clusters\): cluster names repeat/);
});
