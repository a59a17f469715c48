/**
 * `jobscribe up --source flux` against a fake Flux broker that speaks flux-core's bytes and
 * replays the real 35-job journal: an MCP client sees the jobs flux-core reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { FakeFluxBroker } from '../support/fakeFluxBroker.js';
import { fluxFixture } from '../support/fixtures.js';
import { startCli, waitUntil, type Running } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'jobscribe-flux-up-'));
const procs: Running[] = [];
let broker: FakeFluxBroker | undefined;

afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('jobscribe up --source flux', () => {
  it('serves the jobs of a Flux instance over MCP, as flux-core reported them', async () => {
    broker = await FakeFluxBroker.start({ path: join(dir, 'local'), journal: fluxFixture('journal.jsonl').split('\n').filter(Boolean) });
    const up = startCli(['up', '--source', 'flux', '--flux-uri', `local://${broker.path}`, '--cluster', 'fluke', '--data-dir', join(dir, 'data'), '--http-port', '0', '--log-level', 'warn']);
    procs.push(up);
    const url = (await up.waitFor(/MCP endpoint: (http:\/\/127\.0\.0\.1:\d+\/mcp)/))[1]!;
    const client = new Client({ name: 'e2e-flux', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    const total = async (state?: string) =>
      Number(((await client.callTool({ name: 'search_jobs', arguments: { limit: 1, cluster: 'fluke', ...(state ? { state } : {}) } })).structuredContent as { total_matching?: number }).total_matching ?? 0);
    await waitUntil(async () => (await total()) === 35 && (await total('pending')) + (await total('running')) === 0, { timeoutMs: 30_000, what: '35 inactive Flux jobs' });
    const oracle = (JSON.parse(fluxFixture('jobs.json')) as { jobs: { result: string }[] }).jobs;
    for (const state of ['completed', 'failed', 'canceled', 'timeout']) {
      expect(await total(state), state).toBe(oracle.filter((j) => j.result.toLowerCase() === state).length);
    }
    const job = (await client.callTool({ name: 'get_job', arguments: { job_id: 'ƒKH57U7h' } })).structuredContent as { job: Record<string, unknown> };
    expect(job.job).toMatchObject({ cluster: 'fluke', state: 'timeout', exception_type: 'timeout', exit_code: 142, user: 'root' });
    await client.close();
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  });
});
