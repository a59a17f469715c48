/** A fresh embedded ClickHouse per test file (one chDB data directory per process). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse, type OpenedClickHouse } from '../../deploy/clickhouse.js';

export async function openTestClickHouse(database = 'jobscribe_test'): Promise<OpenedClickHouse & { dataDir: string; cleanup(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-test-'));
  const ch = await openClickHouse({ dataDir, database });
  return {
    ...ch,
    dataDir,
    async cleanup() {
      await ch.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function queryRows<T = Record<string, unknown>>(ch: OpenedClickHouse, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}
