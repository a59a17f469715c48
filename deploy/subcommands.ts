/**
 * The long-running and one-shot commands other than `up`: scribe, project, mcp, replay, status.
 * Each takes a resolved Config and returns an exit code; cli.ts parses flags into them.
 */
import type { Config } from '../schemas/config.js';
import { ConfigError } from '../schemas/errors.js';
import { eventsTopicPattern, type StartPosition } from '../log/eventLog.js';
import { Projector, projectorGroup } from '../projector/consume.js';
import { replay } from '../projector/rebuild.js';
import { runScribe } from '../scribe/scribe.js';
import { serveStdio } from '../mcp/stdio.js';
import { startHttpServer, unauthenticatedWarning } from '../mcp/http.js';
import { projectorLagOf } from '../mcp/tools/clusterStatus.js';
import type { Logger } from './logger.js';
import { mcpActionDeps, mcpHttpOptions, openScribeLog, openStores, reportLag, scribeOptions, signingPolicy } from './runtime.js';
import { onShutdown } from './shutdown.js';
import { progressBar } from './progress.js';
import { ProcessMetrics, startHealthServer, type HealthServer } from './health.js';

function untilShutdown(logger: Logger): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const dispose = onShutdown((sig) => {
    logger.info(`${sig} received: stopping`);
    ac.abort();
  });
  return { signal: ac.signal, dispose };
}

/** `--metrics-port`: /healthz and /metrics of this process, or nothing. */
async function maybeHealthServer(config: Config, logger: Logger, metrics: ProcessMetrics, beforeRender?: () => Promise<void>): Promise<HealthServer | undefined> {
  if (config.metricsPort === undefined) return undefined;
  const server = await startHealthServer(metrics, { host: config.metricsHost, port: config.metricsPort, ...(beforeRender && { beforeRender }) });
  // stdout, like `MCP endpoint:`: what a supervisor or a test reads to find the port.
  process.stdout.write(`health and metrics: ${server.url}/healthz ${server.url}/metrics\n`);
  return server;
}

export async function runScribeCommand(config: Config, logger: Logger): Promise<number> {
  const signing = signingPolicy(config);
  const stores = await openScribeLog(config, logger);
  const { signal, dispose } = untilShutdown(logger);
  const metrics = new ProcessMetrics('scribe');
  const cluster = { cluster: config.cluster };
  const opts = scribeOptions(config, stores.log, signing, signal, logger);
  opts.onPublished = (n) => {
    metrics.progressed(n);
    metrics.count('events_published_total', cluster, n);
    metrics.count('batches_total', cluster);
    metrics.gauge('last_publish_timestamp_seconds', cluster, Math.round(Date.now() / 1000));
  };
  opts.onRetry = (step, err) => metrics.retrying(step, err);
  if (opts.commands) {
    const logResult = opts.commands.onResult;
    opts.commands.onResult = (r) => {
      logResult?.(r);
      metrics.count('commands_total', { ...cluster, status: r.status });
    };
  }
  let health: HealthServer | undefined;
  try {
    health = await maybeHealthServer(config, logger, metrics);
    const stats = await runScribe(opts);
    logger.info(`scribe stopped after publishing ${stats.published} events`);
    return 0;
  } finally {
    await health?.close();
    dispose();
    await stores.close();
  }
}

export async function runProjectCommand(config: Config, logger: Logger): Promise<number> {
  const signing = signingPolicy(config);
  const stores = await openStores(config, logger);
  const { signal, dispose } = untilShutdown(logger);
  const projector = new Projector({
    clickhouse: stores.ch.client,
    database: config.database,
    log: stores.log,
    topicPrefix: config.topicPrefix,
    signing,
  });
  const metrics = new ProcessMetrics('projector');
  projector.on('batch', (b) => {
    logger.debug(`${b.topic}[${b.partition}] ${b.firstOffset}-${b.lastOffset}: ${b.events} events, lag ${b.highWatermark - b.lastOffset - 1n}`);
    metrics.progressed(b.events);
    metrics.count('events_total', { topic: b.topic }, b.events);
    metrics.count('dead_letters_total', { topic: b.topic }, b.deadLetters);
    metrics.count('batches_total', { topic: b.topic });
    metrics.gauge('last_batch_timestamp_seconds', {}, Math.round(Date.now() / 1000));
  });
  projector.on('retry', (r) => metrics.retrying('write', r.error));
  const refreshLag = async () => {
    for (const p of await stores.log.lag(projector.group, eventsTopicPattern(config.topicPrefix))) {
      metrics.gauge('lag', { topic: p.topic, partition: String(p.partition) }, Number(p.lag));
    }
  };
  const stopReporting = reportLag(stores.log, projector.group, config.topicPrefix, logger, () => `projected ${projector.totals.events} events`);
  let health: HealthServer | undefined;
  try {
    health = await maybeHealthServer(config, logger, metrics, refreshLag);
    await projector.run(signal);
    return 0;
  } finally {
    await health?.close();
    stopReporting();
    dispose();
    await stores.close();
  }
}

