/**
 * The README's first command as a new user meets it: `jobscribe up` with no simulator flags runs
 * the demo center (a Flux and a Slurm cluster) on the wall clock, back-fills its history (half a
 * day here; 7 by default), says what to try, and then every tool's default window answers with
 * data for both clusters, and no event is from the future (the classic paced demo ran ahead of now).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startCli, waitUntil, type Running } from '../support/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-e2e-demo-'));
let up: Running | undefined;

afterAll(() => {
  up?.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent as Record<string, unknown>;
}

it('back-fills the demo center up to now, then every default window answers for both clusters', async () => {
  const started = Date.now();
  up = startCli(['up', '--data-dir', dataDir, '--http-port', '0', '--sim-backfill-days', '0.5']);
  const m = await up.waitFor(/MCP endpoint: (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 60_000);
  expect(up.stdout()).toMatch(/clusters: +fluke \(simulated Flux, seed 1, real time after a back-fill, 16 nodes\)\n +slurmy \(simulated Slurm, seed 2, real time/);
  expect(up.stdout()).toMatch(/try asking your agent:\n {4}- Which jobs failed on slurmy in the last 24 hours/);
  await waitUntil(async () => /back-fill done in \d+ s: [\d,]+ events projected/.test(up!.stderr()), { timeoutMs: 180_000, intervalMs: 500, what: 'the back-fill to finish' });
  process.stdout.write(`  demo back-fill of half a day: ${Math.round((Date.now() - started) / 1000)} s (${/back-fill done in (\d+ s: [\d,]+ events)/.exec(up.stderr())![1]})\n`);

  const client = new Client({ name: 'e2e-demo', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(m[1]!)));
  try {
    // Each tool's own default window (the last 24 h, or now) has data of both clusters.
    const throughput = JSON.stringify(await call(client, 'throughput'));
    const failures = JSON.stringify(await call(client, 'failure_analysis'));
    const waits = JSON.stringify(await call(client, 'wait_time_stats'));
    const queues = JSON.stringify(await call(client, 'queue_summary'));
    for (const cluster of ['fluke', 'slurmy']) {
      for (const [tool, answer] of Object.entries({ throughput, failures, waits, queues })) expect(answer, `${tool} names ${cluster}`).toContain(cluster);
    }
    // Nothing from the future: every event happened before it was published, and before now.
    const sql = await call(client, 'run_sql', {
      sql: `SELECT cluster, count() AS events, countIf(ts > now64(6)) AS future, countIf(published_at < ts) AS published_before_it_happened,
                   min(ts) AS first FROM job_events GROUP BY cluster ORDER BY cluster`,
    });
    const rows = (sql.rows ?? sql.data) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.cluster)).toEqual(['fluke', 'slurmy']);
    for (const r of rows) {
      expect(Number(r.events), String(r.cluster)).toBeGreaterThan(1000);
      expect(Number(r.future), String(r.cluster)).toBe(0);
      expect(Number(r.published_before_it_happened), String(r.cluster)).toBe(0);
      // the history starts half a day back
      expect(Date.parse(String(r.first).replace(' ', 'T') + 'Z')).toBeLessThan(started - 10 * 3600 * 1000);
    }
  } finally {
    await client.close();
  }
}, 300_000);
