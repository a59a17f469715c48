/**
 * MCP resources, prompts, completions, logging and cluster_status against a read model filled by
 * two seeded simulator runs (test/support/simReadModel.ts), through an SDK Client over an
 * in-memory transport. Expectations come from the simulated events, the simulator's ground
 * truth, or queries written here; projector lag from records really published to the embedded
 * log and not projected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic } from '../../log/eventLog.js';
import { projectorGroup } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { groundTruth, simulate, type SimOptionsInput } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { toF58 } from '../../schemas/ids.js';
import type { Identity } from '../../mcp/identity.js';
import type { McpDeps } from '../../mcp/server.js';
import { projectorLagOf } from '../../mcp/tools/clusterStatus.js';
import { CLUSTER_TEMPLATE, JOB_TEMPLATE, jobIdPrefixRanges } from '../../mcp/resources.js';
import { queryRows } from '../support/chdb.js';
import { buildSimReadModel, type SimReadModel } from '../support/simReadModel.js';
import { connectMcp } from '../support/mcpClient.js';

const DB = 'mcp_resources_test';
const EPOCH = 1795305600; // the simulator's default start
// alpha is published at its epoch (as simReadModel does when epoch is given); beta at the
// helper's default publish time 1_800_000_000, long after its events happened.
const SIMS: SimOptionsInput[] = [
  { seed: 21, cluster: 'alpha', nodes: 4, submitRate: 3, epoch: EPOCH, untilTime: EPOCH + 2 * 3600 },
  { seed: 22, cluster: 'beta', nodes: 4, submitRate: 2, untilTime: EPOCH + 3600 },
];
const PUBLISHED_S: Record<string, number> = { alpha: EPOCH, beta: 1_800_000_000 };
/** "now" of every server: 20 minutes after beta's publish time. */
const NOW_MS = 1_800_000_000_000 + 20 * 60_000;

let rm: SimReadModel;
const clients: Client[] = [];

async function connect(deps: Partial<McpDeps> = {}, identity?: Identity): Promise<Client> {
  const client = await connectMcp({ clickhouse: rm.ch.client, database: DB, now: () => NOW_MS, logError: () => undefined, ...deps }, identity, 'mcp-resources-test');
  clients.push(client);
  return client;
}

async function readJson<T = any>(client: Client, uri: string): Promise<T> {
  const res = await client.readResource({ uri });
  expect(res.contents).toHaveLength(1);
  const [c] = res.contents as Array<{ uri: string; mimeType?: string; text?: string }>;
  expect(c!.mimeType).toBe('application/json');
  expect(c!.uri).toBe(uri);
  return JSON.parse(c!.text!) as T;
}

async function readError(client: Client, uri: string): Promise<{ code: number; message: string }> {
  try {
    await client.readResource({ uri });
  } catch (err) {
    return err as { code: number; message: string };
  }
  throw new Error(`${uri} was readable`);
}

const structured = (r: unknown) => (r as CallToolResult).structuredContent as any;
const iso6 = (us: bigint) => `${new Date(Number(us / 1000n)).toISOString().slice(0, 19)}.${(us % 1_000_000n).toString().padStart(6, '0')}Z`;
const us = (seconds: number) => BigInt(Math.round(seconds * 1e6));

// ---- ground truth from the simulated events ------------------------------------------------------

interface JobTruth {
  cluster: string;
  id: string;
  user: string;
  submitTs: number;
  state: 'pending' | 'running' | 'done';
}

/**
 * Each job's state as the events put it: gone when invalidated, done after `clean`, running
 * once `alloc` came before any finish or fatal (severity 0) exception, else pending.
 */
function jobsOf(cluster: string, events: SourceEvent[]): JobTruth[] {
  const byJob = new Map<string, SourceEvent[]>();
  for (const e of events) (byJob.get(e.job_id) ?? byJob.set(e.job_id, []).get(e.job_id)!).push(e);
  const out: JobTruth[] = [];
  for (const [id, evs] of byJob) {
    const names = evs.map((e) => e.name);
    if (names.includes('invalidate')) continue;
    let state: JobTruth['state'] = 'pending';
    let ended = false;
    for (const e of evs) {
      if (e.name === 'finish' || (e.name === 'exception' && e.context.severity === 0)) ended = true;
      if (e.name === 'alloc' && !ended) state = 'running';
    }
    if (names.includes('clean')) state = 'done';
    const submit = evs.find((e) => e.name === 'submit')!;
    out.push({ cluster, id, user: submit.user ?? String(submit.context.userid), submitTs: submit.ts, state });
  }
  return out;
}

