/**
 * The run_sql validator (mcp/safeSql.ts) on its own: a bank of hostile inputs, each refused with
 * a message naming the problem, and legitimate queries (CTEs, subqueries, strings holding DROP or
 * ';', comments) accepted and rewritten to the configured database. The same bank runs through
 * the MCP tool and the execution layer in test/int/mcpSql.int.test.ts.
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  capResult,
  executionSql,
  guardStatementText,
  stringLiteral,
  validateSelect,
  BYTES_COLUMN,
  DEFAULT_RUN_SQL_LIMITS,
  ROWS_COLUMN,
  TABLE_FUNCTIONS,
} from '../../mcp/safeSql.js';
import { HOSTILE_SQL } from '../support/hostileSql.js';

const POLICY = { database: 'jdb', tables: ['jobs', 'job_events', 'dead_letters', 'actions'] };

const accept = (sql: string) => {
  const r = validateSelect(sql, POLICY);
  if (!r.ok) throw new Error(`refused ${JSON.stringify(sql)}: ${r.error}`);
  return r;
};
const refusal = (sql: string) => {
  const r = validateSelect(sql, POLICY);
  if (r.ok) throw new Error(`accepted ${JSON.stringify(sql.slice(0, 200))} as ${r.sql.slice(0, 200)}`);
  return r.error;
};

describe('hostile inputs', () => {
  it('the bank holds at least 50 cases', () => {
    expect(HOSTILE_SQL.length).toBeGreaterThanOrEqual(50);
    expect(new Set(HOSTILE_SQL.map((h) => h.sql)).size).toBe(HOSTILE_SQL.length);
  });

  for (const h of HOSTILE_SQL) {
    it(`refuses ${h.kind}: ${JSON.stringify(h.sql.length > 90 ? `${h.sql.slice(0, 90)}…` : h.sql)}`, () => {
      const error = refusal(h.sql);
      expect(error).toMatch(h.error);
      // Every refusal is a sentence that says what is wrong, never an internal error.
      expect(error.length).toBeGreaterThan(15);
    });
  }

  it('refuses every table function of the engine list, in FROM and as a call', () => {
    for (const f of TABLE_FUNCTIONS) {
      expect(refusal(`SELECT * FROM ${f}('x')`)).toMatch(/table function|not allowed/);
      expect(refusal(`SELECT ${f}('x') FROM jobs`)).toMatch(/not allowed/);
    }
  });
});

describe('legitimate queries', () => {
  it('rewrites bare table names to the configured database and keeps the rest', () => {
    expect(accept('SELECT count() FROM jobs FINAL').sql).toBe('SELECT count ( ) FROM `jdb` . `jobs` FINAL');
    expect(accept('select state, count() AS n from jdb.jobs final group by state order by n desc limit 5;').sql).toBe(
      'select state , count ( ) AS n from jdb . jobs final group by state order by n desc limit 5',
    );
    expect(accept('SELECT 1').tables).toEqual([]);
  });

  it('accepts CTEs, renaming them so they cannot resolve to a real table', () => {
    const r = accept(`WITH recent AS (SELECT * FROM jobs FINAL WHERE t_submit > now() - INTERVAL 1 DAY)
      SELECT user, count() FROM recent GROUP BY user`);
    expect(r.sql).toBe(
      'WITH `jobscribe_cte_recent` AS ( SELECT * FROM `jdb` . `jobs` FINAL WHERE t_submit > now ( ) - INTERVAL 1 DAY ) ' +
        'SELECT user , count ( ) FROM `jobscribe_cte_recent` AS `recent` GROUP BY user',
    );
    expect(r.tables).toEqual(['jobs']);
    const two = accept('WITH a AS (SELECT job_id FROM jobs), b AS (SELECT job_id FROM a) SELECT * FROM b AS x JOIN a ON x.job_id = a.job_id');
    expect(two.sql).toContain('FROM `jobscribe_cte_b` AS x JOIN `jobscribe_cte_a` AS `a` ON x . job_id = a . job_id');
    expect(accept('WITH 3600 AS hour SELECT count() FROM jobs WHERE run_s > hour').sql).toContain('WITH 3600 AS hour');
  });

  it('accepts subqueries, joins, IN (subquery), UNION, ARRAY JOIN, lambdas and window functions', () => {
    accept('SELECT * FROM (SELECT cluster, count() c FROM jobs FINAL GROUP BY cluster) t WHERE t.c > 1');
    accept('SELECT j.job_id, e.name FROM jobs AS j FINAL INNER JOIN job_events e ON j.cluster = e.cluster AND j.job_id = e.job_id LIMIT 10');
    accept('SELECT count() FROM jobs WHERE (cluster, job_id) IN (SELECT cluster, job_id FROM job_events WHERE name = \'exception\')');
    accept('SELECT job_id FROM jobs WHERE user IN (\'alice\', \'bob\') UNION ALL SELECT job_id FROM dead_letters LIMIT 3');
    accept('SELECT job_id, node FROM jobs FINAL ARRAY JOIN nodes AS node WHERE node LIKE \'tioga%\'');
    accept('SELECT arrayMap(x -> upper(x), nodes), arrayFilter((n, i) -> i > 1, nodes, arrayEnumerate(nodes)) FROM jobs');
    accept('SELECT user, wait_s, quantile(0.9)(wait_s) OVER (PARTITION BY user) AS p90 FROM jobs FINAL');
    accept('SELECT extract(YEAR FROM t_submit) AS y, substring(name FROM 2) FROM jobs');
    accept('SELECT format(\'{} waited {}\', user, toString(wait_s)) FROM jobs');
    accept("SELECT position('b' IN name), position(name, 'x') FROM jobs WHERE name IN ('a', 'b') AND job_id NOT IN (1, 2)");
    accept('SELECT count() FROM jobs AS j FINAL WHERE j.job_id GLOBAL IN (SELECT job_id FROM job_events)');
    accept('SELECT toStartOfHour(t_submit) AS h, countIf(state = \'failed\') FROM jobs FINAL WHERE t_submit >= \'2024-06-01\' GROUP BY h ORDER BY h');
    accept('SELECT tuple(1, 2) AS t, t.1');
    accept('SELECT job_id::String, 0x1F, 1e-3, .5, -2 FROM jobs');
    accept('SELECT status, count() FROM actions FINAL GROUP BY status');
    accept('SELECT `user`, "state" AS `the state` FROM jobs');
    accept('SELECT count() FROM jobs WHERE exists(SELECT 1 FROM job_events WHERE name = \'start\')');
    accept('SELECT j.user FROM jobs j, job_events e WHERE j.job_id = e.job_id LIMIT 1');
  });

  it('keeps string literals holding DROP, ;, comments and quotes as data', () => {
    const r = accept(`SELECT count() FROM jobs WHERE name = 'DROP TABLE jobs; --' OR note = 'it''s' OR x = 'a\\'b' OR y = '/* x */ # $$'`);
    expect(r.sql).toBe(
      "SELECT count ( ) FROM `jdb` . `jobs` WHERE name = 'DROP TABLE jobs\\x3B \\x2D\\x2D' OR note = 'it\\'s' OR x = 'a\\'b' OR y = '\\x2F\\x2A x \\x2A\\x2F \\x23 \\x24\\x24'",
    );
    expect(guardStatementText(r.sql)).toBeUndefined();
    expect(accept("SELECT 'my settings' AS s").sql).toBe("SELECT '\\x73ettings' AS s".replace("'\\x73", "'my \\x73"));
  });

  it('drops comments of every kind, nested block comments included', () => {
    expect(accept('SELECT /* a /* nested */ still */ 1 -- trailing\n, 2 # shell comment\n #! also\n').sql).toBe('SELECT 1 , 2');
  });

  it('keeps the string escapes ClickHouse gives meaning to', () => {
    const r = accept("SELECT 'a\\db', 'a\\%b', '\\x41\\t', '\\N', 'x''y'");
    expect(r.sql).toBe("SELECT 'a\\\\db' , 'a\\\\%b' , 'A\\x09' , '' , 'x\\'y'");
    // \xHH above 0x7F is a raw byte (here the UTF-8 of é), kept as such.
    expect(accept("SELECT '\\xC3\\xA9', 'é'").sql).toBe("SELECT '\\xC3\\xA9' , 'é'");
  });

  it('every accepted query passes the execution guard and wraps into one statement', () => {
    const sql = accept("SELECT name, 'a;b' FROM jobs WHERE name LIKE '%settings%'").sql;
    expect(guardStatementText(sql)).toBeUndefined();
    const wrapped = executionSql(sql, DEFAULT_RUN_SQL_LIMITS);
    expect(wrapped.split('SETTINGS').length).toBe(2);
    expect(wrapped).toMatch(/SETTINGS readonly = 1, allow_ddl = 0, .*max_execution_time = 30/);
  });

  it('runs on half the cores, so a heavy query leaves the rest to the other tools', () => {
    const half = Math.max(1, Math.floor(availableParallelism() / 2));
    expect(DEFAULT_RUN_SQL_LIMITS.maxThreads).toBe(half);
    expect(executionSql('SELECT 1', DEFAULT_RUN_SQL_LIMITS)).toContain(`max_threads = ${half},`);
  });
});

