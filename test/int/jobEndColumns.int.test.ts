/**
 * schemas/clickhouse/006_job_end.sql on chDB: a data directory made before the exit columns
 * (jobs as 001-005 create it, with a row in it) upgrades in place: the new columns appear with
 * their defaults, urgency becomes nullable, the old row is still there, and applying every file
 * again changes nothing. A rebuild's suffixed tables get the same columns as the live ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allStatements, loadDdlFiles, readModelStatements, splitStatements } from '../../schemas/clickhouse/ddl.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';

const DB = 'job_end_upgrade';
let ch: Awaited<ReturnType<typeof openTestClickHouse>>;

beforeAll(async () => {
  ch = await openTestClickHouse('job_end_boot');
}, 60_000);
afterAll(async () => ch?.cleanup());

const columns = async (table: string) =>
  queryRows<{ name: string; type: string }>(ch, 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position', {
    db: DB,
    t: table,
  });

describe('the job end columns (006_job_end.sql)', () => {
  it('upgrade a data directory made before them, keep its rows, and apply again as a no-op', async () => {
    await ch.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${DB}` });
    const before = loadDdlFiles().filter((f) => f.version < 6);
    for (const f of before) for (const s of splitStatements(f.sql)) await ch.client.command({ query: s.replaceAll('{db}', DB).replaceAll('{suffix}', '') });
    expect((await columns('jobs')).map((c) => c.name)).not.toContain('signal');
    await ch.client.command({
      query: `INSERT INTO ${DB}.jobs (cluster, scheduler, job_id, state, exit_code, urgency, t_submit, last_seq, last_event_ts)
              VALUES ('c', 'slurm', 7, 'failed', 139, 0, now64(6), 3, now64(6))`,
    });

    for (let round = 0; round < 2; round++) for (const s of allStatements(DB)) await ch.client.command({ query: s });

    const cols = await columns('jobs');
    const names = cols.map((c) => c.name);
    expect(names.slice(names.indexOf('exit_code'), names.indexOf('exit_code') + 4)).toEqual(['exit_code', 'signal', 'signal_name', 'oom']);
    expect(names[names.indexOf('urgency') + 1]).toBe('nice');
    const type = (n: string) => cols.find((c) => c.name === n)?.type;
    expect([type('signal'), type('signal_name'), type('oom'), type('urgency'), type('nice')]).toEqual([
      'Nullable(UInt8)',
      'LowCardinality(String)',
      'Bool',
      'Nullable(Int32)',
      'Nullable(Int32)',
    ]);
    const rows = await queryRows(ch, `SELECT toString(job_id) AS job_id, exit_code, signal, signal_name, oom, urgency, nice FROM ${DB}.jobs FINAL`);
    expect(rows).toEqual([{ job_id: '7', exit_code: 139, signal: null, signal_name: '', oom: false, urgency: 0, nice: null }]);
    // the live table now takes rows with the new columns
    await ch.client.command({
      query: `INSERT INTO ${DB}.jobs (cluster, scheduler, job_id, state, exit_code, signal, signal_name, oom, urgency, t_submit, last_seq, last_event_ts)
              VALUES ('c', 'slurm', 7, 'failed', NULL, 11, 'SIGSEGV', false, NULL, now64(6), 4, now64(6))`,
    });
    expect(await queryRows(ch, `SELECT exit_code, signal, signal_name, urgency FROM ${DB}.jobs FINAL`)).toEqual([
      { exit_code: null, signal: 11, signal_name: 'SIGSEGV', urgency: null },
    ]);
  }, 60_000);

  it('a rebuild creates its suffixed tables with the same columns as the live ones', async () => {
    for (const s of readModelStatements(DB, '__rebuild')) await ch.client.command({ query: s });
    expect(await columns('jobs__rebuild')).toEqual(await columns('jobs'));
  }, 60_000);
});
