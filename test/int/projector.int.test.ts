/**
 * The projector on the real embedded engine: simulator events → embedded log → projector →
 * chDB, checked against the simulator's own ground truth; crashes between insert and commit,
 * republished events and replays never duplicate or lose rows; bad records become dead letters;
 * a replay re-derives the rows it touches from their events, so it repairs a wrong row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic, type Batch, type EventLog } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { replay } from '../../projector/rebuild.js';
import { jobKey, projectEvents } from '../../projector/project.js';
import { jobInsertRow, loadJobs } from '../../projector/write.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { groundTruth, simulate } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
const PREFIX = 'jobscribe';
const SIM = { seed: 11, cluster: 'alpha', nodes: 8, maxJobs: 120 } as const;
const topic = eventsTopic(PREFIX, SIM.cluster);
const origin = { cluster: SIM.cluster, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } };

function allEvents(): SourceEvent[] {
  return [...simulate(SIM)];
}

async function publishAll(events: SourceEvent[], chunk = 300): Promise<void> {
  for (let i = 0; i < events.length; i += chunk) {
    await log.publish(topic, events.slice(i, i + chunk).map((e) => toLogMessage(toEnvelope(origin, e, 1_800_000_000))));
  }
}

async function projectToEnd(projector: Projector): Promise<void> {
  await projector.run(new AbortController().signal, { from: 'committed' }, true);
}

const count = async (q: string) => Number((await queryRows<{ n: string }>(ch, q))[0]!.n);

beforeAll(async () => {
  ch = await openTestClickHouse('projector_test');
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20, maxBatchRecords: 500 });
});
afterAll(async () => {
  await ch.cleanup();
});

describe('projector on chDB', () => {
  const truth = groundTruth(SIM);
  const db = () => ch.database;

  it('projects every simulated event once and derives the jobs the simulator ran', async () => {
    const events = allEvents();
    expect(events.length).toBe(truth.events);
    await publishAll(events);
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    await projectToEnd(projector);

    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(truth.events);
    expect(await count(`SELECT count() AS n FROM ${db()}.jobs FINAL`)).toBe(truth.jobs);
    const byResult = await queryRows<{ result: string; n: string }>(ch, `SELECT result, count() AS n FROM ${db()}.jobs FINAL GROUP BY result`);
    const got = Object.fromEntries(byResult.map((r) => [r.result, Number(r.n)]));
    for (const r of ['COMPLETED', 'FAILED', 'CANCELED', 'TIMEOUT'] as const) expect(got[r] ?? 0, r).toBe(truth.results[r]);
    expect(await count(`SELECT count() AS n FROM ${db()}.jobs FINAL WHERE sched_state != 'INACTIVE'`)).toBe(0);
    const byUser = await queryRows<{ user: string; n: string }>(ch, `SELECT user, count() AS n FROM ${db()}.jobs FINAL GROUP BY user`);
    for (const { user, n } of byUser) {
      const t = truth.byUser[user]!;
      expect(Number(n), user).toBe(t.COMPLETED + t.FAILED + t.CANCELED + t.TIMEOUT + t.active);
    }
  });

  it('writes nothing twice when a batch is retried after a crash before its commit', async () => {
    const before = await count(`SELECT count() AS n FROM ${db()}.job_events`);
    // Re-deliver the first batches exactly as the log would after a crash (same ranges).
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    const ac = new AbortController();
    const seen: Batch[] = [];
    await log.consume({
      group: 'crash-sim',
      topics: [topic],
      start: { from: 'earliest' },
      signal: ac.signal,
      eachBatch: async (b) => {
        seen.push(b);
        if (seen.length === 3) ac.abort();
      },
    });
    for (const b of seen) await projector.handleBatch(b);
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events`)).toBe(before); // physical rows: dedup tokens
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(truth.events);
  });

  it('writes a re-created topic\'s new events although their log range repeats one seen before', async () => {
    // A topic deleted and re-created restarts at offset 0: the same topic:partition:first-last
    // range now carries other events. A range-only dedup token made ClickHouse drop them (and the
    // projector commit past them): lost. The token binds the rows' content, so they are written.
    const seen: Batch[] = [];
    const ac = new AbortController();
    await log.consume({
      group: 'recreated-topic',
      topics: [topic],
      start: { from: 'earliest' },
      signal: ac.signal,
      eachBatch: async (b) => {
        seen.push(b);
        ac.abort();
      },
    });
    const first = seen[0]!;
    const n = Number(first.lastOffset - first.firstOffset) + 1;
    const otherLife = [...simulate({ ...SIM, seed: 99, maxJobs: 400 })].slice(0, n);
    expect(otherLife.length).toBe(n);
    const records = otherLife.map((e, i) => {
      const m = toLogMessage(toEnvelope(origin, e, 1_800_000_000));
      return { topic, partition: first.partition, offset: first.firstOffset + BigInt(i), key: m.key, value: m.value, headers: m.headers ?? {}, timestamp: 1_800_000_000_000 };
    });
    const before = await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`);
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    await projector.handleBatch({ ...first, records });
    const fresh = new Set(otherLife.map((e) => `${e.job_id}:${e.seq}`));
    const had = new Set(allEvents().map((e) => `${e.job_id}:${e.seq}`));
    const newIds = [...fresh].filter((k) => !had.has(k));
    expect(newIds.length).toBeGreaterThan(0);
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(before + newIds.length);
    // Undo for the tests below, which compare with the first life's ground truth.
    const ours = [...new Set(otherLife.map((e) => e.job_id))].filter((j) => !allEvents().some((e) => e.job_id === j));
    if (ours.length > 0) {
      const list = ours.map((j) => `'${j}'`).join(',');
      await ch.client.command({ query: `DELETE FROM ${db()}.job_events WHERE toString(job_id) IN (${list})`, clickhouse_settings: { mutations_sync: '2' } });
      await ch.client.command({ query: `DELETE FROM ${db()}.jobs WHERE toString(job_id) IN (${list})`, clickhouse_settings: { mutations_sync: '2' } });
    }
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(before);
  });

  it('collapses events a scribe re-published after a restart', async () => {
    const events = allEvents().slice(0, 400); // the same events again, at new offsets
    await publishAll(events, 400);
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    await projectToEnd(projector);
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(truth.events);
    expect(await count(`SELECT count() AS n FROM ${db()}.jobs FINAL`)).toBe(truth.jobs);
  });

  it('puts malformed and misrouted records in dead_letters with the reason and position', async () => {
    const good = toEnvelope(origin, allEvents()[0]!, 1_800_000_000);
    await log.publish(topic, [
      { key: 'x', value: '{not json' },
      { key: 'alpha:1', value: JSON.stringify({ ...good, job_id: 12345678901234567890n.toString() + '0' }) },
      { key: 'alpha:1', value: JSON.stringify({ ...good, v: 9 }) },
      { key: `beta:${good.job_id}`, value: JSON.stringify({ ...good, cluster: 'beta' }) },
      { key: `alpha:${good.job_id}`, value: JSON.stringify({ ...good, name: 'finish', context: { status: 'zero' } }) },
    ]);
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    await projectToEnd(projector);
    const dead = await queryRows<{ reason: string; log_offset: string; payload: string }>(
      ch,
      `SELECT reason, toString(log_offset) AS log_offset, payload FROM ${db()}.dead_letters FINAL ORDER BY log_offset`,
    );
    expect(dead).toHaveLength(5);
    expect(dead[0]!.reason).toMatch(/not JSON/);
    expect(dead[0]!.payload).toBe('{not json');
    expect(dead[1]!.reason).toMatch(/job_id/);
    expect(dead[2]!.reason).toMatch(/unknown envelope version 9/);
    expect(dead[3]!.reason).toMatch(/cluster "beta" arrived on topic/);
    expect(dead[4]!.reason).toMatch(/flux event "finish" has a bad context/);
    const hw = (await log.lag('x', [topic]))[0]!.highWatermark;
    expect(BigInt(dead[4]!.log_offset)).toBe(hw - 1n);
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBe(truth.events);
  });

  it('rebuilds from offset 0 into fresh tables identical to the live ones', async () => {
    const result = await replay({
      clickhouse: ch.client,
      database: db(),
      log,
      topicPrefix: PREFIX,
      start: { from: 'earliest' },
      rebuild: true,
      swap: false,
      signal: new AbortController().signal,
    });
    expect(result.events).toBe(truth.events + 400);
    for (const t of ['jobs', 'job_events', 'dead_letters']) {
      const live = await queryRows(ch, `SELECT count() AS n, sum(cityHash64(*)) AS h FROM ${db()}.${t} FINAL`);
      const fresh = await queryRows(ch, `SELECT count() AS n, sum(cityHash64(*)) AS h FROM ${db()}.${t}__rebuild FINAL`);
      expect(fresh, t).toEqual(live);
    }
  });

  it('replays a range from an offset into the live tables without changing them', async () => {
    const sum = async (t: string) => queryRows(ch, `SELECT count() AS n, sum(cityHash64(*)) AS h FROM ${db()}.${t} FINAL`);
    const before = [await sum('jobs'), await sum('job_events')];
    await replay({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX, start: { from: 'offset', offset: 1000n }, signal: new AbortController().signal });
    expect([await sum('jobs'), await sum('job_events')]).toEqual(before);
  });

  it('repairs a job row folded onto a stale state with a replay from an offset', async () => {
    // The row a projector wrote when it folded a job's later events onto the state it had cached
    // before another member folded the alloc and the start: COMPLETED, no nodes, no start/end.
    const events = allEvents();
    const ran = events.slice(400).find((e) => e.name === 'alloc' && events.findIndex((x) => x.job_id === e.job_id) >= 400)!.job_id;
    const mine = events.filter((e) => e.job_id === ran);
    const alloc = mine.findIndex((e) => e.name === 'alloc');
    const start = mine.findIndex((e) => e.name === 'start');
    expect(start).toBeGreaterThan(alloc);
    const asBatch = (es: SourceEvent[]) => es.map((e) => ({ envelope: toEnvelope(origin, e, 1_800_000_000), record: { topic, partition: 0, offset: 0n, key: '', value: '', headers: {}, timestamp: 0 } }));
    const key = jobKey(SIM.cluster, ran);
    const stale = projectEvents(asBatch(mine.slice(0, alloc)), new Map()).jobs;
    const wrong = projectEvents(asBatch(mine.slice(start + 1)), stale).jobs.get(key)!;
    expect([wrong.result, wrong.nodes, wrong.t_start]).toEqual(['COMPLETED', [], null]);

    const sums = async () => [await queryRows(ch, `SELECT count() AS n, sum(cityHash64(*)) AS h FROM ${db()}.jobs FINAL`), await queryRows(ch, `SELECT count() AS n, sum(cityHash64(*)) AS h FROM ${db()}.job_events FINAL`)];
    const right = await sums();
    const row = async () => (await loadJobs(ch.client, `${db()}.jobs`, [[SIM.cluster, ran]]))[0]!;
    const good = await row();
    expect(good.nodes.length).toBeGreaterThan(0);
    const corrupt = async () => {
      await ch.client.insert({ table: `${db()}.jobs`, values: [jobInsertRow(wrong)], format: 'JSONEachRow' });
      expect((await row()).t_start, 'the wrong row is the current one').toBeNull();
    };
    const offsetOf = async (seq: number) =>
      BigInt((await queryRows<{ o: string }>(ch, `SELECT toString(log_offset) AS o FROM ${db()}.job_events FINAL WHERE job_id = ${ran} AND seq = ${seq}`))[0]!.o);

    // From the offset of the first event after the start: the earlier events come from job_events.
    await corrupt();
    await replay({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX, start: { from: 'offset', offset: await offsetOf(mine[start + 1]!.seq) }, signal: new AbortController().signal });
    expect(await row()).toEqual(good);
    // From offset 0, whose batches carry the very rows the live projector wrote for those ranges
    // before the wrong row replaced them (same insert-dedup token unless the replay's are its own).
    await corrupt();
    await replay({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX, start: { from: 'offset', offset: 0n }, signal: new AbortController().signal });
    expect(await row()).toEqual(good);
    expect(await sums()).toEqual(right);
  });
});

describe('projector on chDB: records past the decode bounds', () => {
  const db = () => ch.database;
  const gamma = { ...origin, cluster: 'gamma' };
  const gammaTopic = eventsTopic(PREFIX, 'gamma');
  /** A record whose context nests `depth` levels deep (JSON.stringify itself cannot write one). */
  const deepValue = (env: object, depth: number) => JSON.stringify({ ...env, context: '__DEEP__' }).replace('"__DEEP__"', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));

  it('a 30,000-deep or oversized event goes to dead_letters with the reason; the events around it are projected', async () => {
    const events = [...simulate({ ...SIM, cluster: 'gamma', maxJobs: 6 })];
    const messages = events.map((e) => toLogMessage(toEnvelope(gamma, e, 1_800_000_000)));
    // A memo (RFC 21: any context) on a job, its context 30,000 levels deep.
    const deepEnv = toEnvelope(gamma, { ...events[0]!, seq: 999, name: 'memo' }, 1_800_000_000);
    const deep = { key: messages[0]!.key, value: deepValue(deepEnv, 30_000) };
    const huge = { key: messages[0]!.key, value: JSON.stringify({ ...deepEnv, seq: 1000, raw: 'x'.repeat(5 * 1024 * 1024) }) };
    const half = Math.floor(messages.length / 2);
    await log.publish(gammaTopic, [...messages.slice(0, half), deep, huge, ...messages.slice(half)]);
    const projector = new Projector({ clickhouse: ch.client, database: db(), log, topicPrefix: PREFIX });
    await projectToEnd(projector);

    expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = 'gamma'`)).toBe(events.length);
    const dead = await queryRows<{ reason: string; log_offset: string; n: string }>(
      ch,
      `SELECT reason, toString(log_offset) AS log_offset, toString(length(payload)) AS n FROM ${db()}.dead_letters FINAL WHERE log_topic = {t:String} ORDER BY log_offset`,
      { t: gammaTopic },
    );
    expect(dead).toEqual([
      { reason: 'envelope nested too deep: more than 64 levels of objects / arrays', log_offset: String(half), n: String(deep.value.length) },
      { reason: expect.stringMatching(/^envelope too large: \d+ bytes \(at most 4194304\)$/), log_offset: String(half + 1), n: String(64 * 1024) },
    ]);
    // Committed past both: the next run has nothing left to do.
    const lag = await log.lag(projector.group, [gammaTopic]);
    expect(lag[0]!.lag).toBe(0n);
  });
});

describe('projector on chDB: a table insert of a batch fails', () => {
  const db = () => ch.database;
  const delta = { ...origin, cluster: 'delta' };
  const deltaTopic = eventsTopic(PREFIX, 'delta');

  it('fails the batch (nothing committed), and its retry lands every table once: what landed is dropped as a duplicate', async () => {
    const events = [...simulate({ ...SIM, cluster: 'delta', maxJobs: 10 })];
    await log.publish(deltaTopic, events.map((e) => toLogMessage(toEnvelope(delta, e, 1_800_000_000))));
    const ac = new AbortController();
    let batch: Batch | undefined;
    await log.consume({ group: 'insert-fails', topics: [deltaTopic], start: { from: 'earliest' }, signal: ac.signal, eachBatch: async (b) => void ((batch = b), ac.abort()) });
    // The jobs insert is refused once; the other tables' inserts of the batch run beside it.
    let refuse = true;
    const client = new Proxy(ch.client, {
      get(target, prop, receiver) {
        if (prop === 'exec') {
          return async (params: Parameters<typeof target.exec>[0]) => {
            if (refuse && params.query.includes(`${db()}.jobs FORMAT`)) {
              refuse = false;
              throw new Error('injected: jobs insert refused');
            }
            return target.exec(params);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const projector = new Projector({ clickhouse: client, database: db(), log, topicPrefix: PREFIX });
    await expect(projector.handleBatch(batch!)).rejects.toThrow(/insert into .*\.jobs failed: injected: jobs insert refused/);
    const n = batch!.records.length;
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events WHERE cluster = 'delta'`)).toBe(n);
    expect(await count(`SELECT count() AS n FROM ${db()}.jobs WHERE cluster = 'delta'`)).toBe(0);

    await projector.handleBatch(batch!); // the retry
    expect(await count(`SELECT count() AS n FROM ${db()}.job_events WHERE cluster = 'delta'`)).toBe(n); // physical rows: not twice
    const jobs = await count(`SELECT count() AS n FROM ${db()}.jobs FINAL WHERE cluster = 'delta'`);
    expect(jobs).toBe(new Set(batch!.records.map((r) => r.key)).size);
    expect(await count(`SELECT count() AS n FROM ${db()}.jobs WHERE cluster = 'delta'`)).toBe(jobs);
  });
});