let truthJobs: Map<string, JobTruth[]>;

beforeAll(async () => {
  rm = await buildSimReadModel(DB, SIMS);
  truthJobs = new Map(SIMS.map((s) => [s.cluster!, jobsOf(s.cluster!, rm.events.get(s.cluster!)!)]));
  for (const s of SIMS) expect(truthJobs.get(s.cluster!)!.length).toBe(groundTruth(s).jobs);
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await rm?.cleanup();
});

// ---- cluster_status --------------------------------------------------------------------------------

/** cluster_status's numbers for one cluster, from the simulated events. */
function expectedStatus(cluster: string) {
  const events = rm.events.get(cluster)!;
  const jobs = truthJobs.get(cluster)!;
  const lastTs = events.reduce((m, e) => (e.ts > m ? e.ts : m), -Infinity);
  const published = PUBLISHED_S[cluster]!;
  // Every event of a cluster shares one publish time; the last one published is the last in the log.
  const newest = events.at(-1)!;
  return {
    jobs: jobs.length,
    pending: jobs.filter((j) => j.state === 'pending').length,
    running: jobs.filter((j) => j.state === 'running').length,
    lastTsUs: us(lastTs),
    last_published_at: iso6(BigInt(published) * 1_000_000n),
    scribe_lag_s: NOW_MS / 1000 - published,
    publish_delay_s: Number(BigInt(published) * 1_000_000n - us(newest.ts)) / 1e6,
  };
}