export async function runMcpCommand(config: Config, logger: Logger, mode: { stdio: boolean }): Promise<number> {
  const signing = signingPolicy(config);
  const httpOptions = mode.stdio ? undefined : mcpHttpOptions(config, logger); // exit 2 before opening stores
  const stores = await openStores(config, logger);
  const deps = {
    // The tools, and run_sql per kind of identity, each on a connection of their own.
    clickhouse: stores.ch.connect('mcp'),
    sqlClickhouse: { users: stores.ch.connect('sql-users'), admins: stores.ch.connect('sql-admins') },
    database: config.database,
    logLag: projectorLagOf(stores.log, projectorGroup(config.topicPrefix), config.topicPrefix),
    ...(config.mcpCapacity && { capacity: config.mcpCapacity }),
    // Actions go to the clusters' commands topics of this same log (their scribes execute them).
    ...mcpActionDeps(config, stores.log, signing),
  };
  const { signal, dispose } = untilShutdown(logger);
  try {
    if (mode.stdio) {
      await serveStdio(deps, signal);
    } else {
      const http = await startHttpServer({ ...deps, jobDetails: config.mcpJobDetails }, httpOptions!);
      const warning = unauthenticatedWarning(httpOptions!, http.url); // whatever the log level
      if (warning) process.stderr.write(`jobscribe: ${warning}\n`);
      process.stdout.write(`MCP endpoint: ${http.url}\n`);
      await new Promise<void>((res) => signal.addEventListener('abort', () => res(), { once: true }));
      await http.close();
    }
    return 0;
  } finally {
    dispose();
    await stores.close();
  }
}

export interface ReplayFlags {
  fromOffset?: string;
  fromTime?: string;
  rebuild?: boolean;
  swap?: boolean;
}

export function replayStart(flags: ReplayFlags): StartPosition {
  if (flags.fromOffset !== undefined && flags.fromTime !== undefined) {
    throw new ConfigError('replay: give either --from-offset or --from-time, not both');
  }
  if (flags.fromOffset !== undefined) {
    if (!/^\d+$/.test(flags.fromOffset)) throw new ConfigError(`replay: --from-offset must be a whole number >= 0, got "${flags.fromOffset}"`);
    return { from: 'offset', offset: BigInt(flags.fromOffset) };
  }
  if (flags.fromTime !== undefined) {
    const ms = Date.parse(flags.fromTime);
    if (Number.isNaN(ms)) throw new ConfigError(`replay: --from-time must be an ISO-8601 time such as 2026-11-23T08:00:00Z, got "${flags.fromTime}"`);
    return { from: 'time', timestamp: ms };
  }
  if (flags.rebuild) return { from: 'earliest' };
  throw new ConfigError('replay: give --from-offset N or --from-time T (or --rebuild to rebuild from the beginning)');
}

export async function runReplayCommand(config: Config, logger: Logger, flags: ReplayFlags): Promise<number> {
  const start = replayStart(flags);
  const signing = signingPolicy(config);
  const stores = await openStores(config, logger);
  const { signal, dispose } = untilShutdown(logger);
  const bar = progressBar(process.stderr, flags.rebuild ? 'rebuild' : 'replay');
  try {
    const result = await replay({
      clickhouse: stores.ch.client,
      database: config.database,
      log: stores.log,
      topicPrefix: config.topicPrefix,
      start,
      rebuild: flags.rebuild,
      swap: flags.swap,
      signal,
      onProgress: (p) => bar.update(p),
      signing,
    });
    bar.done();
    const where = flags.rebuild ? (result.swapped ? 'into fresh tables, swapped in' : `into tables with suffix ${result.suffix}`) : 'into the live tables';
    process.stdout.write(`replayed ${result.events} events (${result.deadLetters} dead letters) ${where}\n`);
    return signal.aborted ? 130 : 0;
  } finally {
    dispose();
    await stores.close();
  }
}

export async function runStatusCommand(config: Config, logger: Logger, opts: { json?: boolean }): Promise<number> {
  const stores = await openStores(config, logger);
  try {
    const { client } = stores.ch;
    const db = config.database;
    const lag = await stores.log.lag(projectorGroup(config.topicPrefix), eventsTopicPattern(config.topicPrefix));
    const q = async <T>(query: string) => (await client.query({ query, format: 'JSONEachRow' })).json<T>();
    const clusters = await q<{ cluster: string; jobs: string; pending: string; running: string; last_event: string }>(
      `SELECT cluster, count() AS jobs, countIf(state = 'pending') AS pending, countIf(state = 'running') AS running,
              toString(max(last_event_ts)) AS last_event
         FROM ${db}.jobs FINAL GROUP BY cluster ORDER BY cluster`,
    );
    const [events] = await q<{ n: string }>(`SELECT count() AS n FROM ${db}.job_events FINAL`);
    const [dead] = await q<{ n: string }>(`SELECT count() AS n FROM ${db}.dead_letters FINAL`);
    const status = {
      log: stores.log.kind,
      partitions: lag.map((p) => ({ ...p, committed: p.committed?.toString() ?? null, highWatermark: p.highWatermark.toString(), lag: p.lag.toString() })),
      clusters,
      job_events: Number(events?.n ?? 0),
      dead_letters: Number(dead?.n ?? 0),
    };
    if (opts.json) {
      process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    } else {
      const lines = [`event log: ${status.log}`, 'projector positions:'];
      for (const p of status.partitions) lines.push(`  ${p.topic}[${p.partition}] committed ${p.committed ?? '-'} of ${p.highWatermark}, lag ${p.lag}`);
      if (status.partitions.length === 0) lines.push('  (no topics yet)');
      lines.push('clusters:');
      for (const c of clusters) lines.push(`  ${c.cluster}: ${c.jobs} jobs (${c.pending} pending, ${c.running} running), last event ${c.last_event} UTC`);
      if (clusters.length === 0) lines.push('  (no jobs yet)');
      lines.push(`job_events: ${status.job_events}, dead_letters: ${status.dead_letters}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } finally {
    await stores.close();
  }
}
