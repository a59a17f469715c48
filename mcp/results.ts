/**
 * Tool results: structured content plus its compact JSON text, and the error funnel. Expected
 * failures (bad arguments, no such job) become `isError` results whose text tells the agent what
 * to do; ClickHouse failures are logged in full with a reference and answered with one line.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { JobscribeError } from '../schemas/errors.js';
import type { ToolOutcome } from './metrics.js';
import type { QueryDeps } from './sql.js';

/** A failure the agent can fix; its message is shown as is. */
export class ToolInputError extends JobscribeError {
  constructor(message: string) {
    super(message, { code: 'tool_input' });
  }
}

export function toolResult(structured: { [key: string]: unknown }): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

export function toolError(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

/**
 * Runs a tool body; turns every failure into an `isError` result, and reports the call's outcome
 * and duration to `deps.metrics` (every tool goes through here, so every tool is measured).
 */
export async function runTool(deps: QueryDeps, tool: string, body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  const started = performance.now();
  const done = (result: CallToolResult, outcome: ToolOutcome): CallToolResult => {
    deps.metrics?.toolCall(tool, outcome, (performance.now() - started) / 1000);
    return result;
  };
  try {
    const result = await body();
    return done(result, result.isError ? 'tool_error' : 'ok');
  } catch (err) {
    if (err instanceof ToolInputError) return done(toolError(err.message), 'tool_error');
    const ref = logStoreFailure(deps, tool, err);
    return done(toolError(`${tool}: ${storeFailureHint(err, deps)} (ref ${ref})`), 'store_error');
  }
}

/** Logs a store failure of `what` in full under a fresh reference, and returns the reference (for the one-line answer). */
export function logStoreFailure(deps: Pick<QueryDeps, 'logError'>, what: string, err: unknown): string {
  const ref = randomUUID().slice(0, 8);
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  deps.logError(`jobscribe mcp: ${what} failed (ref ${ref}): ${detail}`);
  return ref;
}

function storeFailureHint(err: unknown, deps: QueryDeps): string {
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  switch (type) {
    case 'TIMEOUT_EXCEEDED':
    case 'TOO_SLOW':
      return `the query ran longer than ${deps.limits.maxExecutionTimeS} s; narrow it (cluster, user, state, time range) and try again`;
    case 'TOO_MANY_ROWS_OR_BYTES':
      return `the answer is larger than ${deps.limits.maxRows} rows; narrow it`;
    case 'UNKNOWN_DATABASE':
    case 'UNKNOWN_TABLE':
      return 'the job store has no job tables yet; try again once jobscribe has recorded events';
    case 'QUERY_WAS_CANCELLED':
      return 'cancelled';
    default:
      return 'the job store could not answer; try again later';
  }
}
