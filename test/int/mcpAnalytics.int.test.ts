/**
 * The five analytics tools (wait_time_stats, throughput, failure_analysis, utilization,
 * user_summary) against a read model projected from two seeded simulator runs, through an SDK
 * Client over an in-memory transport. Every expected answer is recomputed here from the raw
 * simulator events (Flux eventlog semantics: t_start = alloc, t_end = finish or the first fatal
 * exception, the result decided at clean), never from the tables the tools read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import type { McpDeps } from '../../mcp/server.js';
import type { Identity } from '../../mcp/identity.js';
import { expandHostlist, idset } from '../../projector/tables/hostlist.js';
import { buildSimReadModel, type SimReadModel } from '../support/simReadModel.js';
import { connectMcp } from '../support/mcpClient.js';

const DB = 'mcp_analytics_test';
const HOUR = 3600;
/** 2026-11-22T21:00:00Z: both runs cross a UTC midnight. */
const EPOCH = 1795305600 - 3 * HOUR;
const SIMS = [
  { seed: 21, cluster: 'alpha', nodes: 16, coresPerNode: 32, epoch: EPOCH, submitRate: 1, maxJobs: 300 },
  // Stopped mid-flight: jobs still pending and running at the end.
  { seed: 22, cluster: 'beta', nodes: 6, coresPerNode: 16, gpusPerNode: 2, epoch: EPOCH, submitRate: 0.8, untilTime: EPOCH + 4 * HOUR },
];
const CAPACITY = { alpha: { nodes: 16, cores: 512, gpus: 16 } };

// ---- the independent model: jobs folded from the raw events -------------------------------------

type State = 'pending' | 'running' | 'completed' | 'failed' | 'canceled' | 'timeout';
interface SimJob {
  cluster: string;
  id: string;
  user: string;
  queue: string;
  submit: number;
  start?: number;
  end?: number;
  state: State;
  result?: string;
  exitCode: number | null;
  /** Name of the signal that killed it, null when none. */
  signal: string | null;
  exceptionType: string | null;
  ncores: number;
  nnodes: number;
  ngpus: number;
  nodes: string[];
}

/** Seconds as DateTime64(6) keeps them. */
const r6 = (s: number) => Math.round(s * 1e6) / 1e6;
const us = (s: number) => Math.round(s * 1e6);

function foldJobs(rm: SimReadModel): SimJob[] {
  const jobs: SimJob[] = [];
  for (const [cluster, events] of rm.events) {
    const byJob = new Map<string, typeof events>();
    for (const e of events) byJob.set(e.job_id, [...(byJob.get(e.job_id) ?? []), e]);
    for (const [id, evs] of byJob) {
      if (evs.some((e) => e.name === 'invalidate')) continue; // never a job
      const submit = evs.find((e) => e.name === 'submit')!;
      const raw = submit.raw as { jobspec: { attributes: { system: { queue: string } } } };
      const job: SimJob = {
        cluster, id, user: submit.user!, queue: raw.jobspec.attributes.system.queue, submit: r6(submit.ts), state: 'pending',
        exitCode: null, signal: null, exceptionType: null, ncores: 0, nnodes: 0, ngpus: 0, nodes: [],
      };
      let status: number | undefined;
      let clean = false;
      for (const e of evs) {
        if (e.name === 'alloc' && job.end === undefined && job.start === undefined) {
          job.start = r6(e.ts);
          const R = (e.raw as { R: { execution: { R_lite: Array<{ rank: string; children: { core?: string; gpu?: string } }>; nodelist: string[] } } }).R;
          for (const entry of R.execution.R_lite) {
            const ranks = idset(entry.rank).length;
            job.nnodes += ranks;
            job.ncores += ranks * idset(entry.children.core).length;
            job.ngpus += ranks * idset(entry.children.gpu).length;
          }
          job.nodes = R.execution.nodelist.flatMap(expandHostlist);
        } else if (e.name === 'exception' && e.context.severity === 0) {
          job.exceptionType ??= String(e.context.type);
          job.end ??= r6(e.ts);
        } else if (e.name === 'finish') {
          status = Number(e.context.status);
          job.end ??= r6(e.ts);
        } else if (e.name === 'clean') {
          clean = true;
        }
      }
      if (clean) {
        const success = status === 0 && job.exceptionType === null;
        job.result = success ? 'COMPLETED' : job.exceptionType === 'cancel' ? 'CANCELED' : job.exceptionType === 'timeout' ? 'TIMEOUT' : 'FAILED';
        job.state = ({ COMPLETED: 'completed', CANCELED: 'canceled', TIMEOUT: 'timeout', FAILED: 'failed' } as const)[job.result as 'FAILED'];
        // one rule: the exit status when the processes exited; the signal when one killed them;
        // neither for a job that never ran (no finish: it ended by an exception)
        if (status !== undefined && (status & 0x7f) === 0) job.exitCode = (status >> 8) & 0xff;
        else if (status !== undefined) job.signal = SIGNAL_NAMES[status & 0x7f] ?? null;
      } else if (job.start !== undefined) {
        job.state = 'running';
      }
      jobs.push(job);
    }
  }
  return jobs;
}

/** The signals the simulator deals out, by number (Linux). */
const SIGNAL_NAMES: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

const waitOf = (j: SimJob) => j.start! - j.submit;
const inWin = (t: number | undefined, since: number, until: number) => t !== undefined && us(t) >= us(since) && us(t) < us(until);