describe('cluster_status', () => {
  it('reports each cluster with counts, times and lags recomputed from the events; projector lag unknown without a log', async () => {
    const client = await connect();
    const res = await client.callTool({ name: 'cluster_status', arguments: {} });
    expect(res.isError).toBeFalsy();
    const out = structured(res);
    expect(out.projector_lag_known).toBe(false);
    expect(out.as_of).toBe(iso6(BigInt(NOW_MS) * 1000n));
    expect(out.clusters.map((c: any) => c.cluster)).toEqual(['alpha', 'beta']);
    const [held] = await queryRows<{ alpha: string; beta: string }>(
      rm.ch,
      `SELECT sumIf(held, cluster = 'alpha') AS alpha, sumIf(held, cluster = 'beta') AS beta
         FROM (SELECT cluster, job_id, argMax(held, last_seq) AS held, argMax(state, last_seq) AS st, argMax(is_deleted, last_seq) AS del
                 FROM ${DB}.jobs GROUP BY cluster, job_id) WHERE st = 'pending' AND del = 0`,
    );
    for (const c of out.clusters) {
      const want = expectedStatus(c.cluster);
      expect(c.scheduler).toBe('flux');
      expect({ jobs: c.jobs, pending: c.pending, running: c.running }).toEqual({ jobs: want.jobs, pending: want.pending, running: want.running });
      expect(c.held).toBe(Number(held![c.cluster as 'alpha' | 'beta']));
      // Sim times are float seconds: allow the microsecond rounding of DateTime64(6).
      const lastUs = BigInt(Date.parse(c.last_event_ts)) * 1000n + BigInt(c.last_event_ts.slice(23, 26));
      expect(Math.abs(Number(lastUs - want.lastTsUs))).toBeLessThanOrEqual(1);
      expect(c.last_published_at).toBe(want.last_published_at);
      expect(c.scribe_lag_s).toBeCloseTo(want.scribe_lag_s, 6);
      expect(c.publish_delay_s).toBeCloseTo(want.publish_delay_s, 5);
      expect(c.projector_lag_events).toBeNull();
    }
    // The sims leave work queued, so the counts are not trivially zero.
    expect(out.clusters.some((c: any) => c.pending > 0) && out.clusters.some((c: any) => c.running > 0)).toBe(true);
    // Verdicts with the stated default thresholds: alpha last published ~54 days ago → stale;
    // beta published 20 min ago but its newest event ~54 days after it happened → lagging.
    const [alpha, beta] = out.clusters;
    expect(out.thresholds).toEqual({ stale_after_s: 3600, max_projector_lag_events: 1000, max_publish_delay_s: 300 });
    expect(alpha.scribe_lag_s).toBeGreaterThan(3600);
    expect(alpha.publish_delay_s).toBeLessThan(300);
    expect([alpha.health, beta.health]).toEqual(['stale', 'lagging']);
    expect(beta.reasons.join(' ')).toMatch(/published .* s after it happened/);
  });

  it('filters one cluster, takes thresholds, and names the known clusters for an unknown one', async () => {
    const client = await connect();
    const one = structured(
      await client.callTool({ name: 'cluster_status', arguments: { cluster: 'alpha', stale_after_s: 10 ** 9 } }),
    );
    expect(one.clusters.map((c: any) => [c.cluster, c.health])).toEqual([['alpha', 'ok']]);
    const bad = (await client.callTool({ name: 'cluster_status', arguments: { cluster: 'gamma' } }));
    expect(bad.isError).toBe(true);
    expect((bad.content[0] as { text: string }).text).toBe("no cluster 'gamma' in the job store; known clusters: alpha, beta");
  });

  it('reports the projector lag of records published to the log and not projected', async () => {
    const log = createEmbeddedLog(rm.ch.client, DB);
    const extra = [...simulate({ seed: 99, cluster: 'alpha', nodes: 2, epoch: EPOCH, untilTime: EPOCH + 12 * 3600 })].slice(0, 1500);
    const gamma = [...simulate({ seed: 98, cluster: 'gamma', nodes: 2, epoch: EPOCH, untilTime: EPOCH + 3600 })].slice(0, 7);
    expect(extra).toHaveLength(1500);
    const origin = (cluster: string) => ({ cluster, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } });
    await log.publish(eventsTopic('jobscribe', 'alpha'), extra.map((e) => toLogMessage(toEnvelope(origin('alpha'), e, EPOCH))));
    await log.publish(eventsTopic('jobscribe', 'gamma'), gamma.map((e) => toLogMessage(toEnvelope(origin('gamma'), e, EPOCH))));
    // Independent of the log code: log_records per topic minus the projector's committed offset.
    const positions = await queryRows<{ topic: string; n: string; committed: string }>(
      rm.ch,
      `SELECT topic, toString(count()) AS n,
              toString(ifNull((SELECT argMax(offset, version) FROM ${DB}.log_offsets WHERE group = '${projectorGroup('jobscribe')}' AND topic = r.topic), 0)) AS committed
         FROM ${DB}.log_records AS r GROUP BY topic ORDER BY topic`,
    );
    const lagOf = Object.fromEntries(positions.map((p) => [p.topic.split('.')[1], Number(p.n) - Number(p.committed)]));
    expect(lagOf).toEqual({ alpha: 1500, beta: 0, gamma: 7 });

    const client = await connect({ logLag: projectorLagOf(log, projectorGroup('jobscribe'), 'jobscribe') });
    const out = structured(await client.callTool({ name: 'cluster_status', arguments: {} }));
    expect(out.projector_lag_known).toBe(true);
    const byName = Object.fromEntries(out.clusters.map((c: any) => [c.cluster, c]));
    expect(Object.keys(byName)).toEqual(['alpha', 'beta', 'gamma']);
    expect(byName.alpha.projector_lag_events).toBe(lagOf.alpha);
    expect(byName.beta.projector_lag_events).toBe(lagOf.beta);
    expect(byName.gamma.projector_lag_events).toBe(lagOf.gamma);
    // 1500 > 1000 events behind: lagging (over stale); gamma is in the log only: stale, no read-model numbers.
    expect(byName.alpha.health).toBe('lagging');
    expect(byName.alpha.reasons[0]).toBe('projector is 1500 events behind the log (threshold 1000)');
    expect(byName.gamma).toMatchObject({ scheduler: null, jobs: 0, last_event_ts: null, scribe_lag_s: null, health: 'stale' });
    // The read model itself did not move: alpha's counts are those of the projected events.
    expect(byName.alpha.jobs).toBe(expectedStatus('alpha').jobs);
    await log.close();
  });
});

// ---- resources ----------------------------------------------------------------------------------

