/**
 * The one place that picks the ClickHouse engine: embedded chDB under a data directory (the
 * default), or a ClickHouse server by URL. Both are the same `@clickhouse/client` API, so every
 * other module takes a `ClickHouseClient` and never knows which it got.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { allStatements } from '../schemas/clickhouse/ddl.js';
import { StoreError } from '../schemas/errors.js';

export interface ClickHouseTarget {
  /** Embedded chDB data lives in `<dataDir>/clickhouse`. Ignored when `url` is set. */
  dataDir: string;
  url?: string;
  username?: string;
  password?: string;
  database: string;
}

export interface OpenedClickHouse {
  client: ClickHouseClient;
  database: string;
  embedded: boolean;
  close(): Promise<void>;
}

export async function openClickHouse(target: ClickHouseTarget): Promise<OpenedClickHouse> {
  let client: ClickHouseClient;
  if (target.url) {
    client = createClient({
      url: target.url,
      username: target.username,
      password: target.password,
      request_timeout: 60_000,
    });
  } else {
    const path = join(target.dataDir, 'clickhouse');
    mkdirSync(path, { recursive: true });
    const { createChdbConnection } = await import('chdb/connection');
    try {
      client = createClient({ connection: createChdbConnection({ path }) } as Parameters<typeof createClient>[0]);
      await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json());
    } catch (err) {
      const msg = (err as Error).message;
      if (/Cannot lock file|already running/i.test(msg)) {
        throw new StoreError(
          `the data directory ${target.dataDir} is in use by another jobscribe process (embedded ClickHouse allows one process per data directory); stop it or use its MCP endpoint`,
          { cause: err },
        );
      }
      throw new StoreError(`cannot open embedded ClickHouse at ${path}: ${msg}`, { cause: err });
    }
  }
  await migrate(client, target.database);
  return {
    client,
    database: target.database,
    embedded: !target.url,
    close: () => client.close(),
  };
}

/** Creates the database and every table (idempotent: all DDL is IF NOT EXISTS). */
export async function migrate(client: ClickHouseClient, database: string): Promise<void> {
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  for (const statement of allStatements(database)) await client.command({ query: statement });
}