/** numpy's default percentile: linear interpolation between the order statistics. */
function percentile(sorted: number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}
function expectedWait(waits: number[]) {
  const s = [...waits].sort((a, b) => a - b);
  if (s.length === 0) return { jobs: 0, p50_s: null, p90_s: null, p99_s: null, mean_s: null, max_s: null };
  return {
    jobs: s.length,
    p50_s: percentile(s, 0.5),
    p90_s: percentile(s, 0.9),
    p99_s: percentile(s, 0.99),
    mean_s: s.reduce((a, b) => a + b, 0) / s.length,
    max_s: s[s.length - 1]!,
  };
}
/** The tools round seconds to the millisecond and hours to 1/1000. */
function expectWaitStats(actual: Record<string, unknown>, expected: ReturnType<typeof expectedWait>) {
  expect(actual.jobs).toBe(expected.jobs);
  for (const k of ['p50_s', 'p90_s', 'p99_s', 'mean_s', 'max_s'] as const) {
    if (expected[k] === null) expect(actual[k], k).toBeNull();
    else expect(Math.abs((actual[k] as number) - expected[k]), `${k}: ${String(actual[k])} vs ${expected[k]}`).toBeLessThanOrEqual(0.0005 + 1e-9);
  }
}
const near = (a: number, b: number, tol: number, what: string) => expect(Math.abs(a - b), `${what}: ${a} vs ${b}`).toBeLessThanOrEqual(tol);

const SIZE_BINS: Array<[string, number]> = [['1', 1], ['2-16', 16], ['17-64', 64], ['65-256', 256], ['257-1024', 1024], ['1025+', Infinity]];
const sizeOf = (j: SimJob) => SIZE_BINS.find(([, max]) => j.ncores <= max)![0];
const iso = (s: number) => `${new Date(Math.round(s) * 1000).toISOString().slice(0, 19)}.000000Z`;
/** UTC-aligned bucket starts (seconds) covering [since, until). */
function bucketStarts(since: number, until: number, width: number): number[] {
  const origin = 4 * 86400; // Monday 1970-01-05
  const out: number[] = [];
  for (let b = origin + Math.floor((since - origin) / width) * width; b < until; b += width) out.push(b);
  return out;
}
/** Bucket rows as the output schemas document them, back to objects. */
const THROUGHPUT_COLUMNS = ['start', 'submitted', 'started', 'completed', 'failed', 'canceled', 'timeout'];
const UTILIZATION_COLUMNS = ['start', 'core_hours', 'node_hours', 'core_util', 'node_util'];
const rowsAsObjects = (columns: string[], rows: unknown[][]): any[] => rows.map((r) => {
  expect(r).toHaveLength(columns.length);
  return Object.fromEntries(columns.map((c, i) => [c, r[i]]));
});
const tpBuckets = (c: { buckets: unknown[][] }) => rowsAsObjects(THROUGHPUT_COLUMNS, c.buckets);
const utBuckets = (c: { buckets: unknown[][] }) => rowsAsObjects(UTILIZATION_COLUMNS, c.buckets);

/** Seconds of [a, b) inside [lo, hi). */
const overlap = (a: number, b: number, lo: number, hi: number) => Math.max(0, Math.min(b, hi) - Math.max(a, lo));

/** Node-seconds in [lo, hi): per node, the length of the union of its jobs' runs there, summed. */
function busyNodeSeconds(ran: SimJob[], lo: number, hi: number, now: number): number {
  const byNode = new Map<string, Array<[number, number]>>();
  let unnamed = 0;
  for (const j of ran) {
    const a = Math.max(j.start!, lo);
    const b = Math.min(j.end ?? now, hi);
    if (b <= a) continue;
    if (j.nodes.length === 0) unnamed += (b - a) * j.nnodes;
    for (const n of new Set(j.nodes)) byNode.set(n, [...(byNode.get(n) ?? []), [a, b]]);
  }
  let total = unnamed;
  for (const spans of byNode.values()) {
    spans.sort((x, y) => x[0] - y[0]);
    let end = -Infinity;
    for (const [a, b] of spans) {
      total += Math.max(0, b - Math.max(a, end));
      end = Math.max(end, b);
    }
  }
  return total;
}

// ---- harness ---------------------------------------------------------------------------------------

let rm: SimReadModel;
let jobs: SimJob[];
let NOW: number;
let admin: Client;
let plain: Client;
let plainUser: string;
const logged: string[] = [];

const connect = (deps: McpDeps, identity?: Identity): Promise<Client> => connectMcp(deps, identity, 'mcp-analytics-test');

beforeAll(async () => {
  rm = await buildSimReadModel(DB, SIMS);
  jobs = foldJobs(rm);
  const lastTs = Math.max(...[...rm.events.values()].flat().map((e) => e.ts));
  NOW = Math.ceil(lastTs / HOUR) * HOUR + 2 * HOUR;
  const deps: McpDeps = { clickhouse: rm.ch.client, database: rm.ch.database, now: () => NOW * 1000, logError: (m) => logged.push(m), capacity: CAPACITY };
  admin = await connect(deps);
  plainUser = busiestUser('alpha');
  plain = await connect(deps, { subject: 'someone', user: plainUser, roles: [] });
});

afterAll(async () => {
  await admin?.close();
  await plain?.close();
  await rm?.cleanup();
});

