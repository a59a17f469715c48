/**
 * The Kafka deployment end to end, as separate processes of the built CLI: a simulated cluster's
 * `jobscribe scribe --kafka` (data dir D1: its checkpoint) publishes while `jobscribe project
 * --kafka` (data dir D2: its chDB) projects. The projector is SIGKILLed while batches are flowing,
 * in the middle of a batch (pinned by a test preload: the batch's job_events rows written, its
 * jobs rows not, its offsets not committed; checked from its data), and restarted (the restart
 * waits up to ~30 s, kafkajs' session timeout, for the dead member to leave the group before it
 * is assigned the partitions). At the end:
 *   - job_events holds every simulated event exactly once (FINAL count = uniqExact = the
 *     simulator's ground truth, and the very same (job_id, seq) set), jobs per result equal it;
 *   - `status --json` shows every partition at lag 0 (committed = high watermark);
 *   - `replay --rebuild --no-swap` builds fresh tables with the same checksums as the live ones.
 *
 * The broker is a private one for this file (test/support/privateKafka.ts), so no other test file
 * restarting its broker disturbs it. Without Kafka the suite is skipped loudly, or FAILS under
 * CI=true.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { eventsTopic, type EventLog } from '../../log/eventLog.js';
import { createKafkaLog } from '../../log/kafka.js';
import { projectorGroup } from '../../projector/consume.js';
import { groundTruth, simulate } from '../../scribe/sim/index.js';
import { assertBuilt, REPO_ROOT, runCli, startCli, waitUntil, type Running } from '../support/cli.js';
import { uniqueName } from '../support/kafka.js';
import { requireTestBroker, type TestBroker } from '../support/privateKafka.js';

const EPOCH = 1_795_305_600;
const SIM = { seed: 31, cluster: 'c1', nodes: 6, maxJobs: 150, epoch: EPOCH } as const;
/** ~5,800 simulated seconds in ~19 s of wall time: the scribe is still publishing when we kill. */
const SPEED = 300;
const truth = groundTruth(SIM);
const identities = new Set([...simulate(SIM)].map((e) => `${e.job_id}:${e.seq}`));
const PREFIX = uniqueName('e2e');
const TOPIC = eventsTopic(PREFIX, SIM.cluster);
const scribeDir = mkdtempSync(join(tmpdir(), 'jobscribe-e2e-kafka-scribe-'));
const projectDir = mkdtempSync(join(tmpdir(), 'jobscribe-e2e-kafka-project-'));
const running: Running[] = [];

let broker: TestBroker | undefined;
let kafka: EventLog;

beforeAll(async () => {
  assertBuilt();
  broker = await requireTestBroker('e2e');
  if (broker) kafka = createKafkaLog({ brokers: broker.brokers, clientId: 'e2e-observer', logger: () => undefined });
}, 240_000);

afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await kafka?.close();
  await broker?.close();
  rmSync(scribeDir, { recursive: true, force: true });
  rmSync(projectDir, { recursive: true, force: true });
}, 60_000);

beforeEach(({ skip }) => {
  if (!broker) skip();
});

const common = () => ['--kafka', broker!.bootstrap, '--topic-prefix', PREFIX];

