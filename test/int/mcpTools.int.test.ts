/**
 * The MCP tools against real embedded ClickHouse (chDB): an SDK Client talks to
 * createJobscribeServer over an in-memory transport pair; rows are inserted straight into the
 * `jobs` and `job_events` tables, and every expectation is recomputed here from those rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { Client, InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { createJobscribeServer, type McpDeps } from '../../mcp/server.js';
import type { Identity } from '../../mcp/identity.js';
import { readOnlySettings, settingsClause } from '../../mcp/sql.js';
import { readModelStatements } from '../../schemas/clickhouse/ddl.js';
import { toF58 } from '../../schemas/ids.js';

const DB = 'mcp_tools_test';
const NOW_ISO = '2024-06-01T12:00:00.000000Z';
const NOW_MS = Date.parse(NOW_ISO);

// ---- fixture rows ------------------------------------------------------------------------------

interface Job {
  cluster: string;
  scheduler: 'flux' | 'slurm';
  job_id: string;
  user: string;
  queue: string;
  name: string;
  state: 'pending' | 'running' | 'completed' | 'failed' | 'canceled' | 'timeout';
  sched_state: string;
  result?: string;
  success?: boolean | null;
  exit_code?: number | null;
  held?: boolean;
  dependencies?: string[];
  priority?: string | null;
  nodes?: string[];
  ncores?: number;
  t_submit: string;
  t_eligible?: string | null;
  t_start?: string | null;
  t_end?: string | null;
  t_inactive?: string | null;
  wait_s?: number | null;
  run_s?: number | null;
  last_seq: number;
  last_event: string;
  exception_type?: string;
  is_deleted?: 0 | 1;
}

/** ISO-8601 (UTC) → DateTime64(6) text as JSONEachRow takes it. */
const dt = (iso: string | null | undefined) => (iso ? iso.replace('T', ' ').replace('Z', '') : null);
/** Any ISO time → the microsecond ISO form the tools return. */
const iso6 = (iso: string) => {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso)!;
  return `${m[1]}.${(m[2] ?? '').padEnd(6, '0')}Z`;
};
const micros = (iso: string) => {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso)!;
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0'));
};

function jobRow(j: Job) {
  return {
    cluster: j.cluster,
    scheduler: j.scheduler,
    job_id: j.job_id,
    user: j.user,
    userid: j.scheduler === 'flux' ? 1000 + j.user.length : null,
    queue: j.queue,
    name: j.name,
    ntasks: j.ncores ?? 1,
    ncores: j.ncores ?? 1,
    ngpus: 0,
    nnodes: j.nodes?.length ?? 1,
    nodes: j.nodes ?? [],
    state: j.state,
    sched_state: j.sched_state,
    result: j.result ?? '',
    success: j.success ?? null,
    exit_code: j.exit_code ?? null,
    waitstatus: j.exit_code == null ? null : j.exit_code * 256,
    exception_type: j.exception_type ?? '',
    exception_severity: j.exception_type ? 0 : null,
    exception_note: '',
    urgency: j.held ? 0 : 16,
    priority: j.priority ?? null,
    held: j.held ?? false,
    dependencies: j.dependencies ?? [],
    time_limit_s: 3600,
    t_submit: dt(j.t_submit),
    t_eligible: dt(j.t_eligible),
    t_start: dt(j.t_start),
    t_end: dt(j.t_end),
    t_inactive: dt(j.t_inactive),
    wait_s: j.wait_s ?? null,
    run_s: j.run_s ?? null,
    last_seq: j.last_seq,
    last_event: j.last_event,
    last_event_ts: dt(j.t_inactive ?? j.t_end ?? j.t_start ?? j.t_eligible ?? j.t_submit),
    is_deleted: j.is_deleted ?? 0,
  };
}

const BIG = '9007199254740993'; // 2^53 + 1: not representable as a JS number
const FAILED_ID = '1234567890123';

