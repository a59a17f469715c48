/**
 * run_sql and describe_schema against real chDB, through an SDK Client over an in-memory
 * transport, on a read model projected from seeded simulator runs:
 * - every input of the hostile bank (test/support/hostileSql.ts) comes back as an isError
 *   result with its message, and the data is intact afterwards;
 * - legitimate queries answer exactly what the same query run directly answers, and what the
 *   raw simulator events say;
 * - over-cap answers are truncated and say so (rows, bytes in this process, bytes in ClickHouse);
 * - the execution layer alone (validator bypassed) refuses multi-statements, SETTINGS, DDL/DML,
 *   FORMAT / INTO OUTFILE and the file/url/remote/s3/executable table functions; what only the
 *   validator stops is listed too;
 * - describe_schema's columns equal DESCRIBE TABLE, each with a meaning, and its examples run.
 */
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import type { Identity } from '../../mcp/identity.js';
import { capResult, DEFAULT_RUN_SQL_LIMITS, TABLE_FUNCTIONS, validateSelect, type RunSqlLimits } from '../../mcp/safeSql.js';
import { SCHEMA_EXAMPLES } from '../../mcp/schemaDoc.js';
import { queryDeps, type McpDeps } from '../../mcp/server.js';
import { executeSelect, RUN_SQL_TABLES } from '../../mcp/tools/runSql.js';
import { TABLE_DOCS } from '../../schemas/clickhouse/columns.js';
import { READ_MODEL_TABLES } from '../../schemas/clickhouse/ddl.js';
import { HOSTILE_SQL } from '../support/hostileSql.js';
import { leakBank, SECRET, VICTIM, VICTIM_JOB } from '../support/leakSql.js';
import { queryRows } from '../support/chdb.js';
import { buildSimReadModel, type SimReadModel } from '../support/simReadModel.js';
import { connectMcp } from '../support/mcpClient.js';

const DB = 'mcp_sql_test';
const SIMS = [
  { seed: 31, cluster: 'alpha', nodes: 8, maxJobs: 150 },
  { seed: 32, cluster: 'beta', nodes: 4, maxJobs: 60 },
];
const OUTFILE = join(tmpdir(), `jobscribe-mcpsql-${process.pid}.csv`);

let rm: SimReadModel;
let client: Client;
const logged: string[] = [];

async function connect(deps: Partial<McpDeps> = {}, identity?: Identity): Promise<Client> {
  return connectMcp({ clickhouse: rm.ch.client, database: DB, logError: (m) => logged.push(m), ...deps }, identity, 'mcp-sql-test');
}

beforeAll(async () => {
  rm = await buildSimReadModel(DB, SIMS);
  client = await connect();
}, 120_000);

afterAll(async () => {
  await client?.close();
  await rm?.cleanup();
  rmSync(OUTFILE, { force: true });
});

async function call(c: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return c.callTool({ name, arguments: args });
}
async function ok<T = any>(name: string, args: Record<string, unknown>, c = client): Promise<T> {
  const r = await call(c, name, args);
  if (r.isError) throw new Error(`${name} failed: ${JSON.stringify(r.content)}`);
  const text = r.content.find((x) => x.type === 'text');
  expect(text && JSON.parse(text.text)).toEqual(r.structuredContent);
  return r.structuredContent as T;
}
async function fails(name: string, args: Record<string, unknown>, c = client): Promise<string> {
  const r = await call(c, name, args);
  expect(r.isError, `expected ${name} ${JSON.stringify(args).slice(0, 200)} to fail`).toBe(true);
  const text = r.content.find((x) => x.type === 'text');
  return text?.type === 'text' ? text.text : '';
}

/** The same query run directly (qualified by hand), 64-bit integers as strings like run_sql. */
async function direct(sql: string): Promise<Record<string, unknown>[]> {
  const rs = await rm.ch.client.query({
    query: `${sql} SETTINGS output_format_json_quote_64bit_integers = 1, output_format_json_quote_denormals = 1`,
    format: 'JSONEachRow',
  });
  return rs.json();
}

async function tableCounts(): Promise<Record<string, number>> {
  const rows = await queryRows<{ table: string; n: string }>(
    rm.ch,
    `SELECT table, toString(total_rows) AS n FROM system.tables WHERE database = {db:String}`,
    { db: DB },
  );
  return Object.fromEntries(rows.map((r) => [r.table, Number(r.n)]));
}

describe('tools/list', () => {
  it('lists run_sql and describe_schema as read-only tools with output schemas', async () => {
    const { tools } = await client.listTools();
    for (const name of ['run_sql', 'describe_schema']) {
      const t = tools.find((x) => x.name === name)!;
      expect(t, name).toBeDefined();
      expect(t.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: false });
      expect(t.outputSchema?.type).toBe('object');
    }
  });
});

