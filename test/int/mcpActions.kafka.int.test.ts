/**
 * Agent actions end to end on real Kafka (test/support/mcpActionsSuite.ts says what is checked):
 * simulated cluster scribe with its command loop → Kafka (commands and events topics, 6
 * partitions) → Projector → chDB, MCP server over an in-memory client per identity. The broker
 * is private to this file (test/support/privateKafka.ts); without Kafka the suite is skipped
 * loudly, or FAILS under CI=true.
 */
import { afterAll } from 'vitest';
import { createKafkaLog } from '../../log/kafka.js';
import { uniqueGroup, uniqueName } from '../support/kafka.js';
import { mcpActionsSuite } from '../support/mcpActionsSuite.js';
import { requireTestBroker, type TestBroker } from '../support/privateKafka.js';

let broker: TestBroker | undefined;
afterAll(async () => {
  await broker?.close();
}, 60_000);

mcpActionsSuite({
  database: 'mcp_actions_kafka',
  prefix: uniqueName('ka'),
  openLog: async () => {
    broker = await requireTestBroker('mcp-actions');
    if (!broker) return undefined;
    const log = createKafkaLog({
      brokers: broker.brokers,
      clientId: 'jobscribe-actions-test',
      topicRefreshMs: 500,
      logger: (level, message) => {
        if (level === 'error') process.stderr.write(`[kafka ${level}] ${message}\n`);
      },
    });
    return { log, group: uniqueGroup(), close: () => log.close() };
  },
});
