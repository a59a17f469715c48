/**
 * A data directory filled the way a user fills it: `jobscribe up` with the simulator (fixed seed
 * and epoch) runs until every simulated job is finished in the read model, then stops cleanly.
 * The e2e tests of external MCP clients serve it with `jobscribe mcp --stdio|--http`; `readJobs`
 * reads rows straight from its embedded ClickHouse (no MCP in between) for their expectations.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { groundTruth } from '../../scribe/sim/index.js';
import { startCli, waitUntil } from './cli.js';

export interface SimDataDir {
  dir: string;
  /** Jobs the simulator submitted (all finished in the read model). */
  jobs: number;
  cleanup(): void;
}

const DATABASE = 'jobscribe';

async function countJobs(client: Client, state?: string): Promise<number> {
  const r = await client.callTool({ name: 'search_jobs', arguments: { limit: 1, ...(state ? { state } : {}) } });
  if (r.isError) throw new Error(`search_jobs failed: ${JSON.stringify(r.content)}`);
  return Number((r.structuredContent as { total_matching?: number }).total_matching ?? 0);
}

export async function prepareSimDataDir(opts: { maxJobs?: number; seed?: number; nodes?: number } = {}): Promise<SimDataDir> {
  const sim = { seed: opts.seed ?? 11, cluster: 'sim', nodes: opts.nodes ?? 8, maxJobs: opts.maxJobs ?? 200, epoch: 1_795_305_600 };
  const truth = groundTruth(sim);
  const dir = mkdtempSync(join(tmpdir(), 'jobscribe-simdir-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const args = ['up', '--data-dir', dir, '--http-port', '0', '--log-level', 'warn', '--sim-speed', '100000'];
  args.push('--seed', String(sim.seed), '--sim-nodes', String(sim.nodes), '--sim-jobs', String(sim.maxJobs), '--sim-epoch', String(sim.epoch));
  const up = startCli(args);
  try {
    const [, url] = await up.waitFor(/MCP endpoint: (http:\/\/\S+\/mcp)/, 60_000);
    const client = new Client({ name: 'jobscribe-test-setup', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url!)));
    try {
      await waitUntil(async () => (await countJobs(client)) === truth.jobs && (await countJobs(client, 'pending')) + (await countJobs(client, 'running')) === 0, {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: `all ${truth.jobs} simulated jobs finished in the read model`,
      });
    } finally {
      await client.close();
    }
    up.child.kill('SIGTERM');
    const code = await up.exited;
    if (code !== 0) throw new Error(`jobscribe up exited ${code} on SIGTERM\n${up.stderr()}`);
    return { dir, jobs: truth.jobs, cleanup };
  } catch (err) {
    up.child.kill('SIGKILL');
    cleanup();
    throw err;
  }
}

/** Rows of `jobs FINAL` read directly from the data directory; no other process may hold it. */
export async function readJobs<T>(dir: string, select: string, where: string, limit: number): Promise<T[]> {
  const ch = await openClickHouse({ dataDir: dir, database: DATABASE });
  try {
    const sql = `SELECT ${select} FROM ${DATABASE}.jobs FINAL WHERE ${where} ORDER BY cluster, job_id LIMIT ${limit}`;
    return await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
  } finally {
    await ch.close();
  }
}