describe('run_sql refuses the hostile bank', () => {
  it('answers every hostile input with isError and its reason; nothing changes', async () => {
    const before = await tableCounts();
    expect(before.jobs).toBeGreaterThan(0);
    for (const h of HOSTILE_SQL) {
      const sql = h.sql.replaceAll('jdb', DB);
      const error = new RegExp(h.error.source.replaceAll('jdb', DB));
      const text = await fails('run_sql', { sql });
      expect(text, h.sql.slice(0, 80)).toMatch(/^sql: /);
      expect(text, h.sql.slice(0, 80)).toMatch(error);
    }
    expect(await tableCounts()).toEqual(before);
    expect(existsSync('/tmp/jobs.csv')).toBe(false);
    expect(logged).toEqual([]); // all refused before reaching ClickHouse
  });

  it('the validator knows every table function the engine has', async () => {
    const rows = await queryRows<{ name: string }>(rm.ch, 'SELECT name FROM system.table_functions');
    const known = new Set<string>(TABLE_FUNCTIONS);
    const missing = rows.map((r) => r.name).filter((n) => !known.has(n) && n !== 'format');
    expect(missing).toEqual([]);
  });

  it('refuses arguments that would raise the caps, and restricted identities', async () => {
    expect(await fails('run_sql', { sql: 'SELECT 1', max_rows: 1001 })).toBe('max_rows: at most 1000 (it may lower the cap, not raise it)');
    expect(await fails('run_sql', { sql: 'SELECT 1', max_bytes: 262145 })).toContain('max_bytes: at most 262144');
    expect(await fails('run_sql', { sql: 'SELECT 1', max_rows: 0 })).toContain('max_rows: must be a whole number of rows > 0');
    expect(await fails('run_sql', {})).toContain('sql: required');
    const nobody = await connect({}, { subject: 'svc-bot', roles: [] });
    expect(await fails('run_sql', { sql: 'SELECT 1' }, nobody)).toContain('svc-bot maps to no scheduler user, so it may read no job rows');
    await nobody.close();
  });

  it('shows ClickHouse errors of a checked query as a fix-it line', async () => {
    const text = await fails('run_sql', { sql: 'SELECT no_such_column FROM jobs' });
    expect(text).toMatch(/^sql: ClickHouse refused the query \(UNKNOWN_IDENTIFIER\): .*no_such_column/);
    expect(text).not.toContain('In scope');
  });

  it('a CTE named out of its scope fails as an unknown table; it never reads a real one', async () => {
    await rm.ch.client.command({ query: 'CREATE TABLE IF NOT EXISTS default.a (x UInt8) ENGINE = Memory' });
    const text = await fails('run_sql', { sql: 'SELECT * FROM (WITH a AS (SELECT 1 AS x) SELECT * FROM a) AS t, a' });
    expect(text).toMatch(/^sql: ClickHouse refused the query \(UNKNOWN_TABLE\): .*jobscribe_cte_a/);
    await rm.ch.client.command({ query: 'DROP TABLE default.a' });
  });
});

