/**
 * The README's first command, end to end: `jobscribe up` on a fresh data directory; an MCP
 * client over HTTP sees jobs appear and their counts equal the simulator's ground truth; a
 * SIGKILL mid-stream and a restart lose and duplicate nothing; `mcp --stdio` serves the same
 * data; a rebuild from offset 0 is identical to the live tables; bad flags exit 2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { groundTruth } from '../../scribe/sim/index.js';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { CLI, runCli, startCli, waitUntil, type Running } from '../support/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-e2e-'));
const EPOCH = 1_795_305_600;
const SIM = { seed: 7, cluster: 'sim', nodes: 6, maxJobs: 160, epoch: EPOCH } as const;
const simArgs = ['--seed', '7', '--sim-nodes', '6', '--sim-jobs', '160', '--sim-epoch', String(EPOCH)];
const upArgs = (speed: number) => ['up', '--data-dir', dataDir, '--http-port', '0', '--log-level', 'warn', '--sim-speed', String(speed), ...simArgs];
const truth = groundTruth(SIM);
const running: Running[] = [];

afterAll(() => {
  for (const r of running) r.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

type Structured = Record<string, unknown>;

async function connectHttp(url: string): Promise<Client> {
  const client = new Client({ name: 'e2e', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Structured> {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent as Structured;
}

async function totalJobs(client: Client, state?: string): Promise<number> {
  const s = await call(client, 'search_jobs', { limit: 1, ...(state ? { state } : {}) });
  return Number(s.total_matching ?? 0);
}

async function startUp(speed: number): Promise<{ proc: Running; url: string }> {
  const proc = startCli(upArgs(speed));
  running.push(proc);
  const m = await proc.waitFor(/MCP endpoint: (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 60_000);
  return { proc, url: m[1]! };
}

describe('jobscribe up (embedded default)', () => {
  it('serves jobs over MCP as they happen, survives SIGKILL mid-stream, and ends equal to the ground truth', async () => {
    expect(truth.jobs).toBeGreaterThan(100);
    // Slow enough that the kill lands mid-stream.
    const first = await startUp(400);
    const client = await connectHttp(first.url);
    const seen = await waitUntil(async () => (await totalJobs(client)) > 0 && totalJobs(client), { timeoutMs: 20_000, what: 'first jobs over MCP' });
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(truth.jobs);
    await client.close();
    first.proc.child.kill('SIGKILL');
    expect(await first.proc.exited).toBe(null); // killed by signal

    const second = await startUp(20_000);
    const c2 = await connectHttp(second.url);
    await waitUntil(async () => (await totalJobs(c2)) === truth.jobs && (await totalJobs(c2, 'pending')) + (await totalJobs(c2, 'running')) === 0, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `all ${truth.jobs} simulated jobs finished in the read model`,
    });
    expect(await totalJobs(c2, 'completed')).toBe(truth.results.COMPLETED);
    expect(await totalJobs(c2, 'failed')).toBe(truth.results.FAILED);
    expect(await totalJobs(c2, 'canceled')).toBe(truth.results.CANCELED);
    expect(await totalJobs(c2, 'timeout')).toBe(truth.results.TIMEOUT);
    const q = await call(c2, 'queue_summary', { group_by: 'cluster' });
    expect((q.clusters as { pending: number; running: number }[]).every((c) => c.pending === 0 && c.running === 0)).toBe(true);
    await c2.close();

    second.proc.child.kill('SIGTERM');
    expect(await second.proc.exited).toBe(0);
  });

  it('serves the same data over stdio when no up process holds it', async () => {
    const client = new Client({ name: 'e2e-stdio', version: '1' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio', '--data-dir', dataDir], stderr: 'pipe' }));
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['get_job', 'job_timeline', 'queue_summary', 'search_jobs', 'run_sql', 'cancel_job']));
      expect(await totalJobs(client)).toBe(truth.jobs);
      const page = await call(client, 'search_jobs', { limit: 1, state: 'failed' });
      const id = (page.jobs as { job_id: string }[])[0]!.job_id;
      const job = await call(client, 'get_job', { job_id: id });
      expect(job.job).toMatchObject({ job_id: id, state: 'failed', cluster: 'sim' });
    } finally {
      await client.close();
    }
  });

  it('rebuilds from offset 0 into fresh tables identical to the live ones, and reports status', async () => {
    const r = await runCli(['replay', '--rebuild', '--no-swap', '--data-dir', dataDir]);
    expect(r.stderr).toMatch(/rebuild \[#+\] 100\.0%/);
    expect(r.code, r.stderr).toBe(0);
    const status = await runCli(['status', '--json', '--data-dir', dataDir]);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { partitions: { lag: string }[]; clusters: { jobs: string }[]; job_events: number };
    expect(s.partitions.map((p) => p.lag)).toEqual(['0']);
    expect(Number(s.clusters[0]!.jobs)).toBe(truth.jobs);
    expect(s.job_events).toBe(truth.events);

    const ch = await openClickHouse({ dataDir, database: 'jobscribe' });
    try {
      const q = async (sql: string) => (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
      const once = await q(`SELECT count() AS n, uniqExact(cluster, job_id, seq) AS u FROM jobscribe.job_events FINAL`);
      expect(once).toEqual([{ n: truth.events, u: truth.events }]);
      for (const t of ['jobs', 'job_events', 'dead_letters']) {
        const live = await q(`SELECT count() AS n, sum(cityHash64(*)) AS h FROM jobscribe.${t} FINAL`);
        const fresh = await q(`SELECT count() AS n, sum(cityHash64(*)) AS h FROM jobscribe.${t}__rebuild FINAL`);
        expect(fresh, t).toEqual(live);
      }
    } finally {
      await ch.close();
    }
  });

  it('exits 2 naming the setting on a bad flag or value', async () => {
    const badPort = await runCli(['up', '--data-dir', dataDir, '--http-port', 'abc']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/httpPort \(--http-port/);
    const unknown = await runCli(['up', '--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--no-such-flag'/);
    const badEnv = await runCli(['up', '--data-dir', dataDir], { env: { JOBSCRIBE_SIM_SPEED: '-3' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/simSpeed.*JOBSCRIBE_SIM_SPEED, from environment\): must be above 0/);
    const replayBoth = await runCli(['replay', '--from-offset', '1', '--from-time', '2026-01-01T00:00:00Z', '--data-dir', dataDir]);
    expect(replayBoth.code).toBe(2);
  });
});