describe('resources', () => {
  it('lists the static resources, one resource per cluster, and the two templates', async () => {
    const client = await connect();
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(
      ['jobscribe://clusters', 'jobscribe://schema', 'jobscribe://cluster/alpha', 'jobscribe://cluster/beta'].sort(),
    );
    for (const r of resources) expect(r.mimeType).toBe('application/json');
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([CLUSTER_TEMPLATE, JOB_TEMPLATE].sort());
  });

  it('jobscribe://clusters is cluster_status for every cluster, with each cluster resource uri', async () => {
    const client = await connect();
    const listed = await readJson(client, 'jobscribe://clusters');
    const tool = structured(await client.callTool({ name: 'cluster_status', arguments: {} }));
    expect(listed.clusters.map(({ uri: _uri, ...rest }: any) => rest)).toEqual(tool.clusters);
    expect(listed.clusters.map((c: any) => c.uri)).toEqual(['jobscribe://cluster/alpha', 'jobscribe://cluster/beta']);
    for (const c of listed.clusters) expect(c.jobs).toBe(truthJobs.get(c.cluster)!.length);
  });

  it('jobscribe://cluster/{name} counts jobs per state and queue as the simulator tallied them', async () => {
    const client = await connect();
    for (const sim of SIMS) {
      const truth = groundTruth(sim);
      const doc = await readJson(client, `jobscribe://cluster/${sim.cluster}`);
      expect(doc.status.cluster).toBe(sim.cluster);
      expect(doc.status.jobs).toBe(truth.jobs);
      const jobs = truthJobs.get(sim.cluster!)!;
      expect(doc.states.pending).toBe(jobs.filter((j) => j.state === 'pending').length);
      expect(doc.states.running).toBe(jobs.filter((j) => j.state === 'running').length);
      expect({ c: doc.states.completed, f: doc.states.failed, x: doc.states.canceled, t: doc.states.timeout }).toEqual({
        c: truth.results.COMPLETED,
        f: truth.results.FAILED,
        x: truth.results.CANCELED,
        t: truth.results.TIMEOUT,
      });
      expect(doc.queues.map((q: any) => q.queue).sort()).toEqual(Object.keys(truth.byQueue).sort());
      for (const q of doc.queues) {
        const t = truth.byQueue[q.queue]!;
        expect([q.jobs, q.completed, q.failed, q.pending + q.running]).toEqual([t.jobs, t.COMPLETED, t.FAILED, t.active]);
      }
      expect(doc.truncated).toBe(false);
    }
    const err = await readError(client, 'jobscribe://cluster/gamma');
    expect(err.code).toBe(-32602);
    expect(err.message).toContain("no cluster 'gamma' in the job store; known clusters: alpha, beta");
  });

  it('jobscribe://job/{cluster}/{id} is the job get_job shows, by decimal or f58 id', async () => {
    const client = await connect();
    const job = truthJobs.get('alpha')!.find((j) => j.state === 'running')!;
    const doc = await readJson(client, `jobscribe://job/alpha/${job.id}`);
    expect(doc.job).toMatchObject({ cluster: 'alpha', job_id: job.id, user: job.user, state: 'running' });
    expect(doc.job.t_submit).toBe(iso6(us(job.submitTs)));
    const tool = structured(await client.callTool({ name: 'get_job', arguments: { cluster: 'alpha', job_id: job.id } }));
    expect(doc.job).toEqual(tool.job);
    const f58Uri = `jobscribe://job/alpha/${encodeURIComponent(toF58(job.id))}`;
    expect((await readJson(client, f58Uri)).job.job_id).toBe(job.id);

    const missing = await readError(client, 'jobscribe://job/alpha/12345');
    expect(missing.code).toBe(-32602);
    expect(missing.message).toContain('no job 12345 on alpha');
    expect((await readError(client, 'jobscribe://job/beta/notanid')).message).toContain('is not a decimal or f58 Flux job id');
  });

  it('a plain user reads only their own job resources', async () => {
    const jobs = truthJobs.get('alpha')!;
    const me = jobs[0]!.user;
    const mine = jobs.find((j) => j.user === me)!;
    const theirs = jobs.find((j) => j.user !== me)!;
    const client = await connect({}, { subject: 'tok-me', user: me, roles: [] });
    expect((await readJson(client, `jobscribe://job/alpha/${mine.id}`)).job.user).toBe(me);
    // Another user's job answers exactly like a job that does not exist: existence never leaks.
    const denied = await readError(client, `jobscribe://job/alpha/${theirs.id}`);
    const absent = await readError(client, `jobscribe://job/alpha/12345`);
    expect(denied.code).toBe(-32602);
    expect(denied.message).toBe(absent.message.replaceAll('12345', theirs.id));
    expect(denied.message).not.toContain(theirs.user);
    // An identity with no scheduler user reads no job; `jobDetails: 'all'` lets anyone read any.
    const nobody = await connect({}, { subject: 'tok-x', roles: [] });
    expect((await readError(nobody, `jobscribe://job/alpha/${mine.id}`)).code).toBe(-32602);
    await expect(nobody.readResource({ uri: `jobscribe://job/alpha/${mine.id}` })).rejects.toThrow(/may read no job details/);
    const open = await connect({ jobDetails: 'all' }, { subject: 'tok-me', user: me, roles: [] });
    expect((await readJson(open, `jobscribe://job/alpha/${theirs.id}`)).job.user).toBe(theirs.user);
  });

  it('jobscribe://schema is what describe_schema answers, with the configured run_sql limits', async () => {
    for (const deps of [{}, { limits: { sql: { maxRows: 123 } } }]) {
      const client = await connect(deps);
      const doc = await readJson(client, 'jobscribe://schema');
      const columns = await queryRows<{ table: string; name: string }>(
        rm.ch,
        `SELECT table, name FROM system.columns WHERE database = '${DB}' AND table IN ('jobs', 'job_events') ORDER BY table, position`,
      );
      for (const table of ['jobs', 'job_events']) {
        expect(doc.tables.find((t: any) => t.name === table).columns.map((c: any) => c.name)).toEqual(
          columns.filter((c) => c.table === table).map((c) => c.name),
        );
      }
      const tool = (await client.callTool({ name: 'describe_schema', arguments: {} }));
      expect(doc).toEqual(tool.structuredContent);
      expect(JSON.stringify(doc.rules).includes('at most 123 rows')).toBe('limits' in deps);
    }
  });
});

