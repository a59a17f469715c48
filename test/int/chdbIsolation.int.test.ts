/**
 * Embedded ClickHouse: one caller's failing query never changes another caller's answer.
 * chDB keeps the partial output of a query that fails mid-run and glues it in front of the next
 * query's answer on the same session (the canary below records it on a bare connection, so a
 * chDB that fixes it shows up here); deploy/clickhouse.ts `isolatedQueries` serializes each
 * connection's calls and drains the leftover with a sentinel query after any failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { openClickHouse, type OpenedClickHouse } from '../../deploy/clickhouse.js';

/** Fails after about 90,000 rows of output (blocks of 1,000 rows are written as they come). */
const FAILS_MID_RUN =
  "SELECT number, repeat('x', 100) AS s FROM numbers(100000) WHERE throwIf(number = 90000, 'boom') = 0 SETTINGS max_block_size = 1000";

const answer = async (c: ClickHouseClient, query: string) => (await c.query({ query, format: 'JSONEachRow' })).text();

let dir: string;
let ch: OpenedClickHouse;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jobscribe-isolation-'));
  ch = await openClickHouse({ dataDir: dir, database: 'isolation_test' });
});
afterAll(async () => {
  await ch?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded ClickHouse isolates every query', () => {
  it('canary: a bare chDB connection hands a failed query\'s partial output to the next query', async () => {
    const { createChdbConnection } = await import('chdb/connection');
    const bare = createClient({ connection: createChdbConnection({ path: join(dir, 'clickhouse') }) } as Parameters<typeof createClient>[0]);
    try {
      await expect(answer(bare, FAILS_MID_RUN)).rejects.toThrow(/boom/);
      const next = await answer(bare, 'SELECT 1 AS one');
      expect(next.length, 'chDB no longer leaks a failed query\'s output: isolatedQueries may go').toBeGreaterThan(1_000_000);
      expect(next.endsWith('{"one":1}\n')).toBe(true);
    } finally {
      await bare.close();
    }
  });

  it("the next caller gets exactly its own answer after a failure, on the same client and on another", async () => {
    const other = ch.connect('other');
    for (const c of [ch.client, other]) {
      await expect(answer(c, FAILS_MID_RUN)).rejects.toThrow(/boom/);
      expect(await answer(c, 'SELECT 1 AS one')).toBe('{"one":1}\n');
    }
  });

  it('twenty failing queries among concurrent good ones change no good answer', async () => {
    const good = Array.from({ length: 40 }, (_, i) => answer(ch.client, `SELECT ${i} AS i, 'ok' AS s`));
    const bad = Array.from({ length: 20 }, () => answer(ch.client, FAILS_MID_RUN).then(() => 'answered', (e: Error) => e.message));
    const [goods, bads] = await Promise.all([Promise.all(good), Promise.all(bad)]);
    expect(goods).toEqual(Array.from({ length: 40 }, (_, i) => `{"i":${i},"s":"ok"}\n`));
    for (const b of bads) expect(b).toMatch(/boom/);
    // Inserts and commands after a failure are clean too.
    await ch.client.command({ query: 'CREATE TABLE isolation_test.t (n UInt64) ENGINE = MergeTree ORDER BY n' });
    await expect(answer(ch.client, FAILS_MID_RUN)).rejects.toThrow(/boom/);
    await ch.client.insert({ table: 'isolation_test.t', values: [{ n: 1 }, { n: 2 }], format: 'JSONEachRow' });
    expect(await answer(ch.client, 'SELECT count() AS n FROM isolation_test.t')).toBe('{"n":2}\n');
  });
});

describe('a query pool of embedded connections (connectPool)', () => {
  it('runs queries of one kind side by side, where one connection runs them in line', async () => {
    const slow = 'SELECT sleep(0.3) AS s';
    const timed = async (c: ClickHouseClient) => {
      const t0 = performance.now();
      await Promise.all([answer(c, slow), answer(c, slow)]);
      return performance.now() - t0;
    };
    expect(await timed(ch.connect('pool-test-single'))).toBeGreaterThanOrEqual(580);
    const pool = ch.connectPool('pool-test', 2);
    expect(await timed(pool)).toBeLessThan(580);
    // every other method is one member's: the pool is a client like any other
    expect(await answer(pool, 'SELECT 1 AS one')).toBe('{"one":1}\n');
  });
});