const jobA: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: BIG, user: 'alice', queue: 'pbatch', name: 'lammps-big',
  state: 'completed', sched_state: 'INACTIVE', result: 'COMPLETED', success: true, exit_code: 0, priority: '4294967295',
  nodes: ['tioga1', 'tioga2'], ncores: 96,
  t_submit: '2024-06-01T08:00:00.123456Z', t_eligible: '2024-06-01T08:00:00.5Z', t_start: '2024-06-01T08:00:10.250001Z',
  t_end: '2024-06-01T09:00:10.250001Z', t_inactive: '2024-06-01T09:00:11Z', wait_s: 10.126545, run_s: 3600,
  last_seq: 9, last_event: 'clean',
};
const jobB: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: FAILED_ID, user: 'bob', queue: 'pdebug', name: 'train-ResNet50',
  state: 'failed', sched_state: 'INACTIVE', result: 'FAILED', success: false, exit_code: 1, priority: '16',
  t_submit: '2024-06-01T09:30:00Z', t_eligible: '2024-06-01T09:30:01Z', t_start: '2024-06-01T09:31:00Z',
  t_end: '2024-06-01T09:41:00Z', t_inactive: '2024-06-01T09:41:02Z', wait_s: 60, run_s: 600, last_seq: 9, last_event: 'clean',
};
const jobC: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '555', user: 'bob', queue: 'pbatch', name: 'held-job',
  state: 'pending', sched_state: 'PRIORITY', held: true, t_submit: '2024-06-01T07:00:00Z', last_seq: 3, last_event: 'urgency',
};
const jobD: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '556', user: 'carol', queue: 'pdebug', name: 'post-process',
  state: 'pending', sched_state: 'DEPEND', dependencies: ['afterok:555'], t_submit: '2024-06-01T10:00:00Z', last_seq: 2, last_event: 'validate',
};
const jobE: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '557', user: 'alice', queue: 'pbatch', name: 'big-sweep',
  state: 'pending', sched_state: 'SCHED', priority: '16', t_submit: '2024-05-31T12:00:00Z', t_eligible: '2024-05-31T12:00:01Z',
  last_seq: 4, last_event: 'priority',
};
const jobFpending: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '558', user: 'bob', queue: 'pdebug', name: 'interactive',
  state: 'pending', sched_state: 'SCHED', t_submit: '2024-06-01T11:00:00Z', t_eligible: '2024-06-01T11:00:01Z', last_seq: 3, last_event: 'priority',
};
const jobF: Job = {
  ...jobFpending, state: 'running', sched_state: 'RUN', t_start: '2024-06-01T11:05:00Z', wait_s: 300, last_seq: 5, last_event: 'start',
};
const jobGlive: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '559', user: 'alice', queue: 'pbatch', name: 'invalid',
  state: 'pending', sched_state: 'NEW', t_submit: '2024-06-01T11:59:00Z', last_seq: 0, last_event: 'submit',
};
const jobGdeleted: Job = { ...jobGlive, last_seq: 1, last_event: 'invalidate', is_deleted: 1 };
const jobHtioga: Job = {
  cluster: 'tioga', scheduler: 'flux', job_id: '4242', user: 'dave', queue: 'pbatch', name: 'same-id',
  state: 'completed', sched_state: 'INACTIVE', result: 'COMPLETED', exit_code: 0, success: true,
  t_submit: '2024-06-01T05:00:00Z', t_start: '2024-06-01T05:00:01Z', t_end: '2024-06-01T05:10:01Z', t_inactive: '2024-06-01T05:10:02Z',
  wait_s: 1, run_s: 600, last_seq: 9, last_event: 'clean',
};
const quartz: Job[] = [
  {
    cluster: 'quartz', scheduler: 'slurm', job_id: '4242', user: 'dave', queue: 'pbatch', name: 'same-id',
    state: 'completed', sched_state: 'COMPLETED', result: 'COMPLETED', exit_code: 0, success: true,
    t_submit: '2024-06-01T06:00:00Z', t_start: '2024-06-01T06:00:05Z', t_end: '2024-06-01T07:00:05Z', wait_s: 5, run_s: 3600,
    last_seq: 3, last_event: 'end',
  },
  {
    cluster: 'quartz', scheduler: 'slurm', job_id: '4243', user: 'dave', queue: 'pbatch', name: 'cfd',
    state: 'running', sched_state: 'RUNNING', t_submit: '2024-06-01T11:30:00Z', t_start: '2024-06-01T11:45:00Z', wait_s: 900,
    last_seq: 2, last_event: 'start',
  },
  {
    cluster: 'quartz', scheduler: 'slurm', job_id: '4244', user: 'erin', queue: 'pdebug', name: 'quick',
    state: 'pending', sched_state: 'PENDING', t_submit: '2024-06-01T11:50:00Z', last_seq: 1, last_event: 'submit',
  },
  {
    cluster: 'quartz', scheduler: 'slurm', job_id: '4245', user: 'erin', queue: 'pbatch', name: 'long-one',
    state: 'timeout', sched_state: 'TIMEOUT', result: 'TIMEOUT', success: false,
    t_submit: '2024-06-01T01:00:00Z', t_start: '2024-06-01T01:10:00Z', t_end: '2024-06-01T03:10:00Z', wait_s: 600, run_s: 7200,
    last_seq: 3, last_event: 'end',
  },
  {
    cluster: 'quartz', scheduler: 'slurm', job_id: '4246', user: 'frank', queue: 'pbatch', name: 'never-ran',
    state: 'canceled', sched_state: 'CANCELLED', result: 'CANCELED', success: false,
    t_submit: '2024-06-01T02:00:00Z', t_end: '2024-06-01T02:30:00Z', t_inactive: '2024-06-01T02:30:00Z', last_seq: 2, last_event: 'cancel',
  },
];

/** 40 completed jobs of frank: submit times, waits and run times come in ties (keyset tie-breaks). */
const frankBulk: Job[] = Array.from({ length: 40 }, (_, i) => {
  const submit = Date.UTC(2024, 4, 30) + Math.floor(i / 2) * 60_000;
  const wait = (i * 7) % 13;
  const run = ((i * 11) % 17) * 60;
  return {
    cluster: 'quartz', scheduler: 'slurm', job_id: String(5000 + i), user: 'frank', queue: 'pbatch', name: `sweep-${i}`,
    state: 'completed', sched_state: 'COMPLETED', result: 'COMPLETED', exit_code: 0, success: true,
    t_submit: new Date(submit).toISOString(), t_start: new Date(submit + wait * 1000).toISOString(),
    t_end: new Date(submit + wait * 1000 + run * 1000).toISOString(), wait_s: wait, run_s: run, last_seq: 3, last_event: 'end',
  } satisfies Job;
});

/** 15 completed jobs of grace, for the insert-between-pages test. */
const graceJob = (i: number, minute: number): Job => ({
  cluster: 'quartz', scheduler: 'slurm', job_id: String(7000 + i), user: 'grace', queue: 'pbatch', name: `g-${i}`,
  state: 'completed', sched_state: 'COMPLETED', result: 'COMPLETED', exit_code: 0, success: true,
  t_submit: new Date(Date.UTC(2024, 4, 29) + minute * 60_000).toISOString(), wait_s: 1, run_s: 1, last_seq: 3, last_event: 'end',
});
const graceBulk = Array.from({ length: 15 }, (_, i) => graceJob(i, i * 10));

/** Rows as inserted, older versions first; `current` is what FINAL must show. */
const insertedJobs: Job[] = [jobFpending, jobGlive, jobA, jobB, jobC, jobD, jobE, jobF, jobGdeleted, jobHtioga, ...quartz, ...frankBulk, ...graceBulk];
const current = (): Job[] => {
  const latest = new Map<string, Job>();
  for (const j of insertedJobs) {
    const k = `${j.cluster}/${j.job_id}`;
    const prev = latest.get(k);
    if (!prev || j.last_seq >= prev.last_seq) latest.set(k, j);
  }
  return [...latest.values()].filter((j) => !j.is_deleted);
};

