/**
 * Agent actions end to end on the embedded log (test/support/mcpActionsSuite.ts says what is
 * checked): simulated cluster scribe with its command loop → embedded log → Projector → chDB,
 * MCP server over an in-memory client per identity.
 */
import { createEmbeddedLog } from '../../log/embedded.js';
import { mcpActionsSuite } from '../support/mcpActionsSuite.js';

mcpActionsSuite({
  database: 'mcp_actions_test',
  prefix: 'jobscribe',
  openLog: async (ch) => {
    const log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
    return { log, group: 'jobscribe-projector', close: () => log.close() };
  },
});