describe('run_sql answers', () => {
  it('equals the same query run directly, with columns and types; 64-bit integers as strings', async () => {
    const out = await ok('run_sql', { sql: 'SELECT cluster, state, count() AS n FROM jobs FINAL GROUP BY cluster, state ORDER BY cluster, state' });
    expect(out.columns).toEqual([
      { name: 'cluster', type: 'LowCardinality(String)' },
      { name: 'state', type: 'LowCardinality(String)' },
      { name: 'n', type: 'UInt64' },
    ]);
    expect(out.rows).toEqual(await direct(`SELECT cluster, state, count() AS n FROM ${DB}.jobs FINAL GROUP BY cluster, state ORDER BY cluster, state`));
    expect(typeof out.rows[0].n).toBe('string');
    expect(out).toMatchObject({ truncated: false, row_count: out.rows.length, limits: { max_rows: 1000, max_bytes: 262144, max_execution_time_s: 30 } });
    expect(out.executed_sql).toContain(`\`${DB}\` . \`jobs\` FINAL`);
  });

  it('counts what the simulator emitted (independent of the tables)', async () => {
    const out = await ok('run_sql', {
      sql: `-- events per cluster and job count
        SELECT cluster, count() AS events, uniqExact(job_id) AS jobs FROM job_events FINAL
        WHERE name != 'DROP TABLE jobs; --' /* a comment */ GROUP BY cluster ORDER BY cluster`,
    });
    const expected = [...rm.events].sort(([a], [b]) => a.localeCompare(b)).map(([cluster, evs]) => ({
      cluster,
      events: String(evs.length),
      jobs: String(new Set(evs.map((e) => e.job_id)).size),
    }));
    expect(out.rows).toEqual(expected);
  });

  it('CTEs, joins, subqueries, ARRAY JOIN and string literals give the direct answers', async () => {
    const cases: Array<[string, string]> = [
      [
        'WITH w AS (SELECT user, wait_s FROM jobs FINAL WHERE wait_s IS NOT NULL) SELECT user, round(avg(wait_s), 3) AS avg_wait, count() AS n FROM w GROUP BY user ORDER BY user',
        `WITH w AS (SELECT user, wait_s FROM ${DB}.jobs FINAL WHERE wait_s IS NOT NULL) SELECT user, round(avg(wait_s), 3) AS avg_wait, count() AS n FROM w GROUP BY user ORDER BY user`,
      ],
      [
        "SELECT j.cluster, j.job_id, count() AS events FROM jobs AS j FINAL JOIN job_events e ON j.cluster = e.cluster AND j.job_id = e.job_id WHERE j.state = 'failed' GROUP BY j.cluster, j.job_id ORDER BY j.cluster, j.job_id LIMIT 20",
        `SELECT j.cluster, j.job_id, count() AS events FROM ${DB}.jobs AS j FINAL JOIN ${DB}.job_events e ON j.cluster = e.cluster AND j.job_id = e.job_id WHERE j.state = 'failed' GROUP BY j.cluster, j.job_id ORDER BY j.cluster, j.job_id LIMIT 20`,
      ],
      [
        "SELECT node, count() AS jobs FROM jobs FINAL ARRAY JOIN nodes AS node WHERE job_id IN (SELECT job_id FROM job_events WHERE name = 'start') GROUP BY node ORDER BY jobs DESC, node",
        `SELECT node, count() AS jobs FROM ${DB}.jobs FINAL ARRAY JOIN nodes AS node WHERE job_id IN (SELECT job_id FROM ${DB}.job_events WHERE name = 'start') GROUP BY node ORDER BY jobs DESC, node`,
      ],
      [
        "SELECT 'it''s; -- not a comment' AS s, 'my settings' AS t, 'a\\\\b' AS u, concat(name, '#$') AS v, '\\xC3\\xA9' AS w, 'é' AS x FROM jobs FINAL ORDER BY cluster, job_id LIMIT 3",
        `SELECT 'it''s; -- not a comment' AS s, 'my settings' AS t, 'a\\\\b' AS u, concat(name, '#$') AS v, '\\xC3\\xA9' AS w, 'é' AS x FROM ${DB}.jobs FINAL ORDER BY cluster, job_id LIMIT 3`,
      ],
    ];
    for (const [sql, same] of cases) {
      const out = await ok('run_sql', { sql });
      expect(out.rows.length, sql).toBeGreaterThan(0);
      expect(out.rows, sql).toEqual(await direct(same));
    }
  });
});

