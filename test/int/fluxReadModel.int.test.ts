/**
 * Flux end to end below the CLI: a fake broker speaking flux-core's bytes and replaying real
 * journals → Flux scribe → embedded log → projector → chDB. The read model must show the jobs
 * flux-core itself reported, and disconnects and scribe restarts must leave every event once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedLog } from '../../log/embedded.js';
import type { EventLog } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { fileCheckpointStore } from '../../scribe/checkpoint.js';
import { createFluxSource } from '../../scribe/flux/index.js';
import { runScribe } from '../../scribe/scribe.js';
import { FakeFluxBroker, type FakeFluxBrokerOptions } from '../support/fakeFluxBroker.js';
import { HELD, MEMO_JOURNAL, MEMO_RESTART_AFTER, RUNS } from '../support/fluxMemoJournal.js';
import { fluxFixture } from '../support/fixtures.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { waitUntil } from '../support/cli.js';

const lines = (text: string) => text.split('\n').filter(Boolean);
const gz = (name: string) => lines(gunzipSync(readFileSync(fluxFixture.path(name))).toString('utf8'));

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
const dir = mkdtempSync(join(tmpdir(), 'jobscribe-flux-rm-'));
let n = 0;
const stopProjector = new AbortController();

beforeAll(async () => {
  ch = await openTestClickHouse('flux_rm');
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  const projector = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: 'js' });
  void projector.run(stopProjector.signal);
});
afterAll(async () => {
  stopProjector.abort();
  await ch.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function broker(opts: Omit<FakeFluxBrokerOptions, 'path'>): Promise<FakeFluxBroker> {
  return FakeFluxBroker.start({ path: join(dir, `flux${++n}.sock`), ...opts });
}

/** Runs a Flux scribe for `cluster` against the broker until `until` says stop. */
async function scribe(cluster: string, b: FakeFluxBroker, until: () => Promise<boolean>): Promise<void> {
  const ac = new AbortController();
  const running = runScribe({
    cluster,
    source: createFluxSource({ uri: `local://${b.path}`, cluster, logger: () => {}, reconnect: { initialMs: 20, maxMs: 200 } }),
    log,
    topicPrefix: 'js',
    checkpoints: fileCheckpointStore(join(dir, `${cluster}.checkpoint`)),
    scribeId: 'test',
    version: '0',
    signal: ac.signal,
  });
  await waitUntil(async () => until(), { timeoutMs: 60_000, what: `${cluster} caught up` });
  ac.abort();
  await running;
}

/** Seconds → ClickHouse DateTime64(6) text (whole milliseconds only). */
const chTime = (s: number) => new Date(s * 1000).toISOString().replace('T', ' ').replace('Z', '000');
const count = async (sql: string) => Number((await queryRows<{ n: string }>(ch, sql))[0]!.n);
const db = () => ch.database;

interface FluxJobsEntry {
  id: number;
  state: string;
  result: string;
  returncode: number;
  waitstatus?: number;
}