interface Ev {
  seq: number;
  name: string;
  ts: string;
  context: Record<string, unknown>;
  offset: number;
}
const eventsA: Ev[] = [
  { seq: 0, name: 'submit', ts: '2024-06-01T08:00:00.123456Z', context: { userid: 1005, urgency: 16, flags: 0 }, offset: 10 },
  { seq: 1, name: 'validate', ts: '2024-06-01T08:00:00.2Z', context: {}, offset: 11 },
  { seq: 2, name: 'depend', ts: '2024-06-01T08:00:00.3Z', context: {}, offset: 12 },
  { seq: 3, name: 'priority', ts: '2024-06-01T08:00:00.5Z', context: { priority: 4294967295 }, offset: 13 },
  { seq: 4, name: 'alloc', ts: '2024-06-01T08:00:10.25Z', context: {}, offset: 14 },
  { seq: 5, name: 'start', ts: '2024-06-01T08:00:10.250001Z', context: {}, offset: 15 },
  { seq: 6, name: 'finish', ts: '2024-06-01T09:00:10.250001Z', context: { status: 0 }, offset: 16 },
  { seq: 7, name: 'release', ts: '2024-06-01T09:00:10.9Z', context: { ranks: 'all', final: true }, offset: 17 },
  { seq: 8, name: 'free', ts: '2024-06-01T09:00:10.95Z', context: {}, offset: 18 },
  { seq: 9, name: 'clean', ts: '2024-06-01T09:00:11Z', context: {}, offset: 19 },
];
/** An earlier, superseded copy of seq 6 (a republish at a lower log offset): FINAL must drop it. */
const staleFinish: Ev = { seq: 6, name: 'finish', ts: '2024-06-01T09:00:10.250001Z', context: { status: 999 }, offset: 5 };

function eventRow(j: Job, e: Ev) {
  return {
    cluster: j.cluster, scheduler: j.scheduler, job_id: j.job_id, seq: e.seq, name: e.name, ts: dt(e.ts), ts_source: 'scheduler',
    context: JSON.stringify(e.context), raw: '{}', user: j.user, scribe_id: 'test', published_at: dt(e.ts)!.slice(0, 23),
    log_topic: `jobscribe.${j.cluster}.events`, log_partition: 0, log_offset: e.offset,
  };
}

// ---- harness -----------------------------------------------------------------------------------

