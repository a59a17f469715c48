/**
 * `jobscribe schema`: the DDL as a script to read or to run with clickhouse-client. Without a
 * cluster it is what every jobscribe process applies by itself on start (IF NOT EXISTS); with
 * `--clickhouse-cluster` it is the replicated layout of schemas/clickhouse/cluster.ts, which an
 * operator runs once on any node before starting projectors and MCP services with --clickhouse-url.
 */
import { allStatements } from '../schemas/clickhouse/ddl.js';
import { asScript, clusterStatements } from '../schemas/clickhouse/cluster.js';
import { ConfigError } from '../schemas/errors.js';

export function schemaScript(database: string, cluster: string | undefined): string {
  if (cluster === undefined) {
    return asScript([`CREATE DATABASE IF NOT EXISTS ${database}`, ...allStatements(database)], `jobscribe DDL for database ${database} (a single server or the embedded engine; applied automatically on start)`);
  }
  let statements: string[];
  try {
    statements = clusterStatements({ database, cluster });
  } catch (err) {
    throw new ConfigError(`invalid setting clickhouseCluster: ${(err as Error).message}`);
  }
  return asScript(
    statements,
    `jobscribe DDL for ClickHouse cluster ${cluster}: one shard, replicated tables in ${database} (projector: --database ${database}), ` +
      `Distributed read tables in ${database}_all (MCP: --database ${database}_all). Needs the {shard} and {replica} macros on every node.`,
  );
}