describe('run_sql for plain users: only the rows they may read, wherever the query reads a table', () => {
  let owner: string;
  let mine: number;
  let myEvents: number;
  let plain: Client;
  const clients: Client[] = [];
  const as = async (identity: Identity, deps: Partial<McpDeps> = {}) => {
    const c = await connect(deps, identity);
    clients.push(c);
    return c;
  };
  const one = async (sql: string, c: Client) => (await ok('run_sql', { sql }, c)).rows;

  beforeAll(async () => {
    // The user with the most jobs, and their counts, straight from the tables.
    const [top] = await direct(`SELECT user, count() AS n FROM ${DB}.jobs FINAL GROUP BY user ORDER BY n DESC, user LIMIT 1`);
    owner = String(top!.user);
    mine = Number(top!.n);
    const [ev] = await direct(
      `SELECT count() AS n FROM ${DB}.job_events FINAL WHERE (cluster, job_id) IN (SELECT cluster, job_id FROM ${DB}.jobs FINAL WHERE user = '${owner}')`,
    );
    myEvents = Number(ev!.n);
    const [all] = await direct(`SELECT count() AS n FROM ${DB}.jobs FINAL`);
    expect(mine).toBeGreaterThan(0);
    expect(Number(all!.n)).toBeGreaterThan(mine); // other users' jobs exist to be hidden
    await rm.ch.client.command({
      query: `INSERT INTO ${DB}.actions (cluster, command_id, action, requested_by, requested_user, status, version) VALUES
        ('alpha', 'c-own', 'cancel', '${owner}@site', '${owner}', 'accepted', 1), ('alpha', 'c-other', 'hold', 'eve@site', 'eve', 'accepted', 1)`,
    });
    plain = await as({ subject: `${owner}@site`, user: owner, roles: [] });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await rm.ch.client.command({ query: `DELETE FROM ${DB}.actions WHERE command_id IN ('c-own', 'c-other')` });
  });

  it('jobs and job_events hold only their own jobs, through subqueries, CTEs, joins and IN', async () => {
    expect(await one('SELECT DISTINCT user FROM jobs FINAL', plain)).toEqual([{ user: owner }]);
    expect(await one('SELECT count() AS n FROM jobs FINAL', plain)).toEqual([{ n: String(mine) }]);
    expect(await one('SELECT count() AS n FROM job_events FINAL', plain)).toEqual([{ n: String(myEvents) }]);
    const hidden = [
      `SELECT count() AS n FROM (SELECT * FROM jobs FINAL) WHERE user != '${owner}'`,
      `WITH everyone AS (SELECT user FROM jobs) SELECT count() AS n FROM everyone WHERE user != '${owner}'`,
      `SELECT (SELECT count() FROM jobs WHERE user != '${owner}') AS n`,
      `SELECT count() AS n FROM job_events e JOIN jobs j ON e.cluster = j.cluster AND e.job_id = j.job_id WHERE j.user != '${owner}'`,
      `SELECT count() AS n FROM job_events WHERE (cluster, job_id) NOT IN (SELECT cluster, job_id FROM jobs)`,
      `SELECT count() AS n FROM (SELECT user FROM jobs UNION ALL SELECT user FROM job_events) WHERE user != '${owner}' AND user != ''`,
    ];
    for (const sql of hidden) expect(await one(sql, plain), sql).toEqual([{ n: '0' }]);
    // The same queries as an admin do see other users' rows (the filters are what hides them).
    expect(Number((await one(hidden[0]!, client))[0]!.n)).toBeGreaterThan(0);
  });

  it("actions: their own commands only (approvers and admins see every one); dead_letters is for admins", async () => {
    const ids = 'SELECT command_id FROM actions FINAL WHERE command_id IN (\'c-own\', \'c-other\') ORDER BY command_id';
    expect(await one(ids, plain)).toEqual([{ command_id: 'c-own' }]);
    const approver = await as({ subject: 'ann@site', user: 'ann', roles: ['approver'] });
    expect(await one(ids, approver)).toEqual([{ command_id: 'c-other' }, { command_id: 'c-own' }]);
    expect(await fails('run_sql', { sql: 'SELECT count() FROM dead_letters' }, plain)).toMatch(/^sql: table dead_letters is not available: run_sql reads only the tables job_events, jobs, actions/);
    expect((await ok('run_sql', { sql: 'SELECT count() AS n FROM dead_letters' })).rows).toHaveLength(1);
    // describe_schema tells the same: the tables this identity may read, and whose rows.
    const doc = await ok<{ tables: { name: string }[]; rules: string[] }>('describe_schema', {}, plain);
    expect(doc.tables.map((t) => t.name).sort()).toEqual(['actions', 'job_events', 'jobs']);
    expect(doc.rules[0]).toContain('only your own rows of jobs, job_events, actions');
    expect(await fails('describe_schema', { table: 'dead_letters' }, plain)).toContain("table: 'dead_letters' is not one of");
    expect((await ok<{ tables: { name: string }[] }>('describe_schema', {})).tables.map((t) => t.name)).toContain('dead_letters');
  });

  it('the leak bank: no answer and no error of a plain user holds another user\'s value, and no oracle answers', async () => {
    await rm.ch.client.command({
      query: `INSERT INTO ${DB}.jobs (cluster, job_id, user, name) VALUES ('alpha', ${VICTIM_JOB}, '${VICTIM}', '${SECRET}_job')`,
    });
    await rm.ch.client.command({
      query: `INSERT INTO ${DB}.job_events (cluster, job_id, seq, name, context, raw, user) VALUES
        ('alpha', ${VICTIM_JOB}, 0, 'submit', '{"note":"${SECRET}_ctx"}', '{"x":"${SECRET}_raw"}', '${VICTIM}')`,
    });
    await rm.ch.client.command({
      query: `INSERT INTO ${DB}.actions (cluster, command_id, action, requested_by, requested_user, status, reason, args, version) VALUES
        ('alpha', 'c-victim', 'cancel', '${VICTIM}@site', '${VICTIM}', 'accepted', '${SECRET}_reason', '{"why":"${SECRET}_args"}', 1)`,
    });
    try {
      // Every other user of the simulation is foreign too.
      const others = (await direct(`SELECT DISTINCT user FROM ${DB}.jobs WHERE user != '${owner}' AND length(user) >= 3`)).map((r) => String(r.user));
      const foreign = new RegExp(`${SECRET}|${VICTIM}|${VICTIM_JOB}|LEAK\\|(?!(${owner}|'))|\\b(${others.join('|')})\\b`);
      const seen: string[] = [];
      for (const sql of leakBank(owner)) {
        const r = await call(plain, 'run_sql', { sql });
        // What the agent wrote itself may come back (executed_sql, a syntax error's echo): only
        // values it did not write count.
        const own = [...sql.matchAll(/'([^']*)'/g)].map((m) => m[1]!).concat(sql.includes(VICTIM_JOB) ? [VICTIM_JOB] : []);
        let text = JSON.stringify(r.content) + JSON.stringify(r.structuredContent ?? {});
        for (const s of own.filter((x) => x.length > 2).sort((a, b) => b.length - a.length)) text = text.split(s).join('');
        expect(text, `${sql}\n→ ${text.slice(0, 600)}`).not.toMatch(foreign);
        // An oracle answers when its throwIf fires (a refusal of the query's shape says nothing).
        if (/throwIf/.test(sql)) expect(text, `${sql}: an oracle that answers`).not.toMatch(/THROW_IF|throwIf\(\) fired/);
        seen.push(r.isError ? 'error' : 'answer');
      }
      // The bank exercises both paths (refusals and answers), and an admin does see the victim.
      expect(seen).toContain('error');
      expect(seen).toContain('answer');
      const admin = await call(client, 'run_sql', { sql: `SELECT count() FROM jobs WHERE throwIf(user = '${VICTIM}', 'yes') = 0` });
      expect(JSON.stringify(admin.content)).toMatch(/THROW_IF/);
    } finally {
      await rm.ch.client.command({ query: `DELETE FROM ${DB}.jobs WHERE job_id = ${VICTIM_JOB}` });
      await rm.ch.client.command({ query: `DELETE FROM ${DB}.job_events WHERE job_id = ${VICTIM_JOB}` });
      await rm.ch.client.command({ query: `DELETE FROM ${DB}.actions WHERE command_id = 'c-victim'` });
    }
  });

  it('bare user reads the column where there is one and NULL where ClickHouse would answer its own user', async () => {
    for (const c of [client, plain]) {
      expect(await one('SELECT user AS u FROM (SELECT 1 AS a)', c)).toEqual([{ u: null }]);
      expect(await one('SELECT `user` AS u', c)).toEqual([{ u: null }]);
      expect(await one('SELECT (SELECT user) AS u', c)).toEqual([{ u: null }]);
    }
    expect(await one(`SELECT DISTINCT user FROM jobs WHERE user = '${owner}'`, client)).toEqual([{ user: owner }]);
    expect(await one('SELECT DISTINCT u FROM (SELECT user AS u FROM jobs)', plain)).toEqual([{ u: owner }]);
  });

  it('a user name that is SQL is a value, not SQL; the jobDetails "all" policy opens jobs but not actions', async () => {
    const sly = await as({ subject: 'sly', user: "x' OR 1 = 1 OR user != '", roles: [] });
    expect(await one('SELECT count() AS n FROM jobs', sly)).toEqual([{ n: '0' }]);
    expect(await one('SELECT count() AS n FROM job_events', sly)).toEqual([{ n: '0' }]);
    const open = await as({ subject: `${owner}@site`, user: owner, roles: [] }, { jobDetails: 'all' });
    const [all] = await direct(`SELECT count() AS n FROM ${DB}.jobs FINAL`);
    expect(await one('SELECT count() AS n FROM jobs FINAL', open)).toEqual([{ n: String(all!.n) }]);
    expect(await one("SELECT command_id FROM actions WHERE command_id IN ('c-own', 'c-other')", open)).toEqual([{ command_id: 'c-own' }]);
  });
});

