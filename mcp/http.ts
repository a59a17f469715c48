/**
 * The MCP service over Streamable HTTP on node:http, stateless: the SDK's `createMcpHandler`
 * builds a fresh server from our factory for every request (2026-07-28 clients) and, for 2025-era
 * clients, serves each request with a fresh server over a `sessionIdGenerator: undefined`
 * streamable transport (GET/DELETE session operations answer 405).
 *
 * Owns: the listening socket, the `path` route, `GET /healthz`, and DNS-rebinding protection
 * (Host and Origin must be loopback names). Leaves to others: authentication, which does not
 * exist yet — so binding anything but a loopback address is refused.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { hostHeaderValidation, originValidation, toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler } from '@modelcontextprotocol/server';
import { createJobscribeServer, queryDeps, type McpDeps } from './server.js';

export interface HttpServerOptions {
  /** Loopback only (127.0.0.0/8, ::1, localhost) until authentication exists. Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port; the returned url has the real one. */
  port: number;
  /** Default /mcp. */
  path?: string;
}

export interface RunningHttpServer {
  url: string;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export async function startHttpServer(deps: McpDeps, options: HttpServerOptions): Promise<RunningHttpServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  if (!isLoopbackHost(host)) {
    throw new Error(
      `refusing to serve MCP on ${host}: non-loopback binds need authentication, which this server does not offer yet; ` +
        'bind 127.0.0.1 (or ::1, localhost) and reach it through an authenticating proxy or an SSH tunnel',
    );
  }
  queryDeps(deps); // fail fast on bad deps

  const bare = host.replace(/^\[|\]$/g, '');
  const urlHost = isIPv6(bare) ? `[${bare}]` : bare;
  const allowed = [...new Set(['localhost', '127.0.0.1', '[::1]', urlHost])];
  const validHost = hostHeaderValidation(allowed);
  const validOrigin = originValidation(allowed);
  const logError = (err: Error) => process.stderr.write(`jobscribe mcp (http): ${err.message}\n`);
  const mcp = createMcpHandler(() => createJobscribeServer(deps), { onerror: logError });
  const serveMcp = toNodeHandler(mcp, { onerror: logError });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname === '/healthz') {
      if (req.method === 'GET' || req.method === 'HEAD') sendJson(res, 200, { status: 'ok' });
      else sendJson(res, 405, { error: 'method not allowed' });
      return;
    }
    if (pathname !== path) {
      sendJson(res, 404, { error: `not found; the MCP endpoint is ${path}` });
      return;
    }
    if (!validHost(req, res) || !validOrigin(req, res)) return;
    serveMcp(req, res).catch((err: unknown) => {
      logError(err instanceof Error ? err : new Error(String(err)));
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    });
  };

  const server = createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, bare, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${urlHost}:${port}${path}`,
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      server.closeAllConnections();
      await mcp.close();
      await closed;
    },
  };
}
