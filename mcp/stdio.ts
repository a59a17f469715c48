/**
 * The MCP service over stdio (one client, the process that started us). Uses the SDK's
 * `serveStdio` entry, which picks the protocol era from the client's opening message and pins
 * one server instance from our factory for the connection. stdout carries only MCP messages;
 * diagnostics go to stderr. Resolves when the client closes stdin or `signal` aborts.
 */
import { StdioServerTransport, serveStdio as sdkServeStdio } from '@modelcontextprotocol/server/stdio';
import { createJobscribeServer, queryDeps, type McpDeps } from './server.js';

export async function serveStdio(deps: McpDeps, signal?: AbortSignal): Promise<void> {
  queryDeps(deps); // fail fast on bad deps, before a client connects
  const transport = new StdioServerTransport();
  const handle = sdkServeStdio(() => createJobscribeServer(deps), {
    transport,
    onerror: (err) => process.stderr.write(`jobscribe mcp (stdio): ${err.message}\n`),
  });
  await new Promise<void>((resolve) => {
    // serveStdio installed its own onclose; chain ours after it.
    const sdkOnClose = transport.onclose;
    transport.onclose = () => {
      sdkOnClose?.();
      resolve();
    };
    if (signal?.aborted) void handle.close().finally(resolve);
    else signal?.addEventListener('abort', () => void handle.close().finally(resolve), { once: true });
  });
}