describe('Flux → read model', () => {
  it('the live 35-job journal gives exactly the jobs flux-core reported, with their state, result and wait status', async () => {
    const b = await broker({ journal: lines(fluxFixture('journal.jsonl')) });
    const oracle = (JSON.parse(fluxFixture('jobs.json')) as { jobs: FluxJobsEntry[] }).jobs;
    await scribe('live35', b, async () => (await count(`SELECT count() AS n FROM ${db()}.jobs FINAL WHERE cluster = 'live35' AND sched_state = 'INACTIVE'`)) === 35);
    await b.stop();
    const rows = await queryRows<{ job_id: string; sched_state: string; result: string; exit_code: number | null; signal: number | null }>(
      ch,
      `SELECT toString(job_id) AS job_id, sched_state, result, exit_code, signal FROM ${db()}.jobs FINAL WHERE cluster = 'live35' ORDER BY job_id`,
    );
    expect(rows).toHaveLength(35);
    // exit code and signal from flux jobs' waitstatus (its returncode mixes -signal, -128 and 1 in)
    const exitOf = (ws?: number) => (ws !== undefined && (ws & 0x7f) === 0 ? (ws >> 8) & 0xff : null);
    const signalOf = (ws?: number) => (ws !== undefined && (ws & 0x7f) !== 0 && (ws & 0x7f) !== 0x7f ? ws & 0x7f : null);
    const want = oracle.map((j) => ({ job_id: String(j.id), sched_state: j.state, result: j.result, exit_code: exitOf(j.waitstatus), signal: signalOf(j.waitstatus) }));
    expect(rows).toEqual(want.sort((a, b) => (BigInt(a.job_id) < BigInt(b.job_id) ? -1 : 1)));
  });

  it('volatile memos: a scribe restart loses no stored event; a re-read after a lost checkpoint changes no identity and no jobs row', async () => {
    const b = await broker({ journal: MEMO_JOURNAL, autoAdvance: false });
    const streams = () => b.requests.filter((r) => r.topic === 'job-manager.events-journal').length;
    const events = (cluster: string) =>
      queryRows<{ job_id: string; seq: number; name: string; ts: string }>(
        ch,
        `SELECT toString(job_id) AS job_id, seq, name, toString(ts) AS ts FROM ${db()}.job_events FINAL WHERE cluster = '${cluster}' ORDER BY job_id, seq`,
      );
    const jobs = (cluster: string) =>
      queryRows<Record<string, unknown>>(ch, `SELECT * EXCEPT (cluster) FROM ${db()}.jobs FINAL WHERE cluster = '${cluster}' ORDER BY job_id`);
    const inactive = (cluster: string) => count(`SELECT count() AS n FROM ${db()}.jobs FINAL WHERE cluster = '${cluster}' AND sched_state = 'INACTIVE'`);
    // first run: the pending phase happens live (both volatile memos are the last events then)
    await scribe('memo', b, async () => {
      if (streams() > 0 && b.happened === 0) b.advance(MEMO_RESTART_AFTER);
      return (await count(`SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = 'memo'`)) >= MEMO_RESTART_AFTER;
    });
    b.advance(); // the rest happens while the scribe is down; then it restarts from its checkpoint
    await scribe('memo', b, async () => (await inactive('memo')) === 2);
    const live = await events('memo');
    const rows = await jobs('memo');
    const names = (id: string) => live.filter((e) => e.job_id === id).map((e) => e.name);
    // (RUNS's volatile memo while running and HELD's annotations happened while the scribe was
    // down: gone, as Flux never stores them; HELD's committed memo comes from the backlog)
    expect(names(RUNS)).toEqual(['submit', 'validate', 'depend', 'priority', 'annotations', 'memo', 'alloc', 'start', 'finish', 'release', 'free', 'clean']);
    expect(names(HELD)).toEqual(['submit', 'validate', 'depend', 'priority', 'memo', 'urgency', 'priority', 'memo', 'alloc', 'start', 'finish', 'release', 'free', 'clean']);
    expect(rows.find((r) => r.job_id === RUNS)).toMatchObject({ result: 'COMPLETED', nodes: ['fluxnode1'], t_start: chTime(1795400001.1) });
    expect(rows.find((r) => r.job_id === HELD)).toMatchObject({ result: 'COMPLETED', urgency: 16, nodes: ['fluxnode0'], t_start: chTime(1795400001.5) });

    // the checkpoint is lost: the whole backlog again, into the same read model
    const maxOffset = await count(`SELECT max(toUInt64(log_offset)) AS n FROM ${db()}.job_events WHERE cluster = 'memo'`);
    const stored = MEMO_JOURNAL.filter((l) => !l.startsWith('{"id":-1') && !l.includes('"noCommit"') && !l.includes('"annotations",')).length;
    rmSync(join(dir, 'memo.checkpoint'));
    await scribe('memo', b, async () => (await count(`SELECT count() AS n FROM ${db()}.job_events WHERE cluster = 'memo' AND toUInt64(log_offset) > ${maxOffset}`)) === stored);
    expect(await events('memo')).toEqual(live); // no event replaced by another, none doubled
    expect(await jobs('memo')).toEqual(rows);
    // and a read model that only ever saw the backlog has the same jobs rows
    await scribe('memo-backlog', b, async () => (await inactive('memo-backlog')) === 2);
    await b.stop();
    expect(await jobs('memo-backlog')).toEqual(rows);
  });

  it('the real 1000-job journal, with disconnects mid-backlog and a scribe restart, gives 1000 completed jobs and every event once', async () => {
    const journal = gz('journal-1000-real.jsonl.gz');
    // Stored eventlog events must all arrive once. Journal-only `annotations` that happen while
    // the scribe is not connected are gone for good (Flux never stores them): at most once.
    const events = journal.filter((l) => !l.startsWith('{"id":-1')).flatMap((l) => (JSON.parse(l) as { events: { name: string }[] }).events);
    const stored = events.filter((e) => e.name !== 'annotations').length;
    const annotations = events.length - stored;
    const b = await broker({ journal, happened: 4000 });
    b.dropAfter(300, 900, 2000);
    // First run: stop part-way, then restart the scribe from its checkpoint.
    await scribe('real1000', b, async () => (await count(`SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = 'real1000'`)) > 4000);
    await scribe('real1000', b, async () => (await count(`SELECT count() AS n FROM ${db()}.jobs FINAL WHERE cluster = 'real1000' AND sched_state = 'INACTIVE'`)) === 1000);
    await b.stop();
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = 'real1000' AND name != 'annotations'`)).toBe(stored);
    expect(await count(`SELECT uniqExact(job_id, name) AS n FROM ${db()}.job_events FINAL WHERE cluster = 'real1000' AND name != 'annotations'`)).toBe(stored);
    const seen = await count(`SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = 'real1000' AND name = 'annotations'`);
    // Annotations that happened before the first connect arrive only as the backlog, which has none.
    expect(seen).toBeLessThanOrEqual(annotations);
    const results = await queryRows<{ result: string; exit_code: number; n: string }>(
      ch,
      `SELECT result, exit_code, count() AS n FROM ${db()}.jobs FINAL WHERE cluster = 'real1000' GROUP BY result, exit_code`,
    );
    expect(results).toEqual([{ result: 'COMPLETED', exit_code: 0, n: 1000 }].map((r) => ({ ...r, n: expect.anything() })));
    expect(Number(results[0]!.n)).toBe(1000);
  });
});
