/**
 * Idle MCP servers per identity, for the stateless HTTP endpoint: the SDK asks the factory for
 * a server on every request and closes it when the exchange is over. Building one registers 23
 * tools, the resources and the prompts (zod schemas, completion callbacks): about 0.4 ms of CPU,
 * a tenth of a call's cost under load (test/bench/mcpLoad.ts). A closed server is taken back
 * here and handed out again, to the same identity only (its tools are bound to that identity's
 * scope), and only if it is as a fresh one would be: it never negotiated a protocol version
 * (an `initialize` request sets one for good; such a server is dropped), and it is not serving.
 *
 * Bounded: at most `perIdentity` idle servers for each of the `identities` most recently used
 * identities.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import type { Identity } from './identity.js';

export interface ServerPoolOptions {
  /** Idle servers kept per identity. Default 64 (one per concurrent request of that identity). */
  perIdentity?: number;
  /** Identities with idle servers kept. Default 256. */
  identities?: number;
}

/** What makes two identities the same for the tools: subject, scheduler user, roles. */
export function identityKey(identity: Identity): string {
  return JSON.stringify([identity.subject, identity.user ?? null, [...identity.roles].sort()]);
}

export class ServerPool {
  readonly #idle = new Map<string, McpServer[]>();
  readonly #perIdentity: number;
  readonly #identities: number;
  readonly stats = { built: 0, reused: 0 };

  constructor(
    private readonly build: (identity: Identity) => McpServer,
    options: ServerPoolOptions = {},
  ) {
    this.#perIdentity = options.perIdentity ?? 64;
    this.#identities = options.identities ?? 256;
  }

  /** A server for `identity` that serves no one: an idle one of the same identity, else a new one. */
  take(identity: Identity): McpServer {
    const key = identityKey(identity);
    const idle = this.#idle.get(key);
    const server = idle?.pop();
    if (idle) {
      this.#idle.delete(key); // most recently used last
      if (idle.length) this.#idle.set(key, idle);
    }
    if (server && server.server.transport === undefined && server.server.getNegotiatedProtocolVersion() === undefined) {
      this.stats.reused++;
      return server;
    }
    this.stats.built++;
    const fresh = this.build(identity);
    fresh.server.onclose = () => this.#release(key, fresh);
    return fresh;
  }

  #release(key: string, server: McpServer): void {
    if (server.server.getNegotiatedProtocolVersion() !== undefined) return; // not as good as new: dropped
    const idle = this.#idle.get(key) ?? [];
    if (idle.length >= this.#perIdentity) return;
    idle.push(server);
    this.#idle.delete(key);
    this.#idle.set(key, idle);
    while (this.#idle.size > this.#identities) {
      const oldest = this.#idle.keys().next().value as string;
      this.#idle.delete(oldest);
    }
  }
}