// ---- completions ------------------------------------------------------------------------------------

/** Readable alpha jobs (as the test computes them) whose id in `form` starts with `prefix`, newest first. */
function expectedIds(cluster: string, prefix: string, form: (id: string) => string, user?: string): string[] {
  return truthJobs
    .get(cluster)!
    .filter((j) => (user === undefined || j.user === user) && form(j.id).startsWith(prefix))
    .sort((a, b) => b.submitTs - a.submitTs || (BigInt(b.id) > BigInt(a.id) ? 1 : -1))
    .slice(0, 20)
    .map((j) => form(j.id));
}

describe('completions', () => {
  it('completes cluster names for the templates and the prompts', async () => {
    const client = await connect();
    const complete = async (ref: any, name: string, value: string) =>
      (await client.complete({ ref, argument: { name, value } })).completion.values;
    expect(await complete({ type: 'ref/resource', uri: JOB_TEMPLATE }, 'cluster', '')).toEqual(['alpha', 'beta']);
    expect(await complete({ type: 'ref/resource', uri: CLUSTER_TEMPLATE }, 'name', 'b')).toEqual(['beta']);
    expect(await complete({ type: 'ref/prompt', name: 'diagnose_job' }, 'cluster', 'al')).toEqual(['alpha']);
    expect(await complete({ type: 'ref/prompt', name: 'queue_report' }, 'cluster', 'z')).toEqual([]);
    const users = [...new Set(truthJobs.get('alpha')!.concat(truthJobs.get('beta')!).map((j) => j.user))].sort();
    const first = users[0]!;
    expect(await complete({ type: 'ref/prompt', name: 'user_report' }, 'user', first.slice(0, 2))).toEqual(
      users.filter((u) => u.startsWith(first.slice(0, 2))).slice(0, 20),
    );
  });

  it('completes job ids by decimal and f58 prefix, most recent first, bounded', async () => {
    const client = await connect();
    const ids = async (value: string, cluster?: string) =>
      (
        await client.complete({
          ref: { type: 'ref/resource', uri: JOB_TEMPLATE },
          argument: { name: 'id', value },
          ...(cluster && { context: { arguments: { cluster } } }),
        })
      ).completion.values;
    const alpha = truthJobs.get('alpha')!;
    const sample = alpha[Math.floor(alpha.length / 2)]!.id;
    for (const len of [0, 6, 12, sample.length]) {
      const prefix = sample.slice(0, len);
      const got = await ids(prefix, 'alpha');
      expect(got, `prefix '${prefix}'`).toEqual(expectedIds('alpha', prefix, (id) => id));
      expect(got.length).toBeGreaterThan(0);
      expect(got.length).toBeLessThanOrEqual(20);
    }
    const f58 = toF58(sample);
    for (const len of [4, 7, f58.length]) {
      expect(await ids(f58.slice(0, len), 'alpha')).toEqual(expectedIds('alpha', f58.slice(0, len), toF58));
    }
    const ascii = 'f' + f58.slice(1, 6);
    expect(await ids(ascii, 'alpha')).toEqual(expectedIds('alpha', f58.slice(0, 6), toF58).map((s) => 'f' + s.slice(1)));
    expect(await ids('9'.repeat(21), 'alpha')).toEqual([]);
    expect(await ids('xyz', 'alpha')).toEqual([]);
    // The prompt's job_id completes the same way, in the cluster given as context.
    const viaPrompt = await client.complete({
      ref: { type: 'ref/prompt', name: 'diagnose_job' },
      argument: { name: 'job_id', value: sample.slice(0, 8) },
      context: { arguments: { cluster: 'alpha' } },
    });
    expect(viaPrompt.completion.values).toEqual(expectedIds('alpha', sample.slice(0, 8), (id) => id));
  });

  it('completes only the ids a plain user may read', async () => {
    const me = truthJobs.get('alpha')![0]!.user;
    const client = await connect({}, { subject: 'tok-me', user: me, roles: [] });
    const got = (await client.complete({ ref: { type: 'ref/resource', uri: JOB_TEMPLATE }, argument: { name: 'id', value: '' }, context: { arguments: { cluster: 'alpha' } } }))
      .completion.values;
    expect(got).toEqual(expectedIds('alpha', '', (id) => id, me));
    expect(got.length).toBeGreaterThan(0);
  });

  it('prefix ranges cover exactly the ids with that prefix (pure)', () => {
    const inRanges = (id: bigint, p: string) => jobIdPrefixRanges(p)!.ranges.some(([lo, hi]) => lo <= id && id <= hi);
    for (const id of [0n, 7n, 10n, 123456789n, 18446744073709551615n, 1_000_000_000_000_000n]) {
      const dec = id.toString();
      for (let k = 1; k <= dec.length; k++) expect(inRanges(id, dec.slice(0, k))).toBe(true);
      const f = toF58(id);
      for (let k = 2; k <= f.length; k++) expect(inRanges(id, f.slice(0, k))).toBe(true);
    }
    expect(inRanges(1234n, '124')).toBe(false);
    expect(inRanges(12n, '123')).toBe(false);
    expect(jobIdPrefixRanges('01')).toBeUndefined();
    expect(jobIdPrefixRanges('ƒ0')).toBeUndefined();
    expect(jobIdPrefixRanges('2'.repeat(21))).toBeUndefined();
  });
});

