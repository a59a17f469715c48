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
  /**
   * A client of its own for one kind of work (`mcp`, `sql-users`, `sql-admins`), so that work
   * never queues behind another's: embedded chDB runs one query at a time per connection (two
   * connections on one data directory run side by side, measured); a server gets the same client,
   * which already runs queries side by side. Cached per name, closed with the rest.
   */
  connect(name: string): ClickHouseClient;
  /**
   * `size` clients of their own (`name-0`, `name-1`, ...) behind one: each `query` goes to the
   * one with the fewest queries in flight, so on embedded chDB `size` queries of that kind run
   * side by side instead of in line (the MCP tools: `up` uses 2). A server: the one client.
   */
  connectPool(name: string, size: number): ClickHouseClient;
  close(): Promise<void>;
}

/** Spreads `query` over `members` (fewest in flight first); every other method is the first member's. */
export function queryPool(members: readonly ClickHouseClient[]): ClickHouseClient {
  if (members.length === 0) throw new Error('a query pool needs at least one client');
  if (members.length === 1) return members[0]!;
  const inFlight = members.map(() => 0);
  const query = (async (params: Parameters<ClickHouseClient['query']>[0]) => {
    let i = 0;
    for (let j = 1; j < members.length; j++) if (inFlight[j]! < inFlight[i]!) i = j;
    inFlight[i]!++;
    try {
      return await members[i]!.query(params);
    } finally {
      inFlight[i]!--;
    }
  }) as ClickHouseClient['query'];
  return new Proxy(members[0]!, {
    get(target, prop, receiver) {
      if (prop === 'query') return query;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export async function openClickHouse(target: ClickHouseTarget): Promise<OpenedClickHouse> {
  let client: ClickHouseClient;
  let embeddedClient: (() => ClickHouseClient) | undefined;
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
    embeddedClient = () => createClient({ connection: isolatedQueries(createChdbConnection({ path })) } as Parameters<typeof createClient>[0]);
    try {
      client = embeddedClient();
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
  const others = new Map<string, ClickHouseClient>();
  const connect = (name: string): ClickHouseClient => {
    if (!embeddedClient) return client;
    let c = others.get(name);
    if (!c) others.set(name, (c = embeddedClient()));
    return c;
  };
  return {
    client,
    database: target.database,
    embedded: !target.url,
    connect,
    connectPool: (name, size) => queryPool(Array.from({ length: embeddedClient ? size : 1 }, (_, i) => connect(`${name}-${i}`))),
    async close() {
      await Promise.all([...others.values()].map((c) => c.close()));
      await client.close();
    },
  };
}

/** The sentinel query run after a failed one, and what it must answer once the session is clean. */
const FLUSH_QUERY = "SELECT 'jobscribe:flush'\nFORMAT TabSeparated";
const FLUSH_ANSWER = 'jobscribe:flush\n';

type AnyConnection = Record<string, unknown> & { query(params: { query: string }): Promise<{ stream: AsyncIterable<Buffer | string> }> };

/**
 * A chDB connection whose queries cannot see each other's output. chDB 3.4 (ClickHouse 26.7)
 * keeps the partial output of a query that fails mid-run and hands it to the NEXT query on the
 * same session, glued in front of that query's own answer (reproduced on a bare chdb Session:
 * `SELECT number, repeat('x', 100) FROM numbers(100000) WHERE throwIf(number = 90000) = 0
 * SETTINGS max_block_size = 1000` fails, then `SELECT 1 AS one FORMAT JSONEachRow` answers
 * 10.9 MB of the first query's rows before `{"one":1}`). So every call on the connection runs
 * alone, in turn, and after any failure a sentinel query takes the leftover before the next
 * caller runs, repeated until it answers exactly its own row.
 */
export function isolatedQueries<C extends object>(connection: C): C {
  const raw = connection as unknown as AnyConnection;
  let tail: Promise<void> = Promise.resolve();
  const flush = async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const rs = await raw.query({ query: FLUSH_QUERY });
        let text = '';
        for await (const chunk of rs.stream) text += chunk.toString();
        if (text === FLUSH_ANSWER) return;
      } catch {
        // a failing flush leaves its own leftover, if any, for the next attempt
      }
    }
  };
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const result = tail.then(work);
    tail = result.then(
      () => undefined,
      () => flush(),
    );
    return result;
  };
  const calls = new Set(['query', 'exec', 'command', 'insert']);
  return new Proxy(connection, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && calls.has(prop)) return (params: unknown) => serialized(() => (value as (p: unknown) => Promise<unknown>).call(target, params));
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/** Creates the database and every table (idempotent: all DDL is IF NOT EXISTS). */
export async function migrate(client: ClickHouseClient, database: string): Promise<void> {
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  for (const statement of allStatements(database)) await client.command({ query: statement });
}
