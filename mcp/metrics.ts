/**
 * Prometheus metrics of the MCP service, rendered by hand in the text exposition format (0.0.4):
 * HTTP requests by route and status, tool calls by tool and outcome, tool latency histograms,
 * authentication failures and rate-limited requests.
 *
 * Owns: the metric names, their labels (a fixed, small set of values each: never a user, token
 * or job id) and the rendering. Leaves to others: when to count (http.ts counts requests,
 * results.ts `runTool` times every tool through the `ToolMetricsSink` it is given).
 */

/** How one tool call ended: a result, an `isError` result the agent can act on, or a store failure. */
export type ToolOutcome = 'ok' | 'tool_error' | 'store_error';

/** What runTool reports to; optional in QueryDeps so tests and stdio may leave it out. */
export interface ToolMetricsSink {
  toolCall(tool: string, outcome: ToolOutcome, seconds: number): void;
}

/** Why a request was refused before reaching MCP. */
export type AuthFailure = 'missing_token' | 'invalid_token' | 'insufficient_scope';

/** Upper bounds (seconds) of the tool latency histogram buckets. */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

interface Histogram {
  /** Cumulative-free counts per bucket (index LATENCY_BUCKETS_S.length is +Inf). */
  buckets: number[];
  sum: number;
  count: number;
}

export class McpMetrics implements ToolMetricsSink {
  private readonly requests = new Map<string, number>();
  private readonly toolCalls = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private readonly authFailures = new Map<string, number>();
  private rateLimited = 0;
  private loginThrottled = 0;

  httpRequest(route: string, status: number): void {
    bump(this.requests, labels({ route, status: String(status) }));
  }

  toolCall(tool: string, outcome: ToolOutcome, seconds: number): void {
    bump(this.toolCalls, labels({ tool, outcome }));
    let h = this.latency.get(tool);
    if (!h) {
      h = { buckets: new Array<number>(LATENCY_BUCKETS_S.length + 1).fill(0), sum: 0, count: 0 };
      this.latency.set(tool, h);
    }
    const i = LATENCY_BUCKETS_S.findIndex((le) => seconds <= le);
    h.buckets[i === -1 ? LATENCY_BUCKETS_S.length : i]! += 1;
    h.sum += seconds;
    h.count += 1;
  }

  authFailure(reason: AuthFailure): void {
    bump(this.authFailures, labels({ reason }));
  }

  rateLimitedRequest(): void {
    this.rateLimited += 1;
  }

  /** A request refused with 429 because its address failed authentication too often. */
  loginThrottledRequest(): void {
    this.loginThrottled += 1;
  }

  /** The text exposition format, `Content-Type: text/plain; version=0.0.4`. */
  render(): string {
    const out: string[] = [];
    family(out, 'jobscribe_mcp_http_requests_total', 'counter', 'HTTP requests answered, by route and status code.', this.requests);
    family(out, 'jobscribe_mcp_tool_calls_total', 'counter', 'MCP tool calls, by tool and outcome (ok, tool_error, store_error).', this.toolCalls);
    out.push('# HELP jobscribe_mcp_tool_duration_seconds Time to answer one tool call, by tool.');
    out.push('# TYPE jobscribe_mcp_tool_duration_seconds histogram');
    for (const [tool, h] of [...this.latency].sort(([a], [b]) => a.localeCompare(b))) {
      let cumulative = 0;
      LATENCY_BUCKETS_S.forEach((le, i) => {
        cumulative += h.buckets[i]!;
        out.push(`jobscribe_mcp_tool_duration_seconds_bucket${labels({ tool, le: String(le) })} ${cumulative}`);
      });
      out.push(`jobscribe_mcp_tool_duration_seconds_bucket${labels({ tool, le: '+Inf' })} ${h.count}`);
      out.push(`jobscribe_mcp_tool_duration_seconds_sum${labels({ tool })} ${h.sum}`);
      out.push(`jobscribe_mcp_tool_duration_seconds_count${labels({ tool })} ${h.count}`);
    }
    family(out, 'jobscribe_mcp_auth_failures_total', 'counter', 'Requests refused by authentication, by reason.', this.authFailures);
    out.push('# HELP jobscribe_mcp_rate_limited_total Requests refused with 429 by the per-identity rate limit.');
    out.push('# TYPE jobscribe_mcp_rate_limited_total counter');
    out.push(`jobscribe_mcp_rate_limited_total ${this.rateLimited}`);
    out.push('# HELP jobscribe_mcp_login_throttled_total Requests refused with 429 because their address failed authentication too often.');
    out.push('# TYPE jobscribe_mcp_login_throttled_total counter');
    out.push(`jobscribe_mcp_login_throttled_total ${this.loginThrottled}`);
    return out.join('\n') + '\n';
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function family(out: string[], name: string, type: string, help: string, series: Map<string, number>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [key, value] of [...series].sort(([a], [b]) => a.localeCompare(b))) out.push(`${name}${key} ${value}`);
}

/** `{a="x",b="y"}` with label values escaped as the exposition format requires. */
export function labels(values: Record<string, string>): string {
  const parts = Object.entries(values).map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}