function busiestUser(cluster: string): string {
  const n = new Map<string, number>();
  for (const j of jobs) if (j.cluster === cluster) n.set(j.user, (n.get(j.user) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}

async function ok<T = any>(name: string, args: Record<string, unknown>, client = admin): Promise<T> {
  const r: CallToolResult = await client.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)} ${logged.at(-1) ?? ''}`);
  const text = r.content.find((c) => c.type === 'text');
  expect(text && JSON.parse(text.text)).toEqual(r.structuredContent);
  return r.structuredContent as T;
}
async function fails(name: string, args: Record<string, unknown>): Promise<string> {
  const r = await admin.callTool({ name, arguments: args });
  expect(r.isError, `expected ${name} ${JSON.stringify(args)} to fail`).toBe(true);
  const text = r.content.find((c) => c.type === 'text');
  return text?.type === 'text' ? text.text : '';
}

/** The whole simulated span as an explicit window. */
const ALL = () => ({ since: iso(EPOCH - HOUR), until: iso(NOW) });

// ---- tests -------------------------------------------------------------------------------------------

describe('the simulated read model', () => {
  it('has what the tests below need: two clusters, running and pending jobs, failures of several kinds', () => {
    const states = new Set(jobs.map((j) => `${j.cluster}:${j.state}`));
    for (const s of ['alpha:completed', 'alpha:failed', 'alpha:canceled', 'beta:running', 'beta:pending']) expect(states).toContain(s);
    expect(new Set(jobs.filter((j) => j.state === 'failed').map((j) => j.exitCode)).size).toBeGreaterThan(2);
    expect(new Set(jobs.filter((j) => j.start !== undefined).map(sizeOf)).size).toBeGreaterThan(1);
    expect(jobs.length).toBeGreaterThan(400);
  });
});

describe('tools/list', () => {
  it('lists the five analytics tools, read-only, each with input and output schemas, within the token budget', async () => {
    const { tools } = await admin.listTools();
    const names = ['wait_time_stats', 'throughput', 'failure_analysis', 'utilization', 'user_summary'];
    let tokens = 0;
    for (const name of names) {
      const t = tools.find((x) => x.name === name)!;
      expect(t, name).toBeDefined();
      expect(t.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: false });
      expect(t.outputSchema?.type).toBe('object');
      expect(t.inputSchema.additionalProperties).toBe(false);
      // Token estimate: JSON length / 4. Aim ~350 per definition so ~20 tools stay near 8k together.
      const estimate = JSON.stringify(t).length / 4;
      expect(estimate, name).toBeLessThanOrEqual(450);
      tokens += estimate;
    }
    expect(tokens).toBeLessThanOrEqual(2000);
    // The bucket rows say their columns.
    const bucketsDoc = (name: string) => (tools.find((x) => x.name === name)!.outputSchema as any).properties.clusters.items.properties.buckets.description;
    expect(bucketsDoc('throughput')).toBe(`[${THROUGHPUT_COLUMNS.join(', ')}]`);
    expect(bucketsDoc('utilization')).toBe(`[${UTILIZATION_COLUMNS.join(', ')}]`);
  });
});

describe('wait_time_stats', () => {
  it('per cluster: exact p50/p90/p99, mean and max of start − submit over the jobs that started in the window', async () => {
    const since = EPOCH + HOUR;
    const until = EPOCH + 3 * HOUR;
    const out = await ok('wait_time_stats', { since: iso(since), until: iso(until) });
    expect(out.since).toBe(iso(since));
    expect(out.until).toBe(iso(until));
    expect(out.truncated).toBe(false);
    expect(out.groups.map((g: any) => g.cluster)).toEqual(['alpha', 'beta']);
    for (const g of out.groups) {
      const waits = jobs.filter((j) => j.cluster === g.cluster && inWin(j.start, since, until)).map(waitOf);
      expect(waits.length).toBeGreaterThan(20);
      expectWaitStats(g, expectedWait(waits));
      expect(Object.keys(g).sort()).toEqual(['cluster', 'jobs', 'max_s', 'mean_s', 'p50_s', 'p90_s', 'p99_s']);
    }
  });

  it('by queue, size bin and hour bucket on one cluster, ordered by the keys', async () => {
    const { since, until } = ALL();
    const out = await ok('wait_time_stats', { cluster: 'alpha', group_by: ['size', 'queue'], bucket: 'hour', since, until });
    const expected = new Map<string, number[]>();
    for (const j of jobs) {
      if (j.cluster !== 'alpha' || j.start === undefined) continue;
      const k = `${j.queue}|${sizeOf(j)}|${iso(Math.floor(j.start / HOUR) * HOUR)}`;
      expected.set(k, [...(expected.get(k) ?? []), waitOf(j)]);
    }
    const keys = out.groups.map((g: any) => `${g.queue}|${g.size}|${g.bucket_start}`);
    expect(new Set(keys)).toEqual(new Set(expected.keys()));
    for (const g of out.groups) {
      expect(g).not.toHaveProperty('cluster');
      expectWaitStats(g, expectedWait(expected.get(`${g.queue}|${g.size}|${g.bucket_start}`)!));
    }
    const binIndex = (label: string) => SIZE_BINS.findIndex(([l]) => l === label);
    const order = out.groups.map((g: any) => [g.queue, binIndex(g.size), g.bucket_start]);
    const sorted = [...order].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0)));
    expect(order).toEqual(sorted);
  });

  it('filters by user and queue; one overall group with group_by []', async () => {
    const { since, until } = ALL();
    const user = busiestUser('beta');
    const out = await ok('wait_time_stats', { user, queue: 'batch', group_by: [], since, until });
    expect(out.groups).toHaveLength(1);
    const waits = jobs.filter((j) => j.user === user && j.queue === 'batch' && j.start !== undefined).map(waitOf);
    expect(waits.length).toBeGreaterThan(3);
    expectWaitStats(out.groups[0], expectedWait(waits));
  });

  it('an empty window: no groups, or one group of zero jobs with group_by []', async () => {
    const window = { since: '2020-01-01', until: '2020-01-02' };
    expect((await ok('wait_time_stats', window)).groups).toEqual([]);
    expect((await ok('wait_time_stats', { ...window, group_by: [] })).groups).toEqual([
      { jobs: 0, p50_s: null, p90_s: null, p99_s: null, mean_s: null, max_s: null },
    ]);
  });

  it('defaults to the last 24 hours before now', async () => {
    const out = await ok('wait_time_stats', {});
    expect(out.since).toBe(iso(NOW - 24 * HOUR));
    expect(out.until).toBe(iso(NOW));
  });
});

describe('throughput', () => {
  it('backlog: the mean number of jobs waiting in each bucket and the fullest bucket, from waits computed here', async () => {
    const { since, until } = ALL();
    const out = await ok('throughput', { since, until, backlog: true });
    const starts = bucketStarts(EPOCH - HOUR, NOW, HOUR);
    for (const c of out.clusters) {
      const mine = jobs.filter((j) => j.cluster === c.cluster);
      // a job waits from submit to start, or to its end if it never started, or to now
      const expected = starts.map((b) => {
        const lo = Math.max(b, EPOCH - HOUR);
        const hi = Math.min(b + HOUR, NOW);
        return mine.reduce((s, j) => s + overlap(j.submit, j.start ?? j.end ?? NOW, lo, hi), 0) / (hi - lo);
      });
      expect(c.backlog).toHaveLength(starts.length);
      c.backlog.forEach((v: number, i: number) => near(v, expected[i]!, 0.006, `${c.cluster} backlog ${iso(starts[i]!)}`));
      const peak = expected.indexOf(Math.max(...expected));
      expect(Math.max(...expected)).toBeGreaterThan(0);
      expect(c.peak_backlog[0]).toBe(iso(starts[peak]!));
      near(c.peak_backlog[1], expected[peak]!, 0.006, `${c.cluster} peak`);
    }
    const plain = await ok('throughput', { since, until });
    expect(plain.clusters[0].backlog).toBeUndefined();
  });

  it('counts submitted, started and ended (per final state) in every hour bucket, empty ones as zeros', async () => {
    const { since, until } = ALL();
    const out = await ok('throughput', { since, until });
    expect(out.bucket).toBe('hour'); // the default for a window under 3 days
    const starts = bucketStarts(EPOCH - HOUR, NOW, HOUR);
    expect(out.clusters.map((c: any) => c.cluster)).toEqual(['alpha', 'beta']);
    let sawEmpty = false;
    for (const c of out.clusters) {
      const buckets = tpBuckets(c);
      expect(buckets.map((b: any) => b.start)).toEqual(starts.map(iso));
      const mine = jobs.filter((j) => j.cluster === c.cluster);
      starts.forEach((b, i) => {
        const inB = (t: number | undefined) => inWin(t, b, b + HOUR);
        const ended = (s: State) => mine.filter((j) => j.state === s && inB(j.end)).length;
        const expected = {
          start: iso(b),
          submitted: mine.filter((j) => inB(j.submit)).length,
          started: mine.filter((j) => inB(j.start)).length,
          completed: ended('completed'),
          failed: ended('failed'),
          canceled: ended('canceled'),
          timeout: ended('timeout'),
        };
        expect(buckets[i]).toEqual(expected);
        if (expected.submitted + expected.started + expected.completed === 0) sawEmpty = true;
      });
      expect(c.totals.submitted).toBe(mine.length);
      expect(c.totals.started).toBe(mine.filter((j) => j.start !== undefined).length);
      for (const s of ['completed', 'failed', 'canceled', 'timeout'] as const) expect(c.totals[s]).toBe(mine.filter((j) => j.state === s).length);
    }
    expect(sawEmpty).toBe(true); // the hour before the simulation starts
  });

  it('day buckets are UTC days; the edge buckets count only what lies inside the window', async () => {
    const since = EPOCH + 30 * 60; // 21:30, a partial first day
    const out = await ok('throughput', { cluster: 'beta', since: iso(since), until: iso(NOW), bucket: 'day' });
    const dayStarts = bucketStarts(since, NOW, 86400);
    expect(dayStarts).toHaveLength(2); // the runs cross midnight
    expect(out.clusters).toHaveLength(1);
    const c = out.clusters[0];
    const buckets = tpBuckets(c);
    expect(buckets.map((b: any) => b.start)).toEqual(dayStarts.map(iso));
    dayStarts.forEach((d, i) => {
      const lo = Math.max(d, since);
      const beta = jobs.filter((j) => j.cluster === 'beta');
      expect(buckets[i].submitted).toBe(beta.filter((j) => inWin(j.submit, lo, Math.min(d + 86400, NOW))).length);
      expect(buckets[i].started).toBe(beta.filter((j) => inWin(j.start, lo, Math.min(d + 86400, NOW))).length);
    });
  });

  it('filters by user and queue; an empty window has no clusters', async () => {
    const user = busiestUser('alpha');
    const out = await ok('throughput', { user, queue: 'batch', ...ALL(), bucket: 'day' });
    for (const c of out.clusters) {
      expect(c.totals.submitted).toBe(jobs.filter((j) => j.cluster === c.cluster && j.user === user && j.queue === 'batch').length);
    }
    expect(out.clusters.map((c: any) => c.cluster)).toEqual(
      [...new Set(jobs.filter((j) => j.user === user && j.queue === 'batch').map((j) => j.cluster))].sort(),
    );
    expect((await ok('throughput', { since: '2020-01-01', until: '2020-01-02' })).clusters).toEqual([]);
  });
});

describe('failure_analysis', () => {
  const failing = (includeCanceled: boolean) => (j: SimJob) =>
    j.state === 'failed' || j.state === 'timeout' || (includeCanceled && j.state === 'canceled');
  type Key = (j: SimJob) => Array<string | null>;
  const DIMS: Record<string, Key> = {
    result: (j) => [j.result ?? null],
    exception_type: (j) => [j.exceptionType],
    exit_code: (j) => [j.exitCode === null ? null : String(j.exitCode)],
    signal: (j) => [j.signal],
    user: (j) => [j.user],
    queue: (j) => [j.queue],
    node: (j) => (j.nodes.length ? j.nodes : [null]),
  };
  function expectedBy(set: SimJob[], dim: string, top: number) {
    const n = new Map<string | null, SimJob[]>();
    for (const j of set) for (const v of DIMS[dim]!(j)) n.set(v, [...(n.get(v) ?? []), j]);
    return [...n]
      .map(([value, js]) => ({ value, jobs: js.length, members: js }))
      .sort((a, b) => b.jobs - a.jobs || ((a.value ?? '') < (b.value ?? '') ? -1 : 1))
      .slice(0, top);
  }

  it('counts unsuccessful jobs by result, exception type, exit code, user, queue and node, with recent examples', async () => {
    const out = await ok('failure_analysis', { ...ALL(), top: 50 });
    const ended = jobs.filter((j) => j.state !== 'pending' && j.state !== 'running');
    const failed = ended.filter(failing(false));
    expect(out.ended).toBe(ended.length);
    expect(out.failures).toBe(failed.length);
    expect(out.by.result.map((v: any) => v.value).sort()).toEqual(['FAILED', 'TIMEOUT']);
    // jobs that never ran (no finish) are no "exit 1": they have no exit code, and count by exception type
    const neverRan = failed.filter((j) => j.start === undefined);
    expect(neverRan.length).toBeGreaterThan(0);
    const exitedOne = failed.filter((j) => j.exitCode === 1).length;
    expect(out.by.exit_code.find((v: any) => v.value === '1')?.jobs ?? 0).toBe(exitedOne);
    const typesOf = (js: SimJob[]) => js.reduce((m, j) => m.set(j.exceptionType, (m.get(j.exceptionType) ?? 0) + 1), new Map<string | null, number>());
    for (const [type, n] of typesOf(neverRan)) expect(out.by.exception_type.find((v: any) => v.value === type)?.jobs).toBeGreaterThanOrEqual(n);
    const noExit = out.by.exit_code.find((v: any) => v.value === null);
    expect(noExit?.jobs).toBe(failed.filter((j) => j.exitCode === null).length);
    expect(out.by.signal.find((v: any) => v.value === 'SIGSEGV')?.jobs ?? 0).toBe(failed.filter((j) => j.signal === 'SIGSEGV').length);
    // search_jobs finds the same killed jobs by signal (with or without the SIG prefix)
    const killedBy = jobs.map((j) => j.signal).filter((x): x is string => !!x);
    expect(killedBy.length).toBeGreaterThan(0);
    const sig = killedBy[0]!;
    for (const signal of [sig, sig.slice(3).toLowerCase()]) expect((await ok('search_jobs', { signal, limit: 1 })).total_matching).toBe(killedBy.filter((x) => x === sig).length);
    for (const dim of Object.keys(DIMS)) {
      const expected = expectedBy(failed, dim, 50);
      expect(out.by[dim].map((v: any) => [v.value, v.jobs]), dim).toEqual(expected.map((e) => [e.value, e.jobs]));
      out.by[dim].forEach((v: any, i: number) => {
        // Examples: the most recently ended jobs with this value.
        const recent = [...expected[i]!.members].sort((a, b) => b.end! - a.end!).slice(0, 3);
        expect(v.examples.map((x: any) => `${x.cluster}/${x.job_id}`)).toEqual(recent.map((j) => `${j.cluster}/${j.id}`));
      });
    }
  });

  it('top limits the values per dimension; include_canceled adds canceled jobs; filters narrow', async () => {
    const out = await ok('failure_analysis', { ...ALL(), top: 2, include_canceled: true, cluster: 'alpha' });
    const failed = jobs.filter((j) => j.cluster === 'alpha' && failing(true)(j));
    expect(out.failures).toBe(failed.length);
    expect(out.by.result.map((v: any) => v.value)).toContain('CANCELED');
    for (const dim of Object.keys(DIMS)) {
      expect(out.by[dim].map((v: any) => [v.value, v.jobs]), dim).toEqual(expectedBy(failed, dim, 2).map((e) => [e.value, e.jobs]));
    }
    const none = await ok('failure_analysis', { since: '2020-01-01', until: '2020-01-02' });
    expect(none).toMatchObject({ ended: 0, failures: 0, by: { result: [], exception_type: [], exit_code: [], signal: [], user: [], queue: [], node: [] } });
  });

  it('answers only the asked breakdowns of only the asked endings, without examples when told', async () => {
    const out = await ok('failure_analysis', { ...ALL(), top: 50, state: ['timeout'], by: ['queue', 'user'], examples: false });
    const timeouts = jobs.filter((j) => j.state === 'timeout');
    expect(timeouts.length).toBeGreaterThan(0);
    expect(out.failures).toBe(timeouts.length);
    expect(Object.keys(out.by).sort()).toEqual(['queue', 'user']);
    for (const dim of ['queue', 'user']) {
      expect(out.by[dim].map((v: any) => [v.value, v.jobs]), dim).toEqual(expectedBy(timeouts, dim, 50).map((e) => [e.value, e.jobs]));
      for (const v of out.by[dim]) expect(v.examples).toEqual([]);
    }
    const canceledOnly = await ok('failure_analysis', { ...ALL(), state: ['canceled'], by: ['result'] });
    expect(canceledOnly.failures).toBe(jobs.filter((j) => j.state === 'canceled').length);
    expect(canceledOnly.by.result.map((v: any) => v.value)).toEqual(['CANCELED']);
    // the full answer is several times the size of the one asked for
    const full = JSON.stringify(await ok('failure_analysis', { ...ALL(), top: 5 }));
    const asked = JSON.stringify(await ok('failure_analysis', { ...ALL(), top: 5, by: ['exit_code'], examples: false }));
    expect(asked.length * 4).toBeLessThan(full.length);
    expect(await fails('failure_analysis', { by: ['color'] })).toMatch(/by.*must be one of result, exception_type/s);
    expect(await fails('failure_analysis', { state: ['running'] })).toMatch(/state.*must be one of failed, timeout, canceled/s);
  });

  it('a plain user sees every count but examples of their own jobs only', async () => {
    const admins = await ok('failure_analysis', { ...ALL(), top: 50 });
    const theirs = await ok('failure_analysis', { ...ALL(), top: 50 }, plain);
    expect(theirs.failures).toBe(admins.failures);
    let shown = 0;
    for (const dim of Object.keys(DIMS)) {
      expect(theirs.by[dim].map((v: any) => [v.value, v.jobs])).toEqual(admins.by[dim].map((v: any) => [v.value, v.jobs]));
      for (const v of theirs.by[dim]) {
        for (const x of v.examples) {
          expect(jobs.find((j) => j.cluster === x.cluster && j.id === x.job_id)!.user).toBe(plainUser);
          shown++;
        }
      }
    }
    expect(shown).toBeGreaterThan(0);
  });
});

describe('utilization', () => {
  /** Observed capacity, recomputed: nodes seen in allocations × most cores per node. */
  function observed(cluster: string) {
    const mine = jobs.filter((j) => j.cluster === cluster && j.nnodes > 0);
    const nodes = new Set(mine.flatMap((j) => j.nodes)).size;
    const gpuNodes = new Set(mine.filter((j) => j.ngpus > 0).flatMap((j) => j.nodes)).size;
    const perNode = (k: 'ncores' | 'ngpus') => Math.max(...mine.map((j) => Math.ceil(j[k] / j.nnodes)));
    return { nodes, cores: nodes * perNode('ncores'), gpus: gpuNodes * perNode('ngpus') || null };
  }

  it('ranks users and queues by core-hours per cluster (top_by), from run overlaps computed here', async () => {
    const { since, until } = ALL();
    for (const by of ['user', 'queue'] as const) {
      const out = await ok('utilization', { since, until, top_by: by, top: 3 });
      for (const c of ['alpha', 'beta']) {
        const ran = jobs.filter((j) => j.cluster === c && j.start !== undefined);
        const coreS = new Map<string, number>();
        for (const j of ran) coreS.set(j[by], (coreS.get(j[by]) ?? 0) + overlap(j.start!, j.end ?? NOW, EPOCH - HOUR, NOW) * j.ncores);
        const expected = [...coreS].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3);
        const got = out.top.filter((t: any) => t[0] === c);
        expect(got.map((t: any) => t[1]), `${c} by ${by}`).toEqual(expected.map(([k]) => k));
        got.forEach((t: any, i: number) => near(t[2], expected[i]![1] / 3600, 0.0011, `${c} ${t[1]}`));
        const total = out.clusters.find((x: any) => x.cluster === c).core_hours;
        for (const t of got) near(t[4], t[2] / total, 0.0002, `${c} ${t[1]} share`);
      }
    }
    expect((await ok('utilization', { since, until })).top).toBeUndefined();
    expect(await fails('utilization', { top_by: 'node' })).toContain('top_by: must be user or queue');
  });

  it('core-, node- and GPU-hours per hour bucket from run overlaps (running jobs to now), against capacity', async () => {
    const { since, until } = ALL();
    const out = await ok('utilization', { since, until });
    expect(out.bucket).toBe('hour');
    expect(out.clusters.map((c: any) => c.cluster)).toEqual(['alpha', 'beta']);
    const caps: Record<string, unknown> = { alpha: { ...CAPACITY.alpha, source: 'configured' }, beta: { ...observed('beta'), source: 'observed' } };
    const starts = bucketStarts(EPOCH - HOUR, NOW, HOUR);
    for (const c of out.clusters) {
      expect(c.capacity).toEqual(caps[c.cluster]);
      const ran = jobs.filter((j) => j.cluster === c.cluster && j.start !== undefined);
      if (c.cluster === 'beta') expect(ran.some((j) => j.end === undefined)).toBe(true);
      let totalCore = 0;
      let totalGpu = 0;
      let totalNode = 0;
      let sharedBuckets = 0;
      starts.forEach((b, i) => {
        const sec = (k: 'ncores' | 'nnodes' | 'ngpus') => ran.reduce((s, j) => s + overlap(j.start!, j.end ?? NOW, b, b + HOUR) * j[k], 0);
        const busy = busyNodeSeconds(ran, b, b + HOUR, NOW);
        // a node shared by several jobs is busy once, not once per job
        if (sec('nnodes') > busy + 1) sharedBuckets++;
        const bucket = utBuckets(c)[i];
        expect(bucket.start).toBe(iso(b));
        near(bucket.core_hours, sec('ncores') / 3600, 0.0011, `${c.cluster} core_hours ${iso(b)}`);
        near(bucket.node_hours, busy / 3600, 0.0011, `${c.cluster} node_hours ${iso(b)}`);
        near(bucket.core_util, sec('ncores') / (c.capacity.cores * HOUR), 0.00011, `${c.cluster} core_util ${iso(b)}`);
        near(bucket.node_util, busy / (c.capacity.nodes * HOUR), 0.00011, `${c.cluster} node_util ${iso(b)}`);
        expect(bucket.node_util, `${c.cluster} node_util ${iso(b)}`).toBeLessThanOrEqual(1);
        totalCore += sec('ncores');
        totalGpu += sec('ngpus');
        totalNode += busy;
      });
      expect(sharedBuckets, `${c.cluster}: buckets where jobs shared nodes`).toBeGreaterThan(0);
      near(c.node_hours, totalNode / 3600, 0.0011 * starts.length, `${c.cluster} total node_hours`);
      expect(c.node_util).toBeLessThanOrEqual(1);
      near(c.core_hours, totalCore / 3600, 0.0011, `${c.cluster} total core_hours`);
      near(c.core_util, totalCore / (c.capacity.cores * (NOW - EPOCH + HOUR)), 0.00011, `${c.cluster} total core_util`);
      near(c.gpu_hours, totalGpu / 3600, 0.0011, `${c.cluster} total gpu_hours`);
      expect(c.core_hours).toBeGreaterThan(1);
      expect(c.gpu_hours).toBeGreaterThan(0);
    }
  });

  it('clips runs to a window that starts mid-bucket; user filters narrow usage, not capacity', async () => {
    const since = EPOCH + 90 * 60;
    const until = EPOCH + 3 * HOUR + 15 * 60;
    const user = busiestUser('beta');
    const out = await ok('utilization', { cluster: 'beta', user, since: iso(since), until: iso(until) });
    expect(out.clusters).toHaveLength(1);
    const c = out.clusters[0];
    expect(c.capacity).toEqual({ ...observed('beta'), source: 'observed' });
    const starts = bucketStarts(since, until, HOUR);
    const buckets = utBuckets(c);
    expect(buckets.map((b: any) => b.start)).toEqual(starts.map(iso));
    const ran = jobs.filter((j) => j.cluster === 'beta' && j.user === user && j.start !== undefined);
    starts.forEach((b, i) => {
      const lo = Math.max(b, since);
      const hi = Math.min(b + HOUR, until);
      const sec = ran.reduce((s, j) => s + overlap(j.start!, j.end ?? NOW, lo, hi) * j.ncores, 0);
      near(buckets[i].core_hours, sec / 3600, 0.0011, `core_hours ${iso(b)}`);
      near(buckets[i].core_util, sec / (c.capacity.cores * (hi - lo)), 0.00011, `core_util ${iso(b)} (clipped span)`);
    });
  });

  it('an empty window reports zero usage against capacity', async () => {
    const out = await ok('utilization', { cluster: 'alpha', since: '2020-01-01', until: '2020-01-01T03:00:00Z' });
    expect(out.clusters).toEqual([
      {
        cluster: 'alpha', capacity: { ...CAPACITY.alpha, source: 'configured' },
        core_hours: 0, node_hours: 0, gpu_hours: 0, core_util: 0, node_util: 0,
        buckets: [0, 1, 2].map((h) => [`2020-01-01T0${h}:00:00.000000Z`, 0, 0, 0, 0]),
      },
    ]);
  });
});

describe('user_summary', () => {
  function expectedSummary(user: string, since: number, until: number, cluster?: string) {
    const mine = jobs.filter((j) => j.user === user && (cluster === undefined || j.cluster === cluster));
    const byState: Record<string, number> = {};
    for (const j of mine) if (inWin(j.submit, since, until)) byState[j.state] = (byState[j.state] ?? 0) + 1;
    const ran = mine.filter((j) => j.start !== undefined);
    const sec = (k: 'ncores' | 'nnodes') => ran.reduce((s, j) => s + overlap(j.start!, j.end ?? NOW, since, until) * j[k], 0);
    const failures = mine
      .filter((j) => (j.state === 'failed' || j.state === 'timeout') && inWin(j.end, since, until))
      .sort((a, b) => b.end! - a.end! || a.cluster.localeCompare(b.cluster) || Number(BigInt(b.id) - BigInt(a.id)));
    return { byState, coreHours: sec('ncores') / 3600, nodeHours: sec('nnodes') / 3600, waits: ran.filter((j) => inWin(j.start, since, until)).map(waitOf), failures };
  }

  it("summarizes one user's jobs: states, core-hours, waits, recent failures", async () => {
    const user = plainUser;
    const since = EPOCH + HOUR;
    const until = NOW;
    const out = await ok('user_summary', { user, since: iso(since), until: iso(until), failures: 20 });
    const e = expectedSummary(user, since, until);
    expect(out.user).toBe(user);
    expect(out.by_state).toEqual(e.byState);
    expect(out.submitted).toBe(Object.values(e.byState).reduce((a, b) => a + b, 0));
    near(out.core_hours, e.coreHours, 0.0011, 'core_hours');
    near(out.node_hours, e.nodeHours, 0.0011, 'node_hours');
    expectWaitStats(out.wait, expectedWait(e.waits));
    expect(e.failures.length).toBeGreaterThan(0);
    expect(out.recent_failures.map((f: any) => `${f.cluster}/${f.job_id}`)).toEqual(e.failures.slice(0, 20).map((j) => `${j.cluster}/${j.id}`));
    const f0 = e.failures[0]!;
    expect(out.recent_failures[0]).toEqual({
      cluster: f0.cluster, job_id: f0.id, name: expect.any(String), state: f0.state, exit_code: f0.exitCode,
      exception_type: f0.exceptionType, ended: expect.stringMatching(/Z$/),
    });
    expect(Date.parse(out.recent_failures[0].ended) / 1000).toBeCloseTo(f0.end!, 3);

    const two = await ok('user_summary', { user, since: iso(since), until: iso(until), failures: 2 });
    expect(two.recent_failures).toHaveLength(Math.min(2, e.failures.length));
  });

  it('a cluster filter and the default window (last 7 days)', async () => {
    const user = busiestUser('beta');
    const out = await ok('user_summary', { user, cluster: 'beta' });
    expect(out.since).toBe(iso(NOW - 7 * 86400));
    const e = expectedSummary(user, NOW - 7 * 86400, NOW, 'beta');
    expect(out.by_state).toEqual(e.byState);
    expect(out.by_state.running ?? 0).toBeGreaterThanOrEqual(0);
    near(out.core_hours, e.coreHours, 0.0011, 'core_hours');
    expectWaitStats(out.wait, expectedWait(e.waits));
  });

  it("a plain user gets another user's aggregates but not their failed jobs", async () => {
    const other = busiestUser('beta') === plainUser ? jobs.find((j) => j.user !== plainUser)!.user : busiestUser('beta');
    const theirs = await ok('user_summary', { user: other, ...ALL() }, plain);
    const admins = await ok('user_summary', { user: other, ...ALL() });
    expect(theirs).not.toHaveProperty('recent_failures');
    expect(theirs.by_state).toEqual(admins.by_state);
    expect((await ok('user_summary', { user: plainUser, ...ALL() }, plain)).recent_failures).toEqual(expect.any(Array));
  });

  it('an unknown user is an error that says so; a quiet window is zeros', async () => {
    expect(await fails('user_summary', { user: 'nobody' })).toBe(
      'no jobs of user "nobody" on record; user names are exact (search_jobs shows jobs with their users)',
    );
    const quiet = await ok('user_summary', { user: plainUser, since: '2020-01-01', until: '2020-01-02' });
    expect(quiet).toMatchObject({ submitted: 0, by_state: {}, core_hours: 0, node_hours: 0, recent_failures: [] });
    expect(quiet.wait.jobs).toBe(0);
  });
});

describe('bad arguments', () => {
  it('say what to fix', async () => {
    expect(await fails('throughput', { since: '2026-11-23', until: '2026-11-22' })).toBe(
      'since (2026-11-23T00:00:00.000000Z) is not before until (2026-11-22T00:00:00.000000Z); give a window that is not empty',
    );
    expect(await fails('throughput', { since: '-30d', bucket: 'hour' })).toBe(
      `the window spans ${bucketStarts(NOW - 30 * 86400, NOW, HOUR).length} hour buckets; at most 200: use bucket "day" or a shorter window (since/until)`,
    );
    expect(await fails('utilization', { since: '-30d', bucket: 'hour' })).toContain('at most 200');
    expect(await fails('utilization', { bucket: 'minute' })).toContain('bucket: must be one of hour, day, week');
    expect(await fails('wait_time_stats', { group_by: ['node'] })).toContain('must be a list of cluster, queue, user, size');
    expect(await fails('wait_time_stats', { since: 'yesterday' })).toContain(`since: 'yesterday' is not a time`);
    expect(await fails('failure_analysis', { top: 0 })).toContain('top: must be an integer from 1 to 50');
    expect(await fails('failure_analysis', { cluster: 'Bad Name' })).toContain('cluster: a cluster name is');
    expect(await fails('user_summary', {})).toContain('user: must be a string: the exact user name');
    expect(await fails('user_summary', { user: 'x', queue: 'batch' })).toContain('Unrecognized key: "queue"');
    expect(logged).toEqual([]);
  });

  it('a 30-day window picks day buckets by default', async () => {
    const out = await ok('throughput', { since: '-30d' });
    expect(out.bucket).toBe('day');
    expect(out.clusters[0].buckets).toHaveLength(bucketStarts(NOW - 30 * 86400, NOW, 86400).length);
  });
});
