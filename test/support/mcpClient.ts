/** An MCP SDK client talking to a jobscribe MCP server in memory (no transport I/O): the tool tests' way in. */
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import type { Identity } from '../../mcp/identity.js';
import { createJobscribeServer, type McpDeps } from '../../mcp/server.js';

/** A client connected to a server built from `deps` for `identity` (default: the local admin). */
export async function connectMcp(deps: McpDeps, identity?: Identity, name = 'jobscribe-test'): Promise<Client> {
  const server = createJobscribeServer(deps, identity);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name, version: '0' });
  await client.connect(clientSide);
  return client;
}
