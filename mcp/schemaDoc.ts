/**
 * The schema description behind `describe_schema` and the `jobscribe://schema` resource:
 * `describeSchema(deps)` reads the allowlisted tables' columns and types from ClickHouse and
 * joins them with their one-line meanings (schemas/clickhouse/columns.ts), the run_sql rules
 * and example queries (each one is run in test/int/mcpSql.int.test.ts).
 */
import { TABLE_DOCS } from '../schemas/clickhouse/columns.js';
import type { ReadModelTable } from '../schemas/clickhouse/ddl.js';
import type { SchemaDoc } from '../schemas/tools/describeSchema.js';
import { DEFAULT_RUN_SQL_LIMITS, type RunSqlLimits } from './safeSql.js';
import { selectRows, type QueryDeps } from './sql.js';
import { RUN_SQL_TABLES } from './tools/runSql.js';

export type { SchemaDoc } from '../schemas/tools/describeSchema.js';

/** Example questions and the run_sql query answering each. */
export const SCHEMA_EXAMPLES: SchemaDoc['examples'] = [
  {
    question: 'How many jobs are in each state, per cluster?',
    sql: 'SELECT cluster, state, count() AS jobs FROM jobs FINAL GROUP BY cluster, state ORDER BY cluster, state',
  },
  {
    question: 'What is the 90th percentile queue wait per queue over the last 7 days?',
    sql:
      'SELECT cluster, queue, count() AS started, quantile(0.9)(wait_s) AS p90_wait_s FROM jobs FINAL ' +
      'WHERE t_start >= now() - INTERVAL 7 DAY GROUP BY cluster, queue ORDER BY p90_wait_s DESC',
  },
  {
    question: 'Which users had the most failed jobs in the last day?',
    sql:
      "SELECT user, countIf(state = 'failed') AS failed_jobs, count() AS jobs FROM jobs FINAL " +
      'WHERE t_submit >= now() - INTERVAL 1 DAY GROUP BY user ORDER BY failed_jobs DESC LIMIT 10',
  },
  {
    question: 'What happened to one job, event by event?',
    sql: "SELECT seq, name, ts, context FROM job_events FINAL WHERE cluster = 'tioga' AND job_id = 1234 ORDER BY seq",
  },
  {
    question: 'Which exception types are most common?',
    sql:
      "SELECT JSONExtractString(context, 'type') AS exception, count() AS events FROM job_events FINAL " +
      "WHERE name = 'exception' GROUP BY exception ORDER BY events DESC",
  },
  {
    question: 'On which nodes did the most jobs fail?',
    sql:
      "SELECT node, count() AS failed_jobs FROM jobs FINAL ARRAY JOIN nodes AS node WHERE state = 'failed' " +
      'GROUP BY node ORDER BY failed_jobs DESC LIMIT 10',
  },
  {
    question: 'How did failed jobs end: exit status, signal, out of memory, or never ran?',
    sql:
      "SELECT multiIf(oom, 'out of memory', exit_code IS NOT NULL, concat('exit ', toString(exit_code)), signal_name != '', signal_name, " +
      "concat('never ran: ', exception_type)) AS ended, count() AS jobs FROM jobs FINAL WHERE state = 'failed' GROUP BY ended ORDER BY jobs DESC",
  },
];

export function schemaRules(database: string, limits: RunSqlLimits = DEFAULT_RUN_SQL_LIMITS): string[] {
  return [
    `One SELECT (or WITH … SELECT) over ${RUN_SQL_TABLES.join(', ')}; bare table names read database ${database}.`,
    'These tables are ReplacingMergeTree: add FINAL after the table name for one current row per key.',
    'Not allowed: SETTINGS, FORMAT, INTO OUTFILE, table functions (url(), file(), numbers(), ...), system tables, ' +
      'other databases, and functions that read files, dictionaries or server state (file, dictGet*, joinGet, sleep, getSetting, ...).',
    `Answers: at most ${limits.maxRows} rows and ${limits.maxBytes} bytes of rows (truncated: true says when cut), ` +
      `${limits.maxExecutionTimeS} s and ${limits.maxMemoryBytes} bytes of memory per query.`,
    "64-bit integers come back as strings; times are DateTime64 in UTC, compared with strings like '2024-06-01 12:00:00'.",
  ];
}

interface ColumnRow {
  table: string;
  name: string;
  type: string;
}

/** Pure: the columns ClickHouse reports (in table order) → the schema description. */
export function buildSchemaDoc(database: string, columns: ColumnRow[], limits?: RunSqlLimits): SchemaDoc {
  const tables = RUN_SQL_TABLES.filter((t) => columns.some((c) => c.table === t)).map((t) => {
    const doc = TABLE_DOCS[t as ReadModelTable];
    return {
      name: t,
      description: doc?.description ?? '',
      columns: columns
        .filter((c) => c.table === t)
        .map((c) => ({ name: c.name, type: c.type, description: doc?.columns[c.name] ?? '' })),
    };
  });
  return { database, tables, rules: schemaRules(database, limits), examples: SCHEMA_EXAMPLES };
}

/** The allowlisted tables that exist in the configured database, with columns, types and meanings. */
export async function describeSchema(deps: QueryDeps, limits?: RunSqlLimits): Promise<SchemaDoc> {
  const columns = await selectRows<ColumnRow>(
    deps,
    `SELECT table, name, type FROM system.columns
     WHERE database = {database:String} AND table IN {tables:Array(String)}
     ORDER BY table, position`,
    { database: deps.database, tables: [...RUN_SQL_TABLES] },
  );
  return buildSchemaDoc(deps.database, columns, limits);
}