// ---- prompts ----------------------------------------------------------------------------------------

describe('prompts', () => {
  it('lists the three prompts with their arguments', async () => {
    const client = await connect();
    const { prompts } = await client.listPrompts();
    const args = Object.fromEntries(prompts.map((p) => [p.name, (p.arguments ?? []).map((a) => `${a.name}${a.required ? '!' : '?'}`)]));
    expect(args).toEqual({ diagnose_job: ['cluster?', 'job_id!'], queue_report: ['cluster?'], user_report: ['user!', 'window?'] });
  });

  it('renders each prompt with its arguments and names the tools to call', async () => {
    const client = await connect();
    const text = async (name: string, args: Record<string, string>) => {
      const r = await client.getPrompt({ name, arguments: args });
      expect(r.messages).toHaveLength(1);
      expect(r.messages[0]!.role).toBe('user');
      return (r.messages[0]!.content as { text: string }).text;
    };
    const d = await text('diagnose_job', { cluster: 'alpha', job_id: 'ƒRcvRGc7' });
    expect(d).toContain('Diagnose job ƒRcvRGc7 on cluster alpha');
    expect(d).toContain('get_job (job_id "ƒRcvRGc7", cluster "alpha")');
    for (const tool of ['job_timeline', 'queue_summary', 'wait_time_stats', 'failure_analysis']) expect(d).toContain(tool);
    expect(await text('diagnose_job', { job_id: '42' })).not.toContain('cluster "');

    const q = await text('queue_report', {});
    expect(q).toContain('every cluster');
    for (const tool of ['cluster_status', 'queue_summary', 'wait_time_stats', 'throughput']) expect(q).toContain(tool);
    expect(await text('queue_report', { cluster: 'beta' })).toContain('cluster_status (cluster "beta")');

    const u = await text('user_report', { user: 'alice' });
    expect(u).toContain('user alice since -7d');
    for (const tool of ['user_summary', 'search_jobs', 'failure_analysis']) expect(u).toContain(tool);
    expect(await text('user_report', { user: 'alice', window: '-24h' })).toContain('submitted_after "-24h"');
  });

  it('refuses bad prompt arguments with a message saying what to send', async () => {
    const client = await connect();
    await expect(client.getPrompt({ name: 'diagnose_job', arguments: { job_id: 'nope' } })).rejects.toThrow(/decimal or f58/);
    await expect(client.getPrompt({ name: 'user_report', arguments: { user: 'a', window: 'last week' } })).rejects.toThrow(/-7d/);
  });
});

