import { afterAll, beforeAll } from 'vitest';
import { createEmbeddedLog } from '../../log/embedded.js';
import type { EventLog } from '../../log/eventLog.js';
import { openTestClickHouse } from '../support/chdb.js';
import { eventLogContract } from '../contracts/eventLog.js';

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
let n = 0;

beforeAll(async () => {
  ch = await openTestClickHouse();
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 50, maxBatchRecords: 7 });
});
afterAll(async () => {
  await log.close();
  await ch.cleanup();
});

eventLogContract('embedded', () => ({
  log,
  topic: (cluster) => `t${++n}.${cluster}.events`,
  group: () => `g${++n}`,
}));
