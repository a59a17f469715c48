/**
 * The versioned ClickHouse DDL files beside this module, as statements ready to run.
 * Files are `NNN_name.sql`, applied in order; `{db}` and `{suffix}` are substituted (the suffix
 * lets a rebuild create fresh copies of the read-model tables next to the live ones).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** Read-model tables (rebuildable from the log); the log tables are not among them. */
export const READ_MODEL_TABLES = ['job_events', 'jobs', 'dead_letters', 'actions'] as const;
export type ReadModelTable = (typeof READ_MODEL_TABLES)[number];

export interface DdlFile {
  version: number;
  name: string;
  sql: string;
}

function sqlDir(): string {
  // Works from the source tree (schemas/clickhouse) and from the build (dist/schemas/clickhouse).
  const here = dirname(fileURLToPath(import.meta.url));
  const inDist = here.split(/[\\/]/).includes('dist');
  return inDist ? resolve(here, '../../../schemas/clickhouse') : here;
}

export function loadDdlFiles(): DdlFile[] {
  const dir = sqlDir();
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Splits a DDL file into its statements (comments dropped), placeholders left in place. */
export function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function substitute(statement: string, db: string, suffix: string): string {
  return statement.replaceAll('{db}', db).replaceAll('{suffix}', suffix);
}

/** Every statement of every file, in order, for the live tables. */
export function allStatements(db: string): string[] {
  return loadDdlFiles().flatMap((f) => splitStatements(f.sql).map((s) => substitute(s, db, '')));
}

/** Statements creating the read-model tables (the ones with a `{suffix}`) under a suffix. */
export function readModelStatements(db: string, suffix: string): string[] {
  return loadDdlFiles().flatMap((f) =>
    splitStatements(f.sql)
      .filter((s) => s.includes('{suffix}'))
      .map((s) => substitute(s, db, suffix)),
  );
}