// ---- logging ------------------------------------------------------------------------------------------

describe('logging', () => {
  type Msg = { level: string; logger?: string; data: unknown };
  async function loggingClient(deps: Partial<McpDeps>): Promise<{ client: Client; messages: Msg[] }> {
    const client = await connect(deps);
    const messages: Msg[] = [];
    client.setNotificationHandler('notifications/message', (n) => {
      messages.push(n.params);
    });
    return { client, messages };
  }
  const refOf = (r: unknown) => /\(ref ([0-9a-f]{8})\)/.exec(((r as CallToolResult).content[0] as { text: string }).text)?.[1];
  async function until(cond: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  }

  it('declares logging and completions and accepts logging/setLevel', async () => {
    const client = await connect();
    const caps = client.getServerCapabilities()!;
    expect(caps.logging).toBeDefined();
    expect(caps.completions).toBeDefined();
    expect(caps.resources).toBeDefined();
    expect(caps.prompts).toBeDefined();
    await expect(client.setLoggingLevel('warning')).resolves.toEqual({});
  });

  it('sends a store failure as an error message with the reference the agent saw, unless the level filters it', async () => {
    const { client, messages } = await loggingClient({ database: 'no_such_db' });
    await client.setLoggingLevel('critical');
    const hidden = refOf(await client.callTool({ name: 'get_job', arguments: { job_id: '1' } }));
    await client.setLoggingLevel('error');
    const shown = refOf(await client.callTool({ name: 'get_job', arguments: { job_id: '1' } }));
    expect(hidden).toBeDefined();
    expect(shown).toBeDefined();
    await until(() => messages.length > 0);
    // Notifications keep their order: had the first been sent, it would have arrived first.
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ level: 'error', logger: 'jobscribe' });
    expect(String(messages[0]!.data)).toContain(`get_job failed (ref ${shown})`);
    expect(String(messages[0]!.data)).not.toContain('\n');
    // A resource read fails the same way: a one-line JSON-RPC error with a reference, logged.
    const err = await readError(client, 'jobscribe://clusters');
    expect(err.code).toBe(-32603);
    const ref = /\(ref ([0-9a-f]{8})\)/.exec(err.message)?.[1];
    expect(err.message).toContain('jobscribe://clusters: the job store could not answer');
    await until(() => messages.length > 1);
    expect(String(messages[1]!.data)).toContain(`resources/read jobscribe://clusters failed (ref ${ref})`);
  });

  it('sends unhealthy clusters as warnings at level warning and below, not at error', async () => {
    const { client, messages } = await loggingClient({});
    await client.setLoggingLevel('error');
    await client.callTool({ name: 'cluster_status', arguments: { cluster: 'alpha' } });
    await client.setLoggingLevel('warning');
    await client.callTool({ name: 'cluster_status', arguments: { cluster: 'beta' } });
    await until(() => messages.length > 0);
    expect(messages.map((m) => [m.level, (m.data as { cluster: string }).cluster, (m.data as { health: string }).health])).toEqual([
      ['warning', 'beta', 'lagging'],
    ]);
  });
});