let dataDir: string;
let ch: ClickHouseClient;
let client: Client;
const logged: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-mcp-tools-'));
  ch = createClient({ connection: createChdbConnection({ path: dataDir }) } as Parameters<typeof createClient>[0]);
  await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${DB}` });
  for (const statement of readModelStatements(DB, '')) await ch.command({ query: statement });
  for (const j of insertedJobs) await ch.insert({ table: `${DB}.jobs`, values: [jobRow(j)], format: 'JSONEachRow' });
  await ch.insert({ table: `${DB}.job_events`, values: [eventRow(jobA, staleFinish)], format: 'JSONEachRow' });
  await ch.insert({ table: `${DB}.job_events`, values: eventsA.map((e) => eventRow(jobA, e)), format: 'JSONEachRow' });

  const server = createJobscribeServer({ clickhouse: ch, database: DB, now: () => NOW_MS, logError: (m) => logged.push(m) });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  client = new Client({ name: 'mcp-tools-test', version: '0' });
  await client.connect(clientSide);
});

afterAll(async () => {
  await client?.close();
  await ch?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return client.callTool({ name, arguments: args });
}
/** Calls a tool that must succeed; returns its structured content. */
async function ok<T = any>(name: string, args: Record<string, unknown>): Promise<T> {
  const r = await call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
  const text = r.content.find((c) => c.type === 'text');
  expect(text && JSON.parse(text.text)).toEqual(r.structuredContent); // the text is the same data, compact
  return r.structuredContent as T;
}
/** Calls a tool that must fail; returns its error text. */
async function fails(name: string, args: Record<string, unknown>): Promise<string> {
  const r = await call(name, args);
  expect(r.isError, `expected ${name} ${JSON.stringify(args)} to fail`).toBe(true);
  const text = r.content.find((c) => c.type === 'text');
  return text?.type === 'text' ? text.text : '';
}

// ---- expectations derived from the fixture --------------------------------------------------------

const byKeyDesc = (key: (j: Job) => number) => (a: Job, b: Job) =>
  key(b) - key(a) || b.cluster.localeCompare(a.cluster) || Number(BigInt(b.job_id) - BigInt(a.job_id));
const waitKey = (j: Job) => (j.wait_s != null ? Math.round(j.wait_s * 1e6) : j.state === 'pending' ? Math.max(0, NOW_MS * 1000 - micros(j.t_submit)) : -1);
const runKey = (j: Job) =>
  j.run_s != null ? Math.round(j.run_s * 1e6) : j.state === 'running' && j.t_start ? NOW_MS * 1000 - micros(j.t_start) : -1;

async function allPages(args: Record<string, unknown>): Promise<{ ids: string[]; pages: number; total?: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  let total: number | undefined;
  do {
    const page: any = await ok('search_jobs', { ...args, ...(cursor && { cursor }) });
    if (pages === 0) total = page.total_matching;
    else expect(page.total_matching).toBeUndefined();
    ids.push(...page.jobs.map((j: any) => `${j.cluster}/${j.job_id}`));
    cursor = page.next_cursor;
    pages++;
    expect(pages).toBeLessThan(50);
  } while (cursor);
  return { ids, pages, total };
}
const key = (j: Job) => `${j.cluster}/${j.job_id}`;

// ---- tests -------------------------------------------------------------------------------------------

describe('tools/list', () => {
  it('lists the four job tools as read-only, each with input and output schemas', async () => {
    const all = (await client.listTools()).tools;
    const tools = all.filter((t) => ['get_job', 'job_timeline', 'queue_summary', 'search_jobs'].includes(t.name));
    expect(tools).toHaveLength(4);
    for (const t of tools) {
      expect(t.description?.length).toBeGreaterThan(40);
      expect(t.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: false });
      expect(t.outputSchema?.type).toBe('object');
      expect(t.inputSchema.additionalProperties).toBe(false);
    }
  });
});

describe('get_job', () => {
  it('returns every field of the jobs row; a Flux id above 2^53 round-trips exactly', async () => {
    const { job } = await ok('get_job', { job_id: BIG });
    expect(job).toEqual({
      cluster: 'tioga', scheduler: 'flux', job_id: BIG, job_id_f58: toF58(BIG), user: 'alice', userid: 1005, queue: 'pbatch',
      name: 'lammps-big', ntasks: 96, ncores: 96, ngpus: 0, nnodes: 2, nodes: ['tioga1', 'tioga2'], state: 'completed',
      sched_state: 'INACTIVE', result: 'COMPLETED', success: true, exit_code: 0, signal: null, signal_name: '', oom: false,
      waitstatus: 0, exception_type: '', exception_severity: null, exception_note: '', urgency: 16, nice: null,
      priority: 4294967295, held: false, dependencies: [],
      time_limit_s: 3600, t_submit: '2024-06-01T08:00:00.123456Z', t_eligible: '2024-06-01T08:00:00.500000Z',
      t_start: '2024-06-01T08:00:10.250001Z', t_end: '2024-06-01T09:00:10.250001Z', t_inactive: '2024-06-01T09:00:11.000000Z',
      wait_s: 10.126545, run_s: 3600, last_seq: 9, last_event: 'clean', last_event_ts: '2024-06-01T09:00:11.000000Z',
    });
  });

  it('accepts f58 ids (ƒ and ASCII f) and 0x ids', async () => {
    for (const id of [toF58(FAILED_ID), toF58(FAILED_ID).replace('ƒ', 'f'), `0x${BigInt(FAILED_ID).toString(16)}`]) {
      const { job } = await ok('get_job', { job_id: id });
      expect(job).toMatchObject({ job_id: FAILED_ID, cluster: 'tioga', state: 'failed', exit_code: 1, name: 'train-ResNet50' });
    }
    const { job } = await ok('get_job', { cluster: 'tioga', job_id: toF58(BIG) });
    expect(job.job_id).toBe(BIG);
  });

  it('shows the newest version of a job (FINAL) and hides deleted jobs', async () => {
    const { job } = await ok('get_job', { job_id: '558' });
    expect(job).toMatchObject({ state: 'running', last_seq: 5, t_start: '2024-06-01T11:05:00.000000Z', wait_s: 300 });
    expect(await fails('get_job', { job_id: '559' })).toBe('no job 559 on any cluster; try search_jobs');
  });

  it('asks for a cluster when the id exists on several, and finds each with it', async () => {
    expect(await fails('get_job', { job_id: '4242' })).toBe('job 4242 exists on several clusters (quartz, tioga); pass cluster to choose one');
    expect((await ok('get_job', { cluster: 'quartz', job_id: '4242' })).job).toMatchObject({ scheduler: 'slurm', run_s: 3600 });
    const tioga = (await ok('get_job', { cluster: 'tioga', job_id: '4242' })).job;
    expect(tioga).toMatchObject({ scheduler: 'flux', run_s: 600, job_id_f58: toF58('4242') });
    const slurm = (await ok('get_job', { cluster: 'quartz', job_id: '4243' })).job;
    expect(slurm).not.toHaveProperty('job_id_f58');
    // Slurm has no urgency: null, even from a row projected when it said 0 or 16 (Flux's 0 is held)
    expect(slurm.urgency).toBeNull();
    expect(tioga.urgency).toBe(16);
  });

  it('missing jobs are tool errors pointing to search_jobs', async () => {
    expect(await fails('get_job', { cluster: 'tioga', job_id: '999' })).toBe('no job 999 on tioga; try search_jobs');
    const f58 = toF58('999');
    expect(await fails('get_job', { job_id: f58 })).toBe(`no job ${f58} (999) on any cluster; try search_jobs`);
    expect(await fails('get_job', { cluster: 'quartz', job_id: BIG })).toBe(
      `no job ${BIG} on quartz; try search_jobs (a job ${BIG} exists on tioga)`,
    );
    expect(await fails('get_job', { cluster: 'nosuch', job_id: '1' })).toBe('no job 1 on nosuch; try search_jobs');
  });

  it('bad arguments say what to fix', async () => {
    expect(await fails('get_job', { job_id: 'xyz' })).toContain(`job_id: 'xyz' is not a decimal or f58 Flux job id`);
    expect(await fails('get_job', { job_id: 1234 })).toContain('job_id: must be a string such as "1234567"');
    expect(await fails('get_job', {})).toContain('job_id: required');
    expect(await fails('get_job', { job_id: '18446744073709551616' })).toContain('is not a decimal or f58 Flux job id');
    expect(await fails('get_job', { job_id: '1', cluster: 'Bad Name' })).toContain('cluster: a cluster name is');
    expect(await fails('get_job', { job_id: '1', jobid: '2' })).toContain('Unrecognized key: "jobid"');
  });
});

describe('search_jobs', () => {
  it('filters by node, held, exit code, queue wait and the fraction of the time limit used', async () => {
    const ids = async (args: Record<string, unknown>) =>
      (await ok<{ jobs: any[]; total_matching: number }>('search_jobs', { limit: 200, ...args })).jobs.map((j: any) => `${j.cluster}/${j.job_id}`).sort();
    const want = (f: (j: Job) => boolean) => current().filter(f).map(key).sort();
    const nowS = NOW_MS / 1000;
    const secs = (iso: string) => Date.parse(iso) / 1000;
    // the queue wait (a pending job's so far) and run time (a running job's so far), from the rows as inserted
    const wait = (j: Job) => (j.wait_s ?? (j.state === 'pending' ? nowS - secs(j.t_submit) : null));
    const run = (j: Job) => (j.run_s ?? (j.state === 'running' && j.t_start ? nowS - secs(j.t_start) : null));
    const limitUsed = (j: Job) => (run(j) === null ? null : run(j)! / 3600); // every fixture job has a 3600 s limit

    expect(await ids({ node: 'tioga1' })).toEqual(want((j) => (j.nodes ?? []).includes('tioga1')));
    expect(await ids({ node: 'tioga1' })).not.toEqual([]);
    expect(await ids({ held: true })).toEqual(want((j) => j.held === true));
    expect(await ids({ held: true })).toContain('tioga/555');
    expect(await ids({ exit_code: 1 })).toEqual(want((j) => j.exit_code === 1));
    expect(await ids({ exit_code: 1 })).not.toEqual([]);
    expect(await ids({ min_wait_s: 600 })).toEqual(want((j) => (wait(j) ?? -1) >= 600));
    expect(await ids({ max_wait_s: 5, cluster: 'quartz' })).toEqual(want((j) => j.cluster === 'quartz' && wait(j) !== null && wait(j)! <= 5));
    const high = await ids({ min_limit_used: 0.9 });
    expect(high).toEqual(want((j) => (limitUsed(j) ?? -1) >= 0.9));
    expect(high).toContain('quartz/4245');
    const low = await ids({ max_limit_used: 0.1 });
    expect(low).toEqual(want((j) => limitUsed(j) !== null && limitUsed(j)! <= 0.1));
    expect(low.length).toBeGreaterThan(0);
    expect(await fails('search_jobs', { min_wait_s: 10, max_wait_s: 5 })).toContain('min_wait_s (10) is above max_wait_s (5)');
    expect(await fails('search_jobs', { held: 'yes' })).toContain('held: must be true or false');
  });

  it('sorts newest first by default and reports the total on the first page', async () => {
    const page: any = await ok('search_jobs', { cluster: 'tioga', limit: 3 });
    const expected = current().filter((j) => j.cluster === 'tioga').sort(byKeyDesc((j) => micros(j.t_submit)));
    expect(page.total_matching).toBe(expected.length);
    expect(page.jobs.map((j: any) => j.job_id)).toEqual(expected.slice(0, 3).map((j) => j.job_id));
    expect(page.next_cursor).toEqual(expect.any(String));
    expect(page.as_of).toBe(NOW_ISO);
  });

  it('returns compact summaries with exact ids and in-progress waits', async () => {
    const { jobs }: any = await ok('search_jobs', { user: 'alice' });
    const big = jobs.find((j: any) => j.job_id === BIG);
    expect(big).toEqual({
      cluster: 'tioga', scheduler: 'flux', job_id: BIG, job_id_f58: toF58(BIG), user: 'alice', queue: 'pbatch', name: 'lammps-big',
      state: 'completed', held: false, exit_code: 0, signal_name: '', ncores: 96, ngpus: 0, nnodes: 2, t_submit: '2024-06-01T08:00:00.123456Z',
      t_start: '2024-06-01T08:00:10.250001Z', t_end: '2024-06-01T09:00:10.250001Z', wait_s: 10.126545, run_s: 3600,
    });
    const pending = jobs.find((j: any) => j.job_id === '557');
    expect(pending).toMatchObject({ state: 'pending', wait_s: 86400, run_s: null, t_start: null });
    expect(jobs.map((j: any) => j.job_id)).not.toContain('559'); // deleted
  });

  it('filters by state list, name substring, queue and submit range (ISO and relative)', async () => {
    const ids = async (args: Record<string, unknown>) =>
      (await ok<{ jobs: any[] }>('search_jobs', args)).jobs.map((j: any) => `${j.cluster}/${j.job_id}`).sort();
    expect(await ids({ state: ['failed', 'timeout'] })).toEqual([`quartz/4245`, `tioga/${FAILED_ID}`]);
    expect(await ids({ state: 'running' })).toEqual(['quartz/4243', 'tioga/558']);
    expect(await ids({ name: 'resnet' })).toEqual([`tioga/${FAILED_ID}`]);
    expect(await ids({ queue: 'pdebug', cluster: 'tioga' })).toEqual([`tioga/${FAILED_ID}`, 'tioga/556', 'tioga/558']);
    expect(await ids({ submitted_after: '-1h' })).toEqual(['quartz/4243', 'quartz/4244', 'tioga/558']);
    expect(await ids({ submitted_after: '2024-06-01T11:00:00.000001Z' })).toEqual(['quartz/4243', 'quartz/4244']);
    expect(await ids({ submitted_after: '2024-06-01T03:00:00+02:00', submitted_before: '2024-06-01T05:00:00.000001' })).toEqual([
      'quartz/4245', 'quartz/4246', 'tioga/4242',
    ]);
    expect(await ids({ user: 'nobody' })).toEqual([]);
  });

  for (const [sort, cmp] of [
    ['submit_desc', byKeyDesc((j) => micros(j.t_submit))],
    ['submit_asc', (a: Job, b: Job) => -byKeyDesc((j) => micros(j.t_submit))(a, b)],
    ['wait_desc', byKeyDesc(waitKey)],
    ['runtime_desc', byKeyDesc(runKey)],
  ] as const) {
    it(`paginates ${sort} across pages with ties, without gaps or repeats`, async () => {
      const expected = current().filter((j) => j.user === 'frank').sort(cmp).map(key);
      const { ids, pages, total } = await allPages({ user: 'frank', sort, limit: 7 });
      expect(total).toBe(41);
      expect(pages).toBe(6);
      expect(ids).toEqual(expected);
    });
  }

  it('orders pending waits and running times measured to now', async () => {
    const wait: any = await ok('search_jobs', { state: 'pending', sort: 'wait_desc' });
    expect(wait.jobs.map((j: any) => [j.job_id, j.wait_s])).toEqual([['557', 86400], ['555', 18000], ['556', 7200], ['4244', 600]]);
    const run: any = await ok('search_jobs', { state: 'running', sort: 'runtime_desc' });
    expect(run.jobs.map((j: any) => [j.job_id, j.run_s])).toEqual([['558', 3300], ['4243', 900]]);
  });

  it('pages stay stable when jobs are inserted between them', async () => {
    const expected = graceBulk.slice().sort(byKeyDesc((j) => micros(j.t_submit))).map(key);
    const first: any = await ok('search_jobs', { user: 'grace', limit: 4 });
    const seen = first.jobs.map((j: any) => `${j.cluster}/${j.job_id}`);
    // Newer jobs (which sort before the cursor) and one older job land between pages.
    const late = [graceJob(100, 10_000), graceJob(101, 10_001), graceJob(102, -5)];
    for (const j of late) await ch.insert({ table: `${DB}.jobs`, values: [jobRow(j)], format: 'JSONEachRow' });
    let cursor: string | null = first.next_cursor;
    while (cursor) {
      const page: any = await ok('search_jobs', { user: 'grace', limit: 4, cursor });
      seen.push(...page.jobs.map((j: any) => `${j.cluster}/${j.job_id}`));
      cursor = page.next_cursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id: string) => expected.includes(id))).toEqual(expected);
    expect(seen).toContain('quartz/7102'); // older than every cursor: still reached
    expect(seen).not.toContain('quartz/7100'); // newer than the first page: not mixed into later pages
  });

  it('rejects cursors that are forged or belong to another search', async () => {
    const first: any = await ok('search_jobs', { user: 'frank', limit: 5 });
    expect(await fails('search_jobs', { user: 'frank', cursor: 'not-a-cursor' })).toContain('cursor is not a next_cursor that search_jobs returned');
    expect(await fails('search_jobs', { user: 'erin', cursor: first.next_cursor })).toContain('cursor belongs to a search with other filters or sort');
    expect(await fails('search_jobs', { user: 'frank', sort: 'wait_desc', cursor: first.next_cursor })).toContain('other filters or sort');
    const second: any = await ok('search_jobs', { user: 'frank', limit: 10, cursor: first.next_cursor }); // limit may change
    expect(second.jobs).toHaveLength(10);
  });

  it('bad arguments say what to fix', async () => {
    expect(await fails('search_jobs', { limit: 500 })).toContain('limit: must be an integer from 1 to 200');
    expect(await fails('search_jobs', { limit: 0 })).toContain('limit: must be an integer from 1 to 200');
    expect(await fails('search_jobs', { state: 'done' })).toContain('state: must be one of pending, running, completed, failed, canceled, timeout');
    expect(await fails('search_jobs', { sort: 'newest' })).toContain('sort: must be one of submit_desc, submit_asc, wait_desc, runtime_desc');
    expect(await fails('search_jobs', { submitted_after: 'yesterday' })).toContain(`submitted_after: 'yesterday' is not a time`);
    expect(await fails('search_jobs', { submitted_after: '2024-02-30' })).toContain('is not a time');
    expect(await fails('search_jobs', { submitted_after: '-1h', submitted_before: '-2h' })).toBe(
      'submitted_after (2024-06-01T11:00:00.000000Z) is not before submitted_before (2024-06-01T10:00:00.000000Z); nothing can match, widen the range',
    );
    expect(await fails('search_jobs', { users: 'alice' })).toContain('Unrecognized key: "users"');
  });
});

describe('job_timeline', () => {
  it("lists a job's events in seq order with gaps, phase durations and a summary", async () => {
    const t: any = await ok('job_timeline', { job_id: toF58(BIG) });
    expect(t).toMatchObject({ cluster: 'tioga', job_id: BIG, job_id_f58: toF58(BIG), state: 'completed', truncated: false, as_of: NOW_ISO });
    expect(t.events.map((e: any) => [e.seq, e.name])).toEqual(eventsA.map((e) => [e.seq, e.name]));
    expect(t.events[0]).toEqual({
      seq: 0, name: 'submit', time: '2024-06-01T08:00:00.123456Z', time_source: 'scheduler', since_prev_s: null,
      context: { userid: 1005, urgency: 16, flags: 0 },
    });
    eventsA.forEach((e, i) => {
      expect(t.events[i].time).toBe(iso6(e.ts));
      if (i > 0) expect(t.events[i].since_prev_s).toBeCloseTo((micros(e.ts) - micros(eventsA[i - 1]!.ts)) / 1e6, 6);
    });
    expect(t.events[6].context).toEqual({ status: 0 }); // the republished copy at the higher offset
    expect(t.durations.pending_s).toBeCloseTo(10.126545, 6);
    expect(t.durations.eligible_wait_s).toBeCloseTo(9.750001, 6);
    expect(t.durations.run_s).toBeCloseTo(3600, 6);
    expect(t.durations.cleanup_s).toBeCloseTo(0.749999, 6);
    expect(t.durations.total_s).toBeCloseTo(3610.876544, 6);
    expect(t.summary).toBe(
      `job ${toF58(BIG)} (${BIG}) on tioga (alice, pbatch): completed, exit 0; waited 10.1s (eligible 9.8s), ran 1h 00m 00s, cleanup 0.7s; 10 events`,
    );
  });

  it('measures phases still in progress to now', async () => {
    const t: any = await ok('job_timeline', { cluster: 'tioga', job_id: '558' });
    expect(t.events).toEqual([]);
    expect(t.durations).toEqual({ pending_s: 300, eligible_wait_s: 299, run_s: 3300, cleanup_s: null, total_s: 3600 });
    expect(t.summary).toContain('running; waited 5m 00s (eligible 4m 59s), running for 55m 00s; 0 events');
    const held: any = await ok('job_timeline', { job_id: '555' });
    expect(held.durations).toEqual({ pending_s: 18000, eligible_wait_s: null, run_s: null, cleanup_s: null, total_s: 18000 });
    expect(held.summary).toContain('pending, held; pending for 5h 00m 00s');
    const canceled: any = await ok('job_timeline', { job_id: '4246' });
    expect(canceled.durations).toEqual({ pending_s: 1800, eligible_wait_s: null, run_s: null, cleanup_s: 0, total_s: 1800 });
  });

  it('shares get_job errors', async () => {
    expect(await fails('job_timeline', { job_id: '4242' })).toContain('exists on several clusters (quartz, tioga)');
    expect(await fails('job_timeline', { cluster: 'tioga', job_id: '999' })).toBe('no job 999 on tioga; try search_jobs');
    expect(await fails('job_timeline', { job_id: 'ƒ0OIl' })).toContain('is not a decimal or f58 Flux job id');
  });
});

describe('queue_summary', () => {
  const active = () => current().filter((j) => j.state === 'pending' || j.state === 'running');
  function expectedCounts(jobs: Job[], group: (j: Job) => Record<string, string>) {
    const groups = new Map<string, Job[]>();
    for (const j of jobs) {
      const k = JSON.stringify(group(j));
      groups.set(k, [...(groups.get(k) ?? []), j]);
    }
    return [...groups.entries()].map(([k, js]) => {
      const pending = js.filter((j) => j.state === 'pending');
      const held = pending.filter((j) => j.held).length;
      const dependency = pending.filter((j) => !j.held && (j.dependencies?.length || j.sched_state === 'DEPEND')).length;
      const oldest = pending.slice().sort((a, b) => micros(a.t_submit) - micros(b.t_submit) || Number(BigInt(a.job_id) - BigInt(b.job_id)))[0];
      return {
        ...JSON.parse(k),
        pending: pending.length,
        held,
        running: js.filter((j) => j.state === 'running').length,
        pending_reasons: { held, dependency, resources_or_priority: pending.length - held - dependency },
        oldest_pending: oldest
          ? {
              job_id: oldest.job_id,
              ...(oldest.scheduler === 'flux' && { job_id_f58: toF58(oldest.job_id) }),
              user: oldest.user,
              submitted: iso6(oldest.t_submit),
              waiting_s: (NOW_MS * 1000 - micros(oldest.t_submit)) / 1e6,
            }
          : null,
      };
    });
  }
  const groupOrder = (a: any, b: any) =>
    b.pending - a.pending || b.running - a.running || a.cluster.localeCompare(b.cluster) ||
    String(a.queue ?? a.user ?? '').localeCompare(String(b.queue ?? b.user ?? ''));

  for (const groupBy of ['queue', 'user', 'cluster'] as const) {
    it(`counts pending, held and running per ${groupBy}, with the oldest pending job and reasons`, async () => {
      const s: any = await ok('queue_summary', groupBy === 'queue' ? {} : { group_by: groupBy });
      const groupKey = (j: Job): Record<string, string> => ({
        cluster: j.cluster,
        ...(groupBy === 'queue' && { queue: j.queue }),
        ...(groupBy === 'user' && { user: j.user }),
      });
      expect(s.group_by).toBe(groupBy);
      expect(s.as_of).toBe(NOW_ISO);
      expect(s.truncated).toBe(false);
      expect(s.groups).toEqual(expectedCounts(active(), groupKey).sort(groupOrder));
      expect(s.clusters).toEqual(expectedCounts(active(), (j) => ({ cluster: j.cluster })).sort((a, b) => a.cluster.localeCompare(b.cluster)));
    });
  }

  it('spot-checks the numbers by hand', async () => {
    const s: any = await ok('queue_summary', { cluster: 'tioga', group_by: 'cluster' });
    expect(s.groups).toEqual(s.clusters);
    expect(s.clusters).toEqual([
      {
        cluster: 'tioga', pending: 3, held: 1, running: 1,
        pending_reasons: { held: 1, dependency: 1, resources_or_priority: 1 },
        oldest_pending: { job_id: '557', job_id_f58: toF58('557'), user: 'alice', submitted: '2024-05-31T12:00:00.000000Z', waiting_s: 86400 },
      },
    ]);
    expect(await fails('queue_summary', { group_by: 'partition' })).toContain('group_by: must be one of cluster, queue, user');
  });
});

/** A second client on a server with other deps (same chDB), optionally for another identity. */
async function withServer<T>(deps: Partial<McpDeps>, body: (c: Client) => Promise<T>, identity?: Identity): Promise<T> {
  const server = createJobscribeServer({ clickhouse: ch, database: DB, now: () => NOW_MS, logError: (m) => logged.push(m), ...deps }, identity);
  const [c, s] = InMemoryTransport.createLinkedPair();
  await server.connect(s);
  const other = new Client({ name: 'mcp-tools-test-2', version: '0' });
  await other.connect(c);
  try {
    return await body(other);
  } finally {
    await other.close();
  }
}

describe('limits and settings', () => {
  it('caps rows at limits.maxRows and says so', async () => {
    await withServer({ limits: { maxRows: 2 } }, async (c) => {
      const q: any = (await c.callTool({ name: 'queue_summary', arguments: {} })).structuredContent;
      expect(q.groups).toHaveLength(2);
      expect(q.truncated).toBe(true);
      const t: any = (await c.callTool({ name: 'job_timeline', arguments: { job_id: BIG } })).structuredContent;
      expect(t.events.map((e: any) => e.seq)).toEqual([0, 1]);
      expect(t.truncated).toBe(true);
      expect(t.summary).toMatch(/; 2\+ events$/);
    });
  });

  it('runs read-only in the query itself, leaving the shared session writable', async () => {
    const clause = settingsClause(readOnlySettings({ maxRows: 1000, maxExecutionTimeS: 10 }));
    expect(clause).toBe(
      "SETTINGS readonly = '1', max_execution_time = 10, max_result_rows = '1001', result_overflow_mode = 'throw', output_format_json_quote_64bit_integers = 1",
    );
    await expect(ch.command({ query: `INSERT INTO ${DB}.jobs (cluster) ${clause} VALUES ('x')` })).rejects.toThrow(/readonly/i);
    await ok('search_jobs', {});
    const rs = await ch.query({ query: "SELECT getSetting('readonly') AS r, getSetting('max_result_rows') AS m", format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ r: 0, m: 0 }]);
  });
});

describe('store failures', () => {
  it('are logged in full and answered with one line', async () => {
    const r = await withServer({ database: 'no_such_db' }, (c) => c.callTool({ name: 'search_jobs', arguments: {} }));
    expect(r.isError).toBe(true);
    const text = r.content[0]?.type === 'text' ? r.content[0].text : '';
    expect(text).toMatch(/^search_jobs: the job store has no job tables yet; try again once jobscribe has recorded events \(ref [0-9a-f]{8}\)$/);
    const ref = /ref ([0-9a-f]{8})/.exec(text)![1]!;
    expect(logged.find((m) => m.includes(ref))).toMatch(/UNKNOWN_DATABASE|no_such_db/i);
  });
});

describe('identity-scoped job details', () => {
  const alice: Identity = { subject: 'alice-laptop', user: 'alice', roles: [] };
  const dave: Identity = { subject: 'dave', user: 'dave', roles: ['approver'] };
  const errorText = (r: CallToolResult) => (r.content[0]?.type === 'text' ? r.content[0].text : '');
  const as = <T>(identity: Identity, body: (c: Client) => Promise<T>, deps: Partial<McpDeps> = {}) => withServer(deps, body, identity);

  it("a plain user gets their own jobs' details and the same answer for another's job as for a missing one", async () => {
    await as(alice, async (c) => {
      expect((await c.callTool({ name: 'get_job', arguments: { job_id: BIG } })).structuredContent).toMatchObject({ job: { job_id: BIG, user: 'alice' } });
      for (const tool of ['get_job', 'job_timeline']) {
        const bobs = await c.callTool({ name: tool, arguments: { job_id: FAILED_ID } });
        const missing = await c.callTool({ name: tool, arguments: { job_id: '999' } });
        expect(bobs.isError).toBe(true);
        expect(errorText(bobs)).toBe(errorText(missing).replace('999', FAILED_ID));
        expect(errorText(bobs)).toContain("that you may read (it does not exist or is not yours: you see the details of alice's jobs only)");
        // dave's id on two clusters: neither exists for alice, so no "several clusters" hint either
        expect(errorText(await c.callTool({ name: tool, arguments: { job_id: '4242' } }))).toBe(errorText(missing).replace('999', '4242'));
      }
      const t: any = (await c.callTool({ name: 'job_timeline', arguments: { job_id: BIG } })).structuredContent;
      expect(t.events).toHaveLength(eventsA.length);
    });
  });

  it('search_jobs searches only the caller\'s jobs, and says so when asked for another user', async () => {
    await as(alice, async (c) => {
      const expected = current().filter((j) => j.user === 'alice').sort(byKeyDesc((j) => micros(j.t_submit))).map(key);
      const { ids, total } = await (async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let first: number | undefined;
        do {
          const page: any = (await c.callTool({ name: 'search_jobs', arguments: { limit: 1, ...(cursor && { cursor }) } })).structuredContent;
          first ??= page.total_matching;
          seen.push(...page.jobs.map((j: any) => `${j.cluster}/${j.job_id}`));
          cursor = page.next_cursor;
        } while (cursor);
        return { ids: seen, total: first };
      })();
      expect(ids).toEqual(expected);
      expect(total).toBe(expected.length);
      const mine: any = (await c.callTool({ name: 'search_jobs', arguments: { user: 'alice', state: 'pending' } })).structuredContent;
      expect(mine.jobs.map((j: any) => j.job_id)).toEqual(['557']);
      const other = await c.callTool({ name: 'search_jobs', arguments: { user: 'bob' } });
      expect(other.isError).toBe(true);
      expect(errorText(other)).toBe(
        "user 'bob': you may search only your own jobs (user alice); drop user or set it to alice, or use the aggregate tools (queue_summary and the like) for other users",
      );
    });
  });

  it("aggregates (queue_summary) answer center-wide, the same as for an admin, without naming others' jobs", async () => {
    const unnamed = (g: any) =>
      !g.oldest_pending || g.oldest_pending.user === alice.user
        ? g
        : { ...g, oldest_pending: { submitted: g.oldest_pending.submitted, waiting_s: g.oldest_pending.waiting_s } };
    for (const group_by of ['queue', 'user'] as const) {
      const asAdmin: any = await ok('queue_summary', { group_by });
      const asAlice = await as(alice, async (c) => (await c.callTool({ name: 'queue_summary', arguments: { group_by } })).structuredContent);
      expect(asAlice).toEqual({ ...asAdmin, groups: asAdmin.groups.map(unnamed), clusters: asAdmin.clusters.map(unnamed) });
    }
  });

  it('a user whose id exists on two clusters is asked to choose; admins and the `all` policy see every job', async () => {
    await as(dave, async (c) => {
      expect(errorText(await c.callTool({ name: 'get_job', arguments: { job_id: '4242' } }))).toBe(
        'job 4242 exists on several clusters (quartz, tioga); pass cluster to choose one',
      );
    });
    const admin: Identity = { subject: 'ops', roles: ['admin'] };
    await as(admin, async (c) => {
      expect((await c.callTool({ name: 'get_job', arguments: { job_id: FAILED_ID } })).structuredContent).toMatchObject({ job: { user: 'bob' } });
    });
    await as(
      alice,
      async (c) => {
        expect((await c.callTool({ name: 'get_job', arguments: { job_id: FAILED_ID } })).structuredContent).toMatchObject({ job: { user: 'bob' } });
        const bob: any = (await c.callTool({ name: 'search_jobs', arguments: { user: 'bob' } })).structuredContent;
        expect(bob.total_matching).toBe(current().filter((j) => j.user === 'bob').length);
      },
      { jobDetails: 'all' },
    );
  });

  it('an identity without a scheduler user reads no job details', async () => {
    await as({ subject: 'robot', roles: [] }, async (c) => {
      for (const [tool, args] of [['get_job', { job_id: BIG }], ['job_timeline', { job_id: BIG }], ['search_jobs', {}]] as const) {
        const r = await c.callTool({ name: tool, arguments: args });
        expect(r.isError).toBe(true);
        expect(errorText(r)).toContain('this identity (robot) is not mapped to a scheduler user, so it may read no job details');
      }
    });
  });
});
