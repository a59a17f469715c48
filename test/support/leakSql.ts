/**
 * The leak bank: run_sql queries a plain user might write to read rows that are not theirs,
 * through error text (a failing cast prints the value it failed on), a throwIf() yes/no oracle,
 * PREWHERE (it runs before row filters), subqueries, CTEs, IN, JOIN ON, UNION, and the function
 * forms of IN. Every one targets the planted victim rows (user VICTIM, job VICTIM_JOB, names
 * and texts starting with SECRET): the integration test asserts that no answer and no error of
 * any of them holds a victim value, and that the oracles answer the same as if the victim rows
 * did not exist. `me` is the asking user.
 */
export const VICTIM = 'zz_victim';
export const VICTIM_JOB = '987654321987';
export const SECRET = 'zzsecret';

const leak = (expr: string) => `toUInt64(concat('LEAK|', ${expr}))`;

export function leakBank(me: string): string[] {
  const mine = `'${me}'`;
  return [
    // Error text: a cast that fails on the first row it sees.
    `SELECT count() FROM jobs PREWHERE user != ${mine} AND ${leak("toString(job_id), '|', user, '|', name")} = 0`,
    `SELECT count() FROM jobs WHERE user != ${mine} AND ${leak("toString(job_id), '|', user, '|', name")} = 0`,
    `SELECT count() FROM jobs WHERE if(user IN (${mine}, ''), 0, ${leak('name')}) = 0`,
    `SELECT count() FROM jobs WHERE ${leak('name')} = 0`,
    `SELECT count() FROM jobs AS j WHERE ${leak('j.name')} = 0`,
    `SELECT ${leak('name')} FROM jobs`,
    `SELECT count() FROM jobs GROUP BY ${leak('name')}`,
    `SELECT name FROM jobs ORDER BY ${leak('name')}`,
    `SELECT count() FROM job_events WHERE ${leak('context')} = 0`,
    `SELECT count() FROM job_events PREWHERE ${leak('raw')} = 0`,
    `SELECT count() FROM actions WHERE ${leak('reason')} = 0`,
    `SELECT count() FROM actions WHERE ${leak("requested_by, '|', args")} = 0`,
    `SELECT count() FROM (SELECT * FROM jobs) WHERE ${leak('name')} = 0`,
    `SELECT count() FROM (SELECT * FROM jobs WHERE ${leak('name')} = 0)`,
    `WITH x AS (SELECT * FROM jobs) SELECT count() FROM x WHERE ${leak('name')} = 0`,
    `WITH x AS (SELECT name FROM jobs WHERE ${leak('name')} = 0) SELECT count() FROM x`,
    `SELECT count() FROM jobs WHERE job_id IN (SELECT job_id FROM jobs WHERE ${leak('name')} = 0)`,
    `SELECT count() FROM job_events AS e JOIN jobs AS j ON e.cluster = j.cluster AND e.job_id = j.job_id AND ${leak('j.name')} = 0`,
    `SELECT count() FROM jobs AS a JOIN jobs AS b ON a.job_id = b.job_id AND ${leak('b.name')} = 0`,
    `SELECT count() FROM jobs AS a LEFT JOIN job_events AS b ON a.job_id = b.job_id AND ${leak('b.context')} = 0`,
    `SELECT count() FROM jobs AS a, jobs AS b WHERE a.job_id = b.job_id AND ${leak('b.name')} = 0`,
    `SELECT count() FROM (SELECT name FROM jobs UNION ALL SELECT name FROM job_events) WHERE ${leak('name')} = 0`,
    `SELECT (SELECT max(${leak('name')}) FROM jobs) AS n`,
    `SELECT count() FROM jobs FINAL WHERE ${leak('name')} = 0`,
    `SELECT count() FROM jobs AS j FINAL WHERE ${leak('name')} = 0`,
    `SELECT count() FROM jobs WHERE ${leak('name')} = 0 SETTINGS additional_table_filters = {}`,
    // Values in answers: aggregates and functions over every row.
    'SELECT groupArray(name) AS n FROM jobs',
    'SELECT groupUniqArray(user) AS u FROM job_events',
    'SELECT any(name) AS n FROM jobs WHERE user != ' + mine,
    'SELECT arrayStringConcat(groupArray(reason)) AS r FROM actions',
    `SELECT count() AS n FROM jobs WHERE user = '${VICTIM}'`,
    `SELECT toString(job_id) AS j FROM jobs WHERE job_id = ${VICTIM_JOB}`,
    // Tables through the function forms of IN and nested parentheses.
    `SELECT count() FROM jobs WHERE in((cluster, job_id, user), jobs)`,
    `SELECT count() FROM jobs WHERE (cluster, job_id) IN ((jobs))`,
    `SELECT count() FROM jobs WHERE globalNotIn(job_id, jobs)`,
    `SELECT count() FROM jobs WHERE nullIn(job_id, dead_letters)`,
    // throwIf oracles: each throws only if a victim row is evaluated.
    `SELECT count() AS n FROM jobs WHERE throwIf(user = '${VICTIM}', 'yes') = 0`,
    `SELECT count() AS n FROM jobs PREWHERE throwIf(name LIKE '${SECRET}%', 'yes') = 0`,
    `SELECT count() AS n FROM job_events WHERE throwIf(context LIKE '%${SECRET}%', 'yes') = 0`,
    `SELECT count() AS n FROM actions WHERE throwIf(reason LIKE '${SECRET}%', 'yes') = 0`,
    `SELECT count() AS n FROM job_events AS e JOIN jobs AS j ON e.job_id = j.job_id AND throwIf(j.user = '${VICTIM}', 'yes') = 0`,
    `SELECT count() AS n FROM (SELECT * FROM jobs) WHERE throwIf(job_id = ${VICTIM_JOB}, 'yes') = 0`,
    `SELECT count() AS n FROM jobs WHERE name = 'nothing' OR throwIf(user = '${VICTIM}', 'yes') = 0`,
    `SELECT count() AS n FROM jobs WHERE job_id IN (SELECT job_id FROM jobs WHERE throwIf(user = '${VICTIM}', 'yes') = 0)`,
  ];
}
