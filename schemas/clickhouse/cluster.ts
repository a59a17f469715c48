/**
 * The read-model DDL for a ClickHouse server cluster (`jobscribe schema --clickhouse-cluster C`),
 * derived from the same versioned files as the embedded DDL (ddl.ts), so the two never drift.
 *
 * Layout: ONE shard of N replicas. Every read-model table is created `ON CLUSTER` with the
 * replicated variant of its engine (`ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/
 * <db>/<table>', '{replica}', …)`, the server's `{shard}`/`{replica}` macros), under the names the
 * projector and the MCP service already use, so both run unchanged against any replica with
 * `--clickhouse-url`: a projector's inserts (with their deterministic dedup tokens, which the
 * replicated engines honour across replicas) reach every replica, and `FINAL` sees every row of a
 * key because each replica holds them all. `<db>_all` holds `Distributed` tables over the same
 * cluster for readers that should not be tied to one node (the MCP service with
 * `--database <db>_all`: load-balanced, failing over between replicas).
 *
 * Not sharded on purpose: the projector's exactly-once rests on per-table insert dedup and on
 * `FINAL` collapsing a job's rows, both per shard. One shard holds a center's years (see the
 * README's sizing notes). The embedded log's tables (log_records, log_offsets) are left out: a
 * cluster deployment uses Kafka.
 */
import { READ_MODEL_TABLES, loadDdlFiles, splitStatements } from './ddl.js';

export interface ClusterDdlOptions {
  database: string;
  /** The `remote_servers` cluster name the statements run ON CLUSTER. */
  cluster: string;
  /** Database of the Distributed read tables; default `<database>_all`. */
  readDatabase?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function ident(what: string, value: string): string {
  if (!IDENT.test(value)) throw new Error(`invalid ${what} "${value}": letters, digits and _ only, not starting with a digit`);
  return value;
}

/** `ReplacingMergeTree(v)` → `ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}', v)`. */
export function replicatedEngine(engine: string, database: string, table: string): string {
  const m = /^(\w*MergeTree)\s*(?:\((.*)\))?$/s.exec(engine.trim());
  if (!m) throw new Error(`cannot make a replicated engine of "${engine}"`);
  const [, family, args] = m;
  const zkPath = `'/clickhouse/tables/{shard}/${database}/${table}'`;
  const rest = args?.trim() ? `, ${args.trim()}` : '';
  return `Replicated${family}(${zkPath}, '{replica}'${rest})`;
}

/** One embedded CREATE TABLE statement of a read-model table, rewritten for the cluster. */
function replicatedTable(statement: string, database: string, cluster: string): { table: string; sql: string } {
  const head = /^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\{suffix\}/.exec(statement);
  if (!head) throw new Error(`not a read-model CREATE TABLE: ${statement.slice(0, 80)}`);
  const table = head[1]!;
  const engine = /\nENGINE = (.+?)\n/s.exec(statement);
  if (!engine) throw new Error(`no ENGINE line in the DDL of ${table}`);
  const sql = statement
    .replace(head[0], `CREATE TABLE IF NOT EXISTS ${database}.${table} ON CLUSTER ${cluster}`)
    .replace(engine[0], `\nENGINE = ${replicatedEngine(engine[1]!, database, table)}\n`)
    // The replicated engines deduplicate inserts by token in Keeper; keep the embedded window.
    .replace('non_replicated_deduplication_window', 'replicated_deduplication_window');
  return { table, sql };
}

/**
 * A later file's `ALTER TABLE {db}.t{suffix} …` (a column added to an existing table), run ON
 * CLUSTER on the replicated table and on its Distributed read table: both must have the column.
 */
function clusterAlter(statement: string, db: string, readDb: string, cluster: string): { table: string; sql: string[] } {
  const head = /^ALTER TABLE \{db\}\.(\w+)\{suffix\}/.exec(statement);
  if (!head) throw new Error(`not a read-model CREATE or ALTER TABLE: ${statement.slice(0, 80)}`);
  const table = head[1]!;
  const rest = statement.slice(head[0].length);
  return { table, sql: [`ALTER TABLE ${db}.${table} ON CLUSTER ${cluster}${rest}`, `ALTER TABLE ${readDb}.${table} ON CLUSTER ${cluster}${rest}`] };
}

/**
 * Every statement, in order: databases, replicated tables, Distributed read tables, then the
 * later files' ALTERs on both (no-ops on tables created with their columns already).
 */
export function clusterStatements(options: ClusterDdlOptions): string[] {
  const db = ident('database', options.database);
  const cluster = ident('cluster name', options.cluster);
  const readDb = ident('read database', options.readDatabase ?? `${db}_all`);
  const statements = loadDdlFiles()
    .flatMap((f) => splitStatements(f.sql))
    .filter((s) => s.includes('{suffix}'));
  const tables = statements.filter((s) => !s.startsWith('ALTER TABLE')).map((s) => replicatedTable(s, db, cluster));
  const alters = statements.filter((s) => s.startsWith('ALTER TABLE')).map((s) => clusterAlter(s, db, readDb, cluster));
  const missing = READ_MODEL_TABLES.filter((t) => !tables.some((x) => x.table === t));
  if (missing.length > 0) throw new Error(`the DDL files have no table ${missing.join(', ')}`);
  return [
    `CREATE DATABASE IF NOT EXISTS ${db} ON CLUSTER ${cluster}`,
    `CREATE DATABASE IF NOT EXISTS ${readDb} ON CLUSTER ${cluster}`,
    ...tables.map((t) => t.sql),
    ...tables.map((t) => `CREATE TABLE IF NOT EXISTS ${readDb}.${t.table} ON CLUSTER ${cluster} AS ${db}.${t.table}\nENGINE = Distributed(${cluster}, ${db}, ${t.table})`),
    ...alters.flatMap((a) => a.sql),
  ];
}

/** The statements as one script (`;` after each), for `jobscribe schema` to print. */
export function asScript(statements: readonly string[], header: string): string {
  return `-- ${header}\n\n` + statements.map((s) => `${s};\n`).join('\n');
}
