/**
 * A full disk under the embedded log (issue: it stopped the whole `up`): ClickHouse refusing the
 * log's offset commits and reads with its real error ("Cannot reserve 1.00 MiB, not enough
 * space", code 243 NOT_ENOUGH_SPACE) for a while. The projector on the embedded log must wait,
 * warn, resume by itself and end with every event exactly once.
 *
 * A real full tmpfs is not available here, so the fault is injected at the narrow interface: the
 * real chDB client, wrapped so its inserts into `log_offsets` and its queries of the log tables
 * throw the error ClickHouse itself sends (parsed by @clickhouse/client's own parseError) while
 * armed. Everything else is the real path: embedded log, log/retry.ts, projector, chDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { parseError } from '@clickhouse/client-common';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { createSimSource, groundTruth, simulate } from '../../scribe/sim/index.js';
import { runScribe } from '../../scribe/scribe.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { waitUntil } from '../support/cli.js';

/** What ClickHouse answers when it cannot reserve space for a part (src/Common/ErrorCodes.cpp: 243 NOT_ENOUGH_SPACE). */
const DISK_FULL = 'Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE) (version 25.8.2.1)';

interface Faults {
  commits: number;
  reads: number;
  thrown: number;
}

/** The client, failing the next `faults.commits` log_offsets inserts and `faults.reads` log-table queries. */
function diskFullClient(client: ClickHouseClient, faults: Faults): ClickHouseClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'insert') {
        return async (params: Parameters<ClickHouseClient['insert']>[0]) => {
          if (String(params.table).endsWith('.log_offsets') && faults.commits > 0) {
            faults.commits--;
            faults.thrown++;
            throw parseError(DISK_FULL);
          }
          return target.insert(params);
        };
      }
      if (prop === 'query') {
        return async (params: Parameters<ClickHouseClient['query']>[0]) => {
          if (/\.log_(records|offsets)\b/.test(params.query) && faults.reads > 0) {
            faults.reads--;
            faults.thrown++;
            throw parseError(DISK_FULL);
          }
          return target.query(params);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
beforeAll(async () => {
  ch = await openTestClickHouse('disk_full');
});
afterAll(async () => {
  await ch?.cleanup();
});

describe('embedded log on a full disk', () => {
  const SIM = { seed: 21, cluster: 'alpha', nodes: 4, maxJobs: 60 } as const;
  const origin = { cluster: SIM.cluster, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } };
  const topic = eventsTopic('jobscribe', SIM.cluster);
  const count = async (q: string) => Number((await queryRows<{ n: string }>(ch, q))[0]!.n);

  it('the projector waits out failing commits and reads, warns, resumes by itself, and projects every event exactly once', async () => {
    const truth = groundTruth(SIM);
    const messages = [...simulate(SIM)].map((e) => toLogMessage(toEnvelope(origin, e, 1_800_000_000)));
    const faults: Faults = { commits: 0, reads: 0, thrown: 0 };
    const warnings: string[] = [];
    const log = createEmbeddedLog(diskFullClient(ch.client, faults), ch.database, {
      pollIntervalMs: 20,
      maxBatchRecords: 100,
      retryInitialMs: 20,
      retryMaxMs: 100,
      onWarning: (m) => warnings.push(m),
    });
    const projector = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: 'jobscribe' });
    const committed = async () => (await queryRows<{ o: string }>(ch, `SELECT toString(max(offset)) AS o FROM ${ch.database}.log_offsets FINAL WHERE group = {g:String}`, { g: projector.group }))[0]?.o;
    const ac = new AbortController();
    let stopped: unknown = 'running';
    const running = projector.run(ac.signal).then(
      () => (stopped = 'returned'),
      (err: unknown) => (stopped = err),
    );
    try {
      const half = Math.floor(messages.length / 2);
      await log.publish(topic, messages.slice(0, half));
      await waitUntil(async () => (await committed()) === String(half), { what: 'the first half projected', intervalMs: 20 });

      // The disk fills: the next commits and reads of the log fail, then space comes back.
      faults.commits = 4;
      faults.reads = 3;
      for (let i = half; i < messages.length; i += 50) await log.publish(topic, messages.slice(i, i + 50));
      await waitUntil(async () => stopped !== 'running' || (faults.commits === 0 && faults.reads === 0 && (await committed()) === String(messages.length)), {
        what: 'the projector to resume and catch up',
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      expect(stopped).toBe('running');
      expect(faults.thrown).toBe(7);
      expect(warnings.filter((w) => /failed \(attempt \d+\): Cannot reserve 1\.00 MiB, not enough space\. — the disk of the data directory is full: free space and it resumes by itself; retrying in \d+ ms/.test(w))).toHaveLength(7);
      expect(warnings.some((w) => /^embedded log: commit jobscribe-projector on .* succeeded after \d+ attempts; resumed$/.test(w))).toBe(true);
      expect(warnings.some((w) => /^embedded log: read .*@\d+ succeeded after \d+ attempts; resumed$/.test(w))).toBe(true);

      // Exactly once: no batch was written twice (not even before FINAL collapses it) and none was skipped.
      expect(await count(`SELECT count() AS n FROM ${ch.database}.job_events`)).toBe(truth.events);
      expect(await count(`SELECT count() AS n FROM ${ch.database}.job_events FINAL`)).toBe(truth.events);
      expect(await count(`SELECT count() AS n FROM ${ch.database}.jobs FINAL`)).toBe(truth.jobs);
      expect(projector.totals.events).toBe(truth.events);
    } finally {
      ac.abort();
      await running;
      await log.close();
    }
    expect(stopped).toBe('returned');
  });

  it('the scribe waits out checkpoint saves failing with ENOSPC and publishes every event once', async () => {
    const SIM2 = { seed: 22, cluster: 'beta', nodes: 4, maxJobs: 40 } as const;
    const truth = groundTruth(SIM2);
    const log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
    let failing = 3;
    let saved: string | undefined;
    const checkpoints = {
      load: () => undefined,
      save(cp: string) {
        if (failing > 0) {
          failing--;
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
        }
        saved = cp;
      },
    };
    const stats = await runScribe({
      cluster: SIM2.cluster,
      source: createSimSource({ ...SIM2, speed: 1_000_000 }),
      log,
      topicPrefix: 'jobscribe',
      checkpoints,
      scribeId: 'beta@test',
      version: '0',
      signal: new AbortController().signal,
    });
    await log.close();
    expect(failing).toBe(0);
    expect(saved).toBeDefined();
    expect(stats.published).toBe(truth.events);
    expect(await count(`SELECT count() AS n FROM ${ch.database}.log_records WHERE topic = 'jobscribe.beta.events'`)).toBe(truth.events);
  });
});

