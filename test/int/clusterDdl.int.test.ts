/**
 * `jobscribe schema --clickhouse-cluster`: the replicated DDL parses in the embedded engine's own
 * parser, and its tables are the embedded tables (columns, types, codecs, keys, engine
 * parameters) once the replication is taken off: chDB has no Keeper and no remote_servers, so the
 * replicated statements themselves cannot be run here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStatements, replicatedEngine } from '../../schemas/clickhouse/cluster.js';
import { READ_MODEL_TABLES } from '../../schemas/clickhouse/ddl.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { runCli } from '../support/cli.js';

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
beforeAll(async () => {
  ch = await openTestClickHouse('jobscribe');
});
afterAll(async () => ch?.cleanup());

/** What a replica would create, minus Keeper: ON CLUSTER dropped, Replicated engines unwrapped. */
function unreplicated(statement: string, into: string): string {
  return statement
    .replace(/ ON CLUSTER \w+/, '')
    .replace(/^CREATE TABLE IF NOT EXISTS jobscribe\./, `CREATE TABLE IF NOT EXISTS ${into}.`)
    .replace(/^ALTER TABLE jobscribe\./, `ALTER TABLE ${into}.`)
    .replace(/Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?/, '$1(')
    .replace('replicated_deduplication_window', 'non_replicated_deduplication_window');
}

describe('schema --clickhouse-cluster', () => {
  const statements = clusterStatements({ database: 'jobscribe', cluster: 'hpc' });

  it('every statement parses in ClickHouse’s own parser and keeps ON CLUSTER and the macros', async () => {
    for (const statement of statements) {
      const [row] = await queryRows<{ q: string }>(ch, 'SELECT formatQuery({s:String}) AS q', { s: statement });
      expect(row!.q).toContain('ON CLUSTER hpc');
    }
    const tables = statements.filter((s) => s.startsWith('CREATE TABLE IF NOT EXISTS jobscribe.'));
    expect(tables.map((s) => /jobscribe\.(\w+)/.exec(s)![1]).sort()).toEqual([...READ_MODEL_TABLES].sort());
    for (const s of tables) expect(s).toMatch(/ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}\/jobscribe\/\w+', '\{replica\}'/);
    const reads = statements.filter((s) => s.startsWith('CREATE TABLE IF NOT EXISTS jobscribe_all.'));
    expect(reads).toHaveLength(READ_MODEL_TABLES.length);
    for (const s of reads) expect(s).toMatch(/AS jobscribe\.(\w+)\nENGINE = Distributed\(hpc, jobscribe, \1\)$/);
    // a column added later reaches the replicated table and its Distributed read table, after both exist
    const alters = statements.filter((s) => s.startsWith('ALTER TABLE'));
    expect(alters.some((s) => s.startsWith('ALTER TABLE jobscribe.jobs ON CLUSTER hpc ADD COLUMN IF NOT EXISTS signal '))).toBe(true);
    expect(alters.some((s) => s.startsWith('ALTER TABLE jobscribe_all.jobs ON CLUSTER hpc ADD COLUMN IF NOT EXISTS signal '))).toBe(true);
    expect(statements.findIndex((s) => s.startsWith('ALTER TABLE'))).toBeGreaterThan(statements.findLastIndex((s) => s.startsWith('CREATE TABLE')));
  });

  it('creates, without replication, exactly the tables the embedded engine runs on', async () => {
    await ch.client.command({ query: 'CREATE DATABASE IF NOT EXISTS cluster_local' });
    // the tables, then the later files' columns (006_job_end.sql), as a replica runs them
    for (const s of statements.filter((x) => x.startsWith('CREATE TABLE IF NOT EXISTS jobscribe.') || x.startsWith('ALTER TABLE jobscribe.'))) {
      await ch.client.command({ query: unreplicated(s, 'cluster_local') });
    }
    const shape = (db: string) =>
      queryRows<Record<string, unknown>>(
        ch,
        `SELECT t.name AS name, any(t.engine_full) AS engine_full, any(t.sorting_key) AS sorting_key,
                groupArray((c.name, c.type, c.compression_codec, c.position)) AS columns
         FROM system.tables t JOIN system.columns c ON c.database = t.database AND c.table = t.name
         WHERE t.database = {db:String} AND t.name IN {names:Array(String)} GROUP BY t.name ORDER BY t.name`,
        { db, names: [...READ_MODEL_TABLES] },
      );
    const embedded = await shape('jobscribe');
    const sortColumns = (rows: Record<string, unknown>[]) => rows.map((r) => ({ ...r, columns: [...(r.columns as unknown[][])].sort((a, b) => Number(a[3]) - Number(b[3])) }));
    expect(embedded).toHaveLength(READ_MODEL_TABLES.length);
    expect(sortColumns(await shape('cluster_local'))).toEqual(sortColumns(embedded));
    expect((embedded[0]!.columns as unknown[]).length).toBeGreaterThan(5);
  });

  it('names the replicated engine of every MergeTree family with its own parameters', () => {
    expect(replicatedEngine('ReplacingMergeTree(last_seq, is_deleted)', 'd', 'jobs')).toBe("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/jobs', '{replica}', last_seq, is_deleted)");
    expect(replicatedEngine('ReplacingMergeTree', 'd', 'dead_letters')).toBe("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/dead_letters', '{replica}')");
    expect(replicatedEngine('MergeTree', 'd', 't')).toBe("ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t', '{replica}')");
    expect(() => replicatedEngine('Memory', 'd', 't')).toThrow(/cannot make a replicated engine/);
  });

  it('the CLI prints the script, and refuses a cluster name that is not an identifier (exit 2)', async () => {
    const ok = await runCli(['schema', '--clickhouse-cluster', 'hpc', '--database', 'hpcjobs']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('CREATE TABLE IF NOT EXISTS hpcjobs.jobs ON CLUSTER hpc');
    expect(ok.stdout).toContain('ENGINE = Distributed(hpc, hpcjobs, jobs);');
    const bad = await runCli(['schema', '--clickhouse-cluster', "hpc; DROP DATABASE x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid setting clickhouseCluster: invalid cluster name/);
    expect(bad.stdout).toBe('');
  });
});