describe('execution guard (without the validator)', () => {
  it.each([
    'SELECT 1; DROP TABLE jdb.jobs',
    'SELECT 1 SETTINGS readonly = 0',
    'SELECT * FROM (SELECT 1 settings readonly=0)',
    'SELECT 1 -- ) x',
    'SELECT 1 /* ',
    'SELECT $$x$$',
    'SELECT 1 # x',
    'SELECT 1\x00',
  ])('refuses %j', (sql) => {
    expect(guardStatementText(sql)).toBeDefined();
    expect(() => executionSql(sql, DEFAULT_RUN_SQL_LIMITS)).toThrow(/execution layer refused/);
  });
});

describe('string literals', () => {
  it('round-trip every character as an escaped literal', () => {
    const all = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join('') + 'é→😀 settings SETTINGS';
    const lit = stringLiteral(all);
    expect(guardStatementText(lit)).toBeUndefined();
    const back = validateSelect(`SELECT ${lit}`, POLICY);
    expect(back.ok && back.sql).toBe(`SELECT ${lit}`);
  });
});

describe('caps', () => {
  const row = (i: number, total: number, pad = '') => ({ a: String(i), s: pad, [BYTES_COLUMN]: '0', [ROWS_COLUMN]: String(total) });

  it('passes a small answer untouched and removes the wrapper columns', () => {
    const r = capResult([row(1, 2), row(2, 2)], 1000, 262144);
    expect(r).toEqual({ rows: [{ a: '1', s: '' }, { a: '2', s: '' }], truncated: false });
  });

  it('cuts at the row cap and says so', () => {
    const received = Array.from({ length: 11 }, (_, i) => row(i, 11));
    const r = capResult(received, 10, 262144);
    expect(r.rows).toHaveLength(10);
    expect(r.truncated).toBe(true);
    expect(r.truncated_reason).toContain('more than 10 rows');
  });

  it('cuts at the byte cap (JSON bytes, UTF-8) and says so', () => {
    const pad = 'é'.repeat(500); // 1000 bytes
    const received = Array.from({ length: 20 }, (_, i) => row(i, 20, pad));
    const r = capResult(received, 1000, 10_000);
    const size = Buffer.byteLength(JSON.stringify(r.rows));
    expect(size).toBeLessThanOrEqual(10_000);
    expect(Buffer.byteLength(JSON.stringify(received.slice(0, r.rows.length + 1).map(({ a, s }) => ({ a, s }))))).toBeGreaterThan(10_000);
    expect(r.truncated_reason).toContain('more than 10000 bytes');
  });

  it('reports rows ClickHouse dropped for size, all of them included', () => {
    const r = capResult([row(1, 5)], 1000, 262144);
    expect(r.truncated).toBe(true);
    expect(r.truncated_reason).toContain('bytes');
    const none = capResult([], 1000, 262144, 1);
    expect(none).toMatchObject({ rows: [], truncated: true });
    expect(none.truncated_reason).toContain('more than 262144 bytes');
    expect(capResult([], 1000, 262144, 0)).toEqual({ rows: [], truncated: false });
  });
});