describe('run_sql caps', () => {
  const allEvents = `SELECT cluster, job_id, seq, name FROM job_events FINAL ORDER BY cluster, job_id, seq`;
  const allEventsDirect = `SELECT cluster, job_id, seq, name FROM ${DB}.job_events FINAL ORDER BY cluster, job_id, seq`;

  it('cuts at 1000 rows by default and says so; the rows are the first 1000', async () => {
    const total = [...rm.events.values()].reduce((n, evs) => n + evs.length, 0);
    expect(total).toBeGreaterThan(1000);
    const out = await ok('run_sql', { sql: allEvents });
    expect(out.row_count).toBe(1000);
    expect(out.truncated).toBe(true);
    expect(out.truncated_reason).toContain('more than 1000 rows');
    expect(out.rows).toEqual((await direct(allEventsDirect)).slice(0, 1000));
  });

  it('max_rows lowers the row cap; exactly the cap is not truncated', async () => {
    const five = await ok('run_sql', { sql: allEvents, max_rows: 5 });
    expect(five).toMatchObject({ row_count: 5, truncated: true });
    const exact = await ok('run_sql', { sql: `${allEvents} LIMIT 5`, max_rows: 5 });
    expect(exact).toMatchObject({ row_count: 5, truncated: false });
    expect(exact.truncated_reason).toBeUndefined();
  });

  it('max_bytes cuts by bytes of row JSON and says so', async () => {
    const out = await ok('run_sql', { sql: 'SELECT raw FROM job_events FINAL ORDER BY cluster, job_id, seq', max_bytes: 10_000 });
    const all = await direct(`SELECT raw FROM ${DB}.job_events FINAL ORDER BY cluster, job_id, seq`);
    expect(out.truncated).toBe(true);
    expect(out.truncated_reason).toContain('more than 10000 bytes of rows');
    expect(Buffer.byteLength(JSON.stringify(out.rows))).toBeLessThanOrEqual(10_000);
    expect(out.rows).toEqual(all.slice(0, out.row_count));
    expect(Buffer.byteLength(JSON.stringify(all.slice(0, out.row_count + 1)))).toBeGreaterThan(10_000);
  });

  it('an answer far over the byte cap is cut in ClickHouse and stays under 256 KiB here', async () => {
    const out = await ok('run_sql', { sql: 'SELECT job_id, repeat(raw, 200) AS big FROM job_events ORDER BY cluster, job_id, seq' });
    expect(out.truncated).toBe(true);
    expect(out.truncated_reason).toContain('bytes');
    expect(Buffer.byteLength(JSON.stringify(out.rows))).toBeLessThanOrEqual(262_144);
    expect(out.row_count).toBeLessThan(1000);
  });

  it('a single row over the byte cap is not shipped; the answer says why', async () => {
    const out = await ok('run_sql', { sql: 'SELECT groupArray(raw) AS all_raw FROM job_events' });
    expect(out).toMatchObject({ rows: [], row_count: 0, truncated: true });
    expect(out.truncated_reason).toContain('more than 262144 bytes');
    const empty = await ok('run_sql', { sql: "SELECT raw FROM job_events WHERE name = 'no such event'" });
    expect(empty).toMatchObject({ rows: [], truncated: false });
  });

  it('column names and types count too: an answer of huge column metadata is refused with what to do', async () => {
    const sql = `SELECT ${Array.from({ length: 120 }, (_, i) => `tuple(*) AS t${i}`).join(', ')} FROM jobs LIMIT 1`;
    const r = await call(client, 'run_sql', { sql });
    expect(r.isError).toBe(true);
    const text = JSON.stringify(r.content);
    expect(text).toMatch(/sql: the answer's 120 columns take \d+ bytes of names and types \(at most 16384\): select fewer columns/);
    expect(Buffer.byteLength(text)).toBeLessThan(1000);
    const fine = await ok('run_sql', { sql: 'SELECT tuple(*) AS t FROM jobs LIMIT 1' });
    expect(fine.columns).toHaveLength(1);
  });

  it('a query over the time limit fails with a fix-it message', async () => {
    const slow = await connect({ limits: { sql: { maxExecutionTimeS: 1 } } });
    const text = await fails('run_sql', { sql: 'SELECT count() FROM job_events a, job_events b, job_events c, job_events d' }, slow);
    expect(text).toContain('the query ran longer than 1 s');
    await slow.close();
  });

  it('a query over the memory limit fails with a fix-it message', async () => {
    const small = await connect({ limits: { sql: { maxMemoryBytes: 20_000_000 } } });
    const text = await fails('run_sql', { sql: 'SELECT groupArray(repeat(raw, 100)) FROM job_events' }, small);
    expect(text).toContain('more than 20000000 bytes of memory');
    await small.close();
  });
});

describe('execution layer alone (validator bypassed)', () => {
  const limits: RunSqlLimits = DEFAULT_RUN_SQL_LIMITS;
  const deps = () => queryDeps({ clickhouse: rm.ch.client, database: DB });
  /** The execution layer and the caps, without the validator. */
  const run = async (sql: string) => {
    const answer = await executeSelect(deps(), sql, limits);
    return { columns: answer.columns, rows: capResult(answer.rows, limits.maxRows, limits.maxBytes, answer.rowsBeforeLimit).rows };
  };

  it('why the text guard exists: chDB runs "a; b" as two statements', async () => {
    await rm.ch.client.command({ query: `CREATE TABLE ${DB}.scratch (a UInt8) ENGINE = Memory` });
    await rm.ch.client.query({ query: `SELECT 1; DROP TABLE ${DB}.scratch`, format: 'TabSeparated' }).then((r) => r.text());
    expect((await tableCounts()).scratch).toBeUndefined();
  });

  it('refuses a second statement, comments, heredocs and SETTINGS before ClickHouse sees them', async () => {
    for (const sql of [
      `SELECT 1) ; DROP TABLE ${DB}.jobs ; SELECT (1`,
      `SELECT * FROM (SELECT count() FROM file('/etc/hostname', 'LineAsString') SETTINGS readonly = 0)`,
      'SELECT 1 /*',
      'SELECT 1) -- ',
      'SELECT $$x',
    ]) {
      await expect(run(sql), sql).rejects.toThrow(/execution layer refused/);
    }
  });

  it('readonly = 1 refuses DDL, DML and the I/O table functions; FORMAT and INTO OUTFILE cannot parse', async () => {
    const before = await tableCounts();
    const refused: Array<[string, RegExp]> = [
      [`DROP TABLE ${DB}.jobs`, /Syntax error/],
      [`INSERT INTO ${DB}.jobs SELECT * FROM ${DB}.jobs`, /Syntax error/],
      [`SELECT 1 FORMAT CSV`, /Syntax error/],
      [`SELECT 1 INTO OUTFILE '${OUTFILE}'`, /Syntax error/],
      [`SELECT * FROM file('/etc/hostname', 'LineAsString')`, /readonly/i],
      [`SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')`, /readonly/i],
      [`SELECT * FROM remote('127.0.0.1', system.one)`, /readonly/i],
      [`SELECT * FROM s3('http://127.0.0.1:1/bucket/k.csv', 'CSV', 'a String')`, /readonly/i],
      [`SELECT * FROM executable('id', 'TSV', 'x String')`, /readonly/i],
      [`SELECT count() FROM ${DB}.jobs WHERE job_id IN (SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a UInt64'))`, /readonly/i],
    ];
    for (const [sql, error] of refused) await expect(run(sql), sql).rejects.toThrow(error);
    expect(await tableCounts()).toEqual(before);
    expect(existsSync(OUTFILE)).toBe(false);
  });

  it('every query runs with the read-only settings, and they do not leak into the session', async () => {
    const { rows } = await run("SELECT getSetting('readonly') AS r, getSetting('max_execution_time') AS t, getSetting('max_memory_usage') AS m, getSetting('allow_ddl') AS d");
    expect(rows[0]).toEqual({ r: 1, t: 30, m: 1024 ** 3, d: false });
    await rm.ch.client.command({ query: `CREATE TABLE ${DB}.scratch2 (a UInt8) ENGINE = Memory` });
    await rm.ch.client.insert({ table: `${DB}.scratch2`, values: [{ a: 1 }], format: 'JSONEachRow' });
    await rm.ch.client.command({ query: `DROP TABLE ${DB}.scratch2` });
  });

  it('what only the validator stops: file(), system tables, merge() run at this layer', async () => {
    // Recorded so a change in chDB shows up here; each is in the hostile bank and refused there.
    expect((await run("SELECT length(file('/etc/hostname')) > 0 AS read")).rows).toEqual([{ read: 1 }]);
    expect((await run('SELECT count() > 0 AS n FROM system.tables')).rows).toEqual([{ n: 1 }]);
    expect((await run("SELECT dummy FROM merge('system', '^one')")).rows).toEqual([{ dummy: 0 }]);
    for (const sql of ["SELECT file('/etc/hostname')", 'SELECT count() FROM system.tables', "SELECT dummy FROM merge('system', '^one')"]) {
      expect(validateSelect(sql, { database: DB, tables: RUN_SQL_TABLES }).ok).toBe(false);
    }
  });
});

describe('describe_schema', () => {
  it('lists every allowlisted table with the columns and types of DESCRIBE TABLE, each with a meaning', async () => {
    const doc = await ok('describe_schema', {});
    expect(doc.database).toBe(DB);
    expect(doc.tables.map((t: any) => t.name)).toEqual([...READ_MODEL_TABLES]);
    for (const t of doc.tables) {
      const described = await queryRows<{ name: string; type: string }>(rm.ch, `DESCRIBE TABLE ${DB}.${t.name}`);
      expect(t.columns.map((c: any) => ({ name: c.name, type: c.type })), t.name).toEqual(described.map((d) => ({ name: d.name, type: d.type })));
      for (const c of t.columns) expect(c.description.length, `${t.name}.${c.name}`).toBeGreaterThan(5);
      // No documented column that the table lacks (a DDL change must update columns.ts).
      expect(Object.keys(TABLE_DOCS[t.name as keyof typeof TABLE_DOCS].columns).sort(), t.name).toEqual(described.map((d) => d.name).sort());
      expect(t.description).toContain('Key:');
    }
    expect(doc.rules.join(' ')).toContain('FINAL');
    expect(doc.examples.length).toBeGreaterThanOrEqual(5);
  });

  it('filters one table; refuses an unknown one', async () => {
    const doc = await ok('describe_schema', { table: 'job_events' });
    expect(doc.tables.map((t: any) => t.name)).toEqual(['job_events']);
    expect(await fails('describe_schema', { table: 'log_records' })).toBe(
      `table: 'log_records' is not one of ${RUN_SQL_TABLES.join(', ')}`,
    );
  });

  it('every example query runs through run_sql', async () => {
    for (const ex of SCHEMA_EXAMPLES) {
      const out = await ok('run_sql', { sql: ex.sql });
      expect(out.columns.length, ex.question).toBeGreaterThan(0);
    }
    // The failure examples find the simulator's failed jobs.
    const failed = await ok('run_sql', { sql: SCHEMA_EXAMPLES[5]!.sql });
    const direct1 = await direct(
      `SELECT node, count() AS failed_jobs FROM ${DB}.jobs FINAL ARRAY JOIN nodes AS node WHERE state = 'failed' GROUP BY node ORDER BY failed_jobs DESC LIMIT 10`,
    );
    expect(failed.rows.map((r: any) => r.failed_jobs)).toEqual(direct1.map((r) => r.failed_jobs));
    // How failed jobs ended: every failed job once, under the one exit rule
    const ended = await ok('run_sql', { sql: SCHEMA_EXAMPLES[6]!.sql });
    const [all] = await direct(`SELECT count() AS n FROM ${DB}.jobs FINAL WHERE state = 'failed'`);
    expect(ended.rows.reduce((n: number, r: any) => n + Number(r.jobs), 0)).toBe(Number(all!.n));
    expect(ended.rows.map((r: any) => r.ended)).toContain('exit 1');
  });
});

describe('run_sql after a replay', () => {
  it('counts every row once although the replay left physical duplicates (reads as FINAL)', async () => {
    const finalCount = Number((await direct(`SELECT count() AS n FROM ${DB}.job_events FINAL`))[0]!.n);
    // What `replay --from-offset` does under other batch boundaries: the same rows, a new insert.
    await rm.ch.client.command({
      query: `INSERT INTO ${DB}.job_events SELECT * FROM ${DB}.job_events WHERE cluster = 'beta'`,
      clickhouse_settings: { insert_deduplication_token: `replay-test-${Date.now()}` },
    });
    const physical = Number((await direct(`SELECT count() AS n FROM ${DB}.job_events`))[0]!.n);
    expect(physical).toBeGreaterThan(finalCount);
    const answer = await ok<{ rows: { n: string }[] }>('run_sql', { sql: 'SELECT count() AS n FROM job_events' });
    expect(Number(answer.rows[0]!.n)).toBe(finalCount);
    const joined = await ok<{ rows: { n: string }[] }>('run_sql', {
      sql: "SELECT count() AS n FROM job_events e JOIN jobs j ON e.cluster = j.cluster AND e.job_id = j.job_id WHERE e.cluster = 'beta'",
    });
    const want = Number((await direct(`SELECT count() AS n FROM ${DB}.job_events AS e FINAL JOIN ${DB}.jobs AS j FINAL ON e.cluster = j.cluster AND e.job_id = j.job_id WHERE e.cluster = 'beta'`))[0]!.n);
    expect(Number(joined.rows[0]!.n)).toBe(want);
  });
});

describe('run_sql budgets: one identity cannot stall the others', () => {
  it("another identity's get_job answers within 1 s while a heavy run_sql runs; the same identity's second query is refused; the user's time limit cuts it", async () => {
    const deps: Partial<McpDeps> = {
      clickhouse: rm.ch.connect('mcp'),
      sqlClickhouse: { users: rm.ch.connect('sql-users'), admins: rm.ch.connect('sql-admins') },
      limits: { sql: { maxExecutionTimeS: 6, userMaxExecutionTimeS: 3 } },
    };
    // The heavy query's user has the most jobs (their rows are what it crosses); get_job asks for another user's job.
    const [busiest] = await direct(`SELECT user FROM ${DB}.jobs FINAL GROUP BY user ORDER BY count() DESC, user LIMIT 1`);
    const [top] = await direct(`SELECT user, cluster, toString(job_id) AS id FROM ${DB}.jobs FINAL WHERE user != '${String(busiest!.user)}' ORDER BY job_id LIMIT 1`);
    const heavyUser = await connect(deps, { subject: 'heavy@site', user: String(busiest!.user), roles: [] });
    const other = await connect(deps, { subject: `${String(top!.user)}@site`, user: String(top!.user), roles: [] });
    const admin = await connect(deps, { subject: 'root@site', user: 'root', roles: ['admin'] });
    try {
      const heavySql = 'SELECT count() AS n FROM job_events AS a, job_events AS b, job_events AS c, jobs AS d WHERE sipHash64(a.raw, b.raw, c.raw, d.name) % 7 = 1';
      const started = Date.now();
      const heavy = call(admin, 'run_sql', { sql: heavySql }); // admins' connection, 6 s
      const heavyPlain = call(heavyUser, 'run_sql', { sql: heavySql }); // users' connection, 3 s
      await new Promise((r) => setTimeout(r, 300));
      // The same identity again: refused at once, not queued.
      const again = await call(heavyUser, 'run_sql', { sql: 'SELECT 1 AS one' });
      expect(again.isError).toBe(true);
      expect(JSON.stringify(again.content)).toContain('one query at a time per identity');
      // Another identity's purpose-built tool does not wait behind either.
      const t0 = Date.now();
      const job = await call(other, 'get_job', { cluster: String(top!.cluster), job_id: String(top!.id) });
      const took = Date.now() - t0;
      expect(job.isError, JSON.stringify(job.content)).toBeFalsy();
      expect(took, `get_job took ${took} ms behind a heavy run_sql`).toBeLessThan(1000);
      // The plain user's query ends at their time limit with a fix-it message.
      const cut = await heavyPlain;
      expect(cut.isError).toBe(true);
      expect(JSON.stringify(cut.content)).toMatch(/ran longer than 3 s/);
      expect(Date.now() - started).toBeLessThan(15_000);
      // And once it ended, that identity may query again.
      expect((await call(heavyUser, 'run_sql', { sql: 'SELECT 1 AS one' })).isError).toBeFalsy();
      await heavy; // the admin's query ends (answer or its 6 s limit)
    } finally {
      await Promise.all([heavyUser.close(), other.close(), admin.close()]);
    }
  }, 60_000);
});