function start(args: string[], env: NodeJS.ProcessEnv = {}): Running & { waitForStderr(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> } {
  const r = startCli(args, env);
  running.push(r);
  return {
    ...r,
    waitForStderr: (re, timeoutMs) =>
      waitUntil(
        async () => {
          const m = r.stderr().match(re);
          if (m) return m;
          if (r.child.exitCode !== null) throw new Error(`process exited (${r.child.exitCode}) before ${re}:\n${r.stderr().slice(-3000)}`);
          return undefined;
        },
        { timeoutMs, intervalMs: 50, what: `${re} on stderr` },
      ),
  };
}

/**
 * A preload for the projector process (NODE_OPTIONS=--import): after the `pauseAt`-th insert into
 * job_events it writes a marker line and never returns, so the process is killed at a known
 * point inside a batch: its job_events rows written (the other tables, inserted beside them, maybe
 * too), its offsets not committed.
 * Test-only fault injection; the jobscribe code of the process is the built CLI, unchanged.
 */
function writePauseHook(dir: string, pauseAt: number): string {
  const file = join(dir, 'pause-mid-batch.mjs');
  writeFileSync(
    file,
    `import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(join(REPO_ROOT, 'package.json'))});
const { createClient } = require('@clickhouse/client');
// The class every createClient() instance (chDB ones too) is made from.
const probe = createClient({ url: 'http://127.0.0.1:9' });
const proto = Object.getPrototypeOf(probe);
await probe.close();
let n = 0;
// The projector inserts with exec (a pre-encoded body, "INSERT INTO t FORMAT ..."); insert kept too.
const tableOf = (params) => params.table ?? /^INSERT INTO (\\S+) FORMAT /.exec(params.query ?? '')?.[1] ?? '';
for (const method of ['insert', 'exec']) {
  const original = proto[method];
  proto[method] = async function (params) {
    const result = await original.call(this, params);
    if (/\\.job_events$/.test(tableOf(params)) && ++n === ${pauseAt}) {
      process.stderr.write('PAUSED MID-BATCH ' + params.clickhouse_settings.insert_deduplication_token + '\\n');
      await new Promise(() => undefined);
    }
    return result;
  };
}
`,
  );
  return file;
}

async function positions(): Promise<{ partition: number; committed: bigint | null; hw: bigint }[]> {
  return (await kafka.lag(projectorGroup(PREFIX), [TOPIC])).map((p) => ({ partition: p.partition, committed: p.committed, hw: p.highWatermark }));
}

async function withChdb<T>(fn: (q: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const ch = await openClickHouse({ dataDir: projectDir, database: 'jobscribe' });
  try {
    return await fn(async (sql) => (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>());
  } finally {
    await ch.close();
  }
}

describe('jobscribe scribe → Kafka → jobscribe project (separate processes)', () => {
  it('survives a SIGKILL of the projector mid-batch and ends with every event exactly once', { timeout: 240_000 }, async () => {
    expect(truth.jobs).toBeGreaterThan(100);
    const scribe = start([
      'scribe',
      ...common(),
      '--cluster', SIM.cluster,
      '--seed', String(SIM.seed),
      '--sim-nodes', String(SIM.nodes),
      '--sim-jobs', String(SIM.maxJobs),
      '--sim-epoch', String(EPOCH),
      '--sim-speed', String(SPEED),
      '--data-dir', scribeDir,
      '--log-level', 'info',
    ]);
    const published = async () => (await positions()).reduce((n, p) => n + p.hw, 0n);
    // A backlog: the projector's first fetch holds batches for several partitions.
    await waitUntil(async () => (await published()) >= BigInt(Math.floor(truth.events * 0.35)), { timeoutMs: 60_000, intervalMs: 200, what: 'the scribe publishing a third of the events' });

    // SIGKILL the projector in the middle of a batch, the worst moment: its second batch's
    // job_events rows are written, its jobs rows are not, its offsets are not committed. A test
    // preload pins that moment (a kill aimed from outside would race the projector's
    // millisecond-long steps).
    const hook = writePauseHook(scribeDir, 2);
    const p = start(['project', ...common(), '--data-dir', projectDir, '--log-level', 'warn'], { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}` });
    const [, token] = await p.waitForStderr(/PAUSED MID-BATCH (\S+)\n/, 90_000);
    p.child.kill('SIGKILL');
    expect(await p.exited).toBe(null); // killed by the signal
    expect(scribe.child.exitCode, 'the scribe is still publishing').toBe(null);
    // The batch: topic:partition:first-last:table:digest.
    const [, partition, first, last] = /^.+:(\d+):(\d+)-(\d+):.+\.job_events:[0-9a-f]+$/.exec(token!)!;
    const committed = (await positions()).find((x) => x.partition === Number(partition))!.committed;
    const written = await withChdb((q) =>
      q(`SELECT count() AS n, toString(min(log_offset)) AS lo, toString(max(log_offset)) AS hi FROM jobscribe.job_events
          WHERE log_topic = '${TOPIC}' AND log_partition = ${Number(partition)} AND log_offset BETWEEN ${first} AND ${last}`),
    );
    process.stderr.write(`kafka e2e: SIGKILL mid-batch ${token}: group committed ${committed} on partition ${partition}, rows of the batch in job_events ${JSON.stringify(written)}\n`);
    expect(written).toEqual([{ n: Number(last) - Number(first) + 1, lo: first, hi: last }]);
    expect(committed === null || committed <= BigInt(first!), 'the batch was not committed').toBe(true);

    const restartedAt = Date.now();
    const restarted = start(['project', ...common(), '--data-dir', projectDir, '--log-level', 'warn']);
    expect(await scribe.exited, scribe.stderr()).toBe(0);
    expect(scribe.stderr()).toMatch(new RegExp(`scribe stopped after publishing ${truth.events} events`));
    await waitUntil(
      async () => {
        const ps = await positions();
        return ps.length === 6 && ps.every((x) => x.committed === x.hw) && ps.reduce((n, x) => n + x.hw, 0n) >= BigInt(truth.events);
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'the restarted projector catching up (lag 0 on every partition)' },
    );
    const caughtUpMs = Date.now() - restartedAt;
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited, restarted.stderr()).toBe(0);

    // status --json: lag 0 per partition, the counts of the read model.
    const status = await runCli(['status', '--json', ...common(), '--data-dir', projectDir]);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as {
      log: string;
      partitions: { topic: string; partition: number; committed: string | null; highWatermark: string; lag: string }[];
      clusters: { cluster: string; jobs: number | string; pending: number | string; running: number | string }[];
      job_events: number;
      dead_letters: number;
    };
    expect(s.log).toBe('kafka');
    expect(s.partitions.map((p) => [p.topic, p.partition])).toEqual([0, 1, 2, 3, 4, 5].map((p) => [TOPIC, p]));
    for (const p of s.partitions) {
      expect(p.lag, `${p.topic}[${p.partition}]`).toBe('0');
      expect(p.committed).toBe(p.highWatermark);
    }
    expect(s.clusters.map((c) => [c.cluster, Number(c.jobs), Number(c.pending), Number(c.running)])).toEqual([[SIM.cluster, truth.jobs, 0, 0]]);
    expect(s.job_events).toBe(truth.events);
    expect(s.dead_letters).toBe(0);
    const logRecords = s.partitions.reduce((n, p) => n + Number(p.highWatermark), 0);

    // replay --rebuild --no-swap: fresh tables beside the live ones.
    const rebuild = await runCli(['replay', '--rebuild', '--no-swap', ...common(), '--data-dir', projectDir]);
    expect(rebuild.code, rebuild.stderr).toBe(0);
    expect(rebuild.stderr).toMatch(/rebuild \[#+\] 100\.0%/);
    expect(rebuild.stdout).toMatch(new RegExp(`replayed ${logRecords} events \\(0 dead letters\\) into tables with suffix __rebuild`));

    await withChdb(async (q) => {
      expect(await q(`SELECT count() AS n, uniqExact(cluster, job_id, seq) AS u FROM jobscribe.job_events FINAL`)).toEqual([{ n: truth.events, u: truth.events }]);
      const ids = await q(`SELECT toString(job_id) AS j, seq FROM jobscribe.job_events FINAL`);
      expect(new Set(ids.map((r) => `${String(r.j)}:${String(r.seq)}`))).toEqual(identities);
      const byResult = await q(`SELECT result, count() AS n FROM jobscribe.jobs FINAL GROUP BY result`);
      const got = Object.fromEntries(byResult.map((r) => [String(r.result), Number(r.n)]));
      for (const r of ['COMPLETED', 'FAILED', 'CANCELED', 'TIMEOUT'] as const) expect(got[r] ?? 0, r).toBe(truth.results[r]);
      expect(Object.values(got).reduce((a, b) => a + b, 0)).toBe(truth.jobs);
      for (const t of ['jobs', 'job_events', 'dead_letters']) {
        const live = await q(`SELECT count() AS n, sum(cityHash64(*)) AS h FROM jobscribe.${t} FINAL`);
        const fresh = await q(`SELECT count() AS n, sum(cityHash64(*)) AS h FROM jobscribe.${t}__rebuild FINAL`);
        expect(fresh, t).toEqual(live);
      }
      const physical = await q(`SELECT count() AS n FROM jobscribe.job_events`);
      process.stderr.write(
        `kafka e2e: restarted projector caught up in ${caughtUpMs} ms; ${logRecords} log records for ${truth.events} events; job_events physical rows ${String(physical[0]!.n)} (FINAL ${truth.events})\n`,
      );
    });
  });
});
