/**
 * `/healthz` and Prometheus `/metrics` for the scribe and projector processes (`--metrics-port`;
 * the MCP service serves its own on its HTTP port, mcp/http.ts). Off unless a port is given;
 * binds loopback by default (`--metrics-host`), since the figures name topics and clusters.
 *
 * Owns: the metric names of those two processes, how their health is judged (a process that has
 * been retrying the same failing step for longer than `unhealthyAfterS` answers 503 with the
 * error, so a probe or an alert sees a scribe that cannot publish or a projector that cannot
 * write), and the tiny HTTP server. Leaves to others: when to count (deploy/subcommands.ts wires the
 * scribe's and projector's hooks to these functions).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { labels } from '../mcp/metrics.js';

type Series = Map<string, number>;

/** Every metric these processes export (after `jobscribe_<component>_`): type and help text. */
export const PROCESS_METRICS = {
  scribe: {
    events_published_total: ['counter', 'Events the log acknowledged.'],
    batches_total: ['counter', 'Batches the log acknowledged.'],
    last_publish_timestamp_seconds: ['gauge', 'When the log last acknowledged a batch, seconds since 1970.'],
    commands_total: ['counter', 'Commands answered, by status (accepted, rejected, failed).'],
    retries_total: ['counter', 'Failed steps retried with back-off, by step (publish, checkpoint).'],
    events_per_second: ['gauge', 'Events handled per second over the last minute.'],
    healthy: ['gauge', '1 when the process is not stuck retrying a failing step.'],
    metrics_refresh_failures_total: ['counter', 'Scrapes whose on-demand figures could not be read.'],
  },
  projector: {
    events_total: ['counter', 'Job events written to ClickHouse, by topic.'],
    dead_letters_total: ['counter', 'Records moved to dead_letters, by topic.'],
    batches_total: ['counter', 'Batches written and committed, by topic.'],
    last_batch_timestamp_seconds: ['gauge', 'When the last batch was committed, seconds since 1970.'],
    lag: ['gauge', 'Records not yet projected, by topic and partition.'],
    retries_total: ['counter', 'Failed steps retried with back-off, by step (write).'],
    events_per_second: ['gauge', 'Events handled per second over the last minute.'],
    healthy: ['gauge', '1 when the process is not stuck retrying a failing step.'],
    metrics_refresh_failures_total: ['counter', 'Scrapes whose on-demand figures (lag) could not be read.'],
  },
} as const satisfies Record<string, Record<string, readonly ['counter' | 'gauge', string]>>;

type Component = keyof typeof PROCESS_METRICS;
/** The process-level metrics every one of them also exports. */
export const RUNTIME_METRICS = ['process_resident_memory_bytes', 'nodejs_heap_used_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds'] as const;

interface Family {
  type: 'counter' | 'gauge';
  help: string;
  series: Series;
}

/** Counters and gauges with small fixed label sets (cluster, topic, partition, status: never a job or user). */
export class ProcessMetrics<C extends Component = Component> {
  private readonly families = new Map<string, Family>();
  private failingSince: number | undefined;
  private lastError: string | undefined;
  private readonly samples: Array<{ at: number; n: number }> = [];
  readonly startedAt = Date.now();

  constructor(
    /** `scribe` or `projector`: the metric name prefix after `jobscribe_`. */
    readonly component: C,
    private readonly unhealthyAfterS = 60,
    private readonly now: () => number = Date.now,
  ) {}

  private family(name: keyof (typeof PROCESS_METRICS)[C]): Series {
    const full = `jobscribe_${this.component}_${String(name)}`;
    let f = this.families.get(full);
    if (!f) {
      const [type, help] = PROCESS_METRICS[this.component][name] as readonly [Family['type'], string];
      this.families.set(full, (f = { type, help, series: new Map() }));
    }
    return f.series;
  }

  count(name: keyof (typeof PROCESS_METRICS)[C], values: Record<string, string>, by = 1): void {
    const s = this.family(name);
    const key = labels(values);
    s.set(key, (s.get(key) ?? 0) + by);
  }

  gauge(name: keyof (typeof PROCESS_METRICS)[C], values: Record<string, string>, value: number): void {
    this.family(name).set(labels(values), value);
  }

  /** Events handled now (for the events-per-second gauge over the last minute). */
  progressed(events: number): void {
    const at = this.now();
    this.samples.push({ at, n: events });
    while (this.samples.length > 0 && this.samples[0]!.at < at - 60_000) this.samples.shift();
    this.failingSince = undefined;
    this.lastError = undefined;
  }

  /** A step failed and is being retried; healthy again at the next `progressed` or `recovered`. */
  retrying(what: string, err: unknown): void {
    this.count('retries_total', { step: what });
    this.failingSince ??= this.now();
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  recovered(): void {
    this.failingSince = undefined;
    this.lastError = undefined;
  }

  health(): { ok: boolean; body: Record<string, unknown> } {
    const failingS = this.failingSince === undefined ? 0 : (this.now() - this.failingSince) / 1000;
    const ok = failingS <= this.unhealthyAfterS;
    return {
      ok,
      body: {
        status: ok ? 'ok' : 'failing',
        component: this.component,
        uptime_s: Math.round((this.now() - this.startedAt) / 1000),
        ...(this.failingSince !== undefined && { failing_for_s: Math.round(failingS), last_error: this.lastError }),
      },
    };
  }

  eventsPerSecond(): number {
    const at = this.now();
    const recent = this.samples.filter((s) => s.at >= at - 60_000);
    const span = Math.min(60, Math.max(1, (at - this.startedAt) / 1000));
    return recent.reduce((a, s) => a + s.n, 0) / span;
  }

  render(): string {
    const out: string[] = [];
    this.gauge('events_per_second', {}, Math.round(this.eventsPerSecond() * 10) / 10);
    this.gauge('healthy', {}, this.health().ok ? 1 : 0);
    for (const [name, f] of [...this.families].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const [key, value] of [...f.series].sort(([a], [b]) => a.localeCompare(b))) out.push(`${name}${key} ${value}`);
    }
    const mem = process.memoryUsage();
    out.push(
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${mem.rss}`,
      '# HELP nodejs_heap_used_bytes V8 heap in use, bytes.',
      '# TYPE nodejs_heap_used_bytes gauge',
      `nodejs_heap_used_bytes ${mem.heapUsed}`,
      '# HELP process_cpu_seconds_total User and system CPU time spent, seconds.',
      '# TYPE process_cpu_seconds_total counter',
      `process_cpu_seconds_total ${(() => {
        const c = process.cpuUsage();
        return (c.user + c.system) / 1e6;
      })()}`,
      '# HELP process_start_time_seconds Start time of the process since 1970, seconds.',
      '# TYPE process_start_time_seconds gauge',
      `process_start_time_seconds ${Math.round(this.startedAt / 1000)}`,
    );
    return out.join('\n') + '\n';
  }
}

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /healthz` (200, or 503 while failing) and `GET /metrics`. `beforeRender` refreshes
 * gauges that are read on demand (the projector's lag); its failure is reported, not fatal.
 */
export async function startHealthServer(metrics: ProcessMetrics, opts: { host: string; port: number; beforeRender?: () => Promise<void> }): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":"method not allowed"}');
      return;
    }
    if (path === '/healthz') {
      const h = metrics.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h.body));
    } else if (path === '/metrics') {
      void (opts.beforeRender ?? (async () => undefined))()
        .catch((err: unknown) => metrics.count('metrics_refresh_failures_total', { reason: (err as Error).name || 'Error' }))
        .then(() => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render()));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: /healthz and /metrics are served here"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
