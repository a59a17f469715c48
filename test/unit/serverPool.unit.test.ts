/** Idle MCP servers per identity (mcp/serverPool.ts): reused by the same identity only, and only as good as new. */
import { describe, expect, it } from 'vitest';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/server';
import type { Identity } from '../../mcp/identity.js';
import { ServerPool } from '../../mcp/serverPool.js';

const alice: Identity = { subject: 'alice-laptop', user: 'alice', roles: [] };
const bob: Identity = { subject: 'bob-laptop', user: 'bob', roles: [] };
const aliceAdmin: Identity = { subject: 'alice-laptop', user: 'alice', roles: ['admin'] };

function pool() {
  const owners = new Map<McpServer, Identity>();
  const p = new ServerPool((identity) => {
    const s = new McpServer({ name: 't', version: '0' });
    owners.set(s, identity);
    return s;
  });
  return { p, owners };
}

/** Serves one exchange on `server` the way the stateless endpoint does: connect, answer, close. */
async function serveOnce(server: McpServer, initialize = false): Promise<void> {
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  if (initialize) {
    const client = new Client({ name: 'c', version: '0' });
    await client.connect(a);
  }
  await server.close();
}

describe('ServerPool', () => {
  it('hands a closed server to the same identity again, never to another', async () => {
    const { p, owners } = pool();
    const s1 = p.take(alice);
    await serveOnce(s1);
    expect(p.take(bob)).not.toBe(s1);
    expect(p.take(aliceAdmin)).not.toBe(s1); // same subject, other roles: another identity
    const again = p.take(alice);
    expect(again).toBe(s1);
    expect(owners.get(again)).toBe(alice);
    expect(p.stats).toEqual({ built: 3, reused: 1 });
  });

  it('never hands out a server that is still serving', async () => {
    const { p } = pool();
    const s1 = p.take(alice);
    const s2 = p.take(alice); // s1 not closed yet
    expect(s2).not.toBe(s1);
  });

  it('drops a server that negotiated a protocol version (an initialize request)', async () => {
    const { p } = pool();
    const s1 = p.take(alice);
    await serveOnce(s1, true);
    expect(s1.server.getNegotiatedProtocolVersion()).toBeDefined();
    expect(p.take(alice)).not.toBe(s1);
  });
});
