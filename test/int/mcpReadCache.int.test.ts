/**
 * The MCP read cache (mcp/readCache.ts) on real embedded ClickHouse with the real projector
 * feeding the read-model position, as `up` wires it: answers stay right after the projector
 * writes (a cached job row is dropped when a batch touches the job), and one identity's cached
 * query never answers another's (a plain user never sees what an admin's call cached). Also:
 * point lookups run on a connection of their own (McpDeps.lookupClickhouse).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { createEmbeddedLog } from '../../log/embedded.js';
import type { EventLog } from '../../log/eventLog.js';
import { eventsTopic } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { jobTags, ReadCache, ReadModelPosition } from '../../mcp/readCache.js';
import type { Identity } from '../../mcp/identity.js';
import type { McpDeps } from '../../mcp/server.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { connectMcp } from '../support/mcpClient.js';

const CLUSTER = 'fluke';
const origin = { cluster: CLUSTER, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } };

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
let projector: Projector;
let cache: ReadCache;
let deps: McpDeps;
let events: SourceEvent[];
let published = 0;

async function publishUpTo(n: number): Promise<void> {
  const batch = events.slice(published, n);
  published = n;
  if (batch.length) await log.publish(eventsTopic('jobscribe', CLUSTER), batch.map((e) => toLogMessage(toEnvelope(origin, e, e.ts))));
  await projector.run(new AbortController().signal, { from: 'committed' }, true);
}

const structured = async (c: Client, name: string, args: Record<string, unknown>) => {
  const r = await c.callTool({ name, arguments: args });
  return { r, out: r.structuredContent as Record<string, unknown> | undefined, text: JSON.stringify(r.content) };
};

beforeAll(async () => {
  ch = await openTestClickHouse('readcache_test');
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  projector = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: 'jobscribe' });
  const position = new ReadModelPosition();
  projector.on('batch', (b) => position.advance(jobTags(b.jobRows)));
  cache = new ReadCache(position);
  deps = { clickhouse: ch.connect('mcp'), database: ch.database, readCache: cache };
  events = [...simulate({ seed: 3, cluster: CLUSTER, nodes: 4, submitRate: 6, maxJobs: 60 })];
  await publishUpTo(Math.floor(events.length / 2));
}, 120_000);

afterAll(async () => {
  await log?.close();
  await ch?.cleanup();
});

describe('read cache', () => {
  it("never answers a plain user from what an admin's call cached", async () => {
    const jobs = await queryRows<{ id: string; user: string }>(ch, `SELECT toString(job_id) AS id, user FROM ${ch.database}.jobs FINAL ORDER BY job_id`);
    const owner = jobs[0]!.user;
    const other = jobs.find((j) => j.user !== owner)!.user;
    const ownerJob = jobs.find((j) => j.user === owner)!.id;
    const admin = await connectMcp(deps);
    const plain = await connectMcp(deps, { subject: `${other}@test`, user: other, roles: [] } satisfies Identity);

    // get_job: the admin's answer is cached; the other user gets "not yours", none of its values
    const seen = (await structured(admin, 'get_job', { job_id: ownerJob })).out!.job as Record<string, unknown>;
    expect(seen.user).toBe(owner);
    // ...nor what the owner's own (scoped) call cached: the same query text, another scope user
    const ownerClient = await connectMcp(deps, { subject: `${owner}@test`, user: owner, roles: [] } satisfies Identity);
    expect(((await structured(ownerClient, 'get_job', { job_id: ownerJob })).out!.job as Record<string, unknown>).user).toBe(owner);
    await ownerClient.close();
    const refused = await structured(plain, 'get_job', { job_id: ownerJob });
    expect(refused.r.isError).toBe(true);
    expect(refused.text).toContain('does not exist or is not yours');
    expect(refused.text).not.toContain(String(seen.name));

    // search_jobs: the admin's search of the owner's jobs is cached; the other user may not run it
    const search = { user: owner, limit: 5 };
    expect(((await structured(admin, 'search_jobs', search)).out!.jobs as unknown[]).length).toBeGreaterThan(0);
    const denied = await structured(plain, 'search_jobs', search);
    expect(denied.r.isError).toBe(true);
    const ownOnly = (await structured(plain, 'search_jobs', { limit: 50 })).out!.jobs as { user: string }[];
    expect(ownOnly.every((j) => j.user === other)).toBe(true);

    // queue_summary: the same counts rows, but the oldest pending job is named per caller
    type Group = { user?: string; pending: number; oldest_pending: { job_id?: string; user?: string; waiting_s: number } | null };
    const a = (await structured(admin, 'queue_summary', { group_by: 'user' })).out! as { groups: Group[]; clusters: Group[] };
    const hits = cache.stats.hits;
    const p = (await structured(plain, 'queue_summary', { group_by: 'user' })).out! as { groups: Group[]; clusters: Group[] };
    expect(cache.stats.hits).toBe(hits + 2); // the same two queries, answered from the cache
    const named = a.clusters.find((g) => g.oldest_pending?.job_id !== undefined && g.oldest_pending.user !== other);
    expect(named).toBeDefined(); // half-way through the simulation someone else's job is pending
    expect(p.clusters.map((g) => g.pending)).toEqual(a.clusters.map((g) => g.pending));
    for (const g of [...p.groups, ...p.clusters]) {
      if (g.oldest_pending?.job_id !== undefined) expect(g.oldest_pending.user).toBe(other);
    }
    expect(JSON.stringify(p)).not.toContain(named!.oldest_pending!.job_id!);
    await admin.close();
    await plain.close();
  });
  it('answers a job from the cache, then its new state once the projector wrote it', async () => {
    // a job still active at the half-way point, that has events in the second half
    const later = new Set(events.slice(published).map((e) => e.job_id));
    const [active] = await queryRows<{ id: string }>(
      ch,
      `SELECT toString(job_id) AS id FROM ${ch.database}.jobs FINAL WHERE state IN ('pending', 'running') ORDER BY job_id`,
    ).then((rows) => rows.filter((r) => later.has(r.id)));
    expect(active).toBeDefined();
    const admin = await connectMcp(deps);
    const before = (await structured(admin, 'get_job', { job_id: active!.id })).out!.job as { state: string; last_seq: number };
    const hits = cache.stats.hits;
    expect((await structured(admin, 'get_job', { job_id: active!.id })).out!.job).toEqual(before);
    expect(cache.stats.hits).toBe(hits + 1);

    await publishUpTo(events.length);
    const after = (await structured(admin, 'get_job', { job_id: active!.id })).out!.job as { state: string; last_seq: number };
    const [stored] = await queryRows<{ state: string; last_seq: number }>(
      ch,
      `SELECT state, last_seq FROM ${ch.database}.jobs FINAL WHERE job_id = {id:UInt64}`,
      { id: active!.id },
    );
    expect(after).toMatchObject(stored!);
    expect(after.last_seq).toBeGreaterThan(before.last_seq);
    await admin.close();
  });


  it('answers get_job on its own connection while the list connection is busy', async () => {
    const [job] = await queryRows<{ id: string }>(ch, `SELECT toString(job_id) AS id FROM ${ch.database}.jobs FINAL ORDER BY job_id DESC LIMIT 1`);
    const lists = ch.connect('lists-busy');
    const client = await connectMcp({ clickhouse: lists, lookupClickhouse: ch.connect('lookups'), database: ch.database });
    const busy = lists.query({ query: 'SELECT sleep(1.5) AS s', format: 'JSONEachRow' }).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const r = await client.callTool({ name: 'get_job', arguments: { job_id: job!.id } });
    expect(r.isError).toBeFalsy();
    expect(performance.now() - t0).toBeLessThan(1000);
    await busy;
    await client.close();
  });
});
