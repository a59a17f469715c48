/**
 * `jobscribe up`: the whole system in one process on the embedded default — simulated cluster →
 * scribe → embedded log → projector → ClickHouse (chDB) → MCP over HTTP. Data stays in the data
 * directory, so a restart continues where it stopped. SIGINT/SIGTERM finish the batch in hand
 * and exit 0.
 */
import { resolve } from 'node:path';
import type { Config } from '../schemas/config.js';
import { Projector, projectorGroup } from '../projector/consume.js';
import { runScribe } from '../scribe/scribe.js';
import { startHttpServer, unauthenticatedWarning } from '../mcp/http.js';
import { projectorLagOf } from '../mcp/tools/clusterStatus.js';
import { jobTags, ReadCache, ReadModelPosition } from '../mcp/readCache.js';
import type { Logger } from './logger.js';
import { ConfigError } from '../schemas/errors.js';
import { describeSource, mcpActionDeps, mcpHttpOptions, openStores, reportLag, scribeOptions, signingPolicy, upClusters } from './runtime.js';
import { onShutdown } from './shutdown.js';
import { watchBackfill } from './backfill.js';
import type { SimSource } from '../scribe/sim/index.js';

export async function runUp(config: Config, logger: Logger): Promise<number> {
  const clusters = upClusters(config); // before opening anything: a bad --sim-clusters exits 2
  const signing = signingPolicy(config); // likewise a bad signingKeys file; --sim-clusters share it
  // Likewise the MCP settings (bind without auth, tokens file, OAuth URLs): exit 2 before any store opens.
  const httpOptions = mcpHttpOptions(config, logger);
  const stores = await openStores(config, logger);
  const ac = new AbortController();
  const removeHandlers = onShutdown((sig) => {
    logger.info(`${sig} received: finishing the current batch and stopping`);
    ac.abort();
  });
  const { client, database } = stores.ch;
  const projector = new Projector({ clickhouse: client, database, log: stores.log, topicPrefix: config.topicPrefix, signing });
  // The projector runs here, so the MCP tools can cache per read-model position (mcp/readCache.ts).
  const position = new ReadModelPosition();
  projector.on('batch', (b) => position.advance(jobTags(b.jobRows)));
  const readCache = new ReadCache(position);
  let published = 0;
  const failures: Error[] = [];
  const fail = (what: string) => (err: Error) => {
    if (ac.signal.aborted) return;
    logger.error(`${what} stopped: ${err.message}`);
    failures.push(err);
    ac.abort();
  };

  const projecting = projector.run(ac.signal).catch(fail('projector'));
  const scribes = clusters.map((c) => ({ config: c, options: scribeOptions(c, stores.log, signing, ac.signal, logger) }));
  const scribing = scribes.map(({ config: c, options }) =>
    runScribe({ ...options, onPublished: (n) => (published += n) })
      .then(() => {
        if (!ac.signal.aborted) logger.info(`the ${c.cluster} source has no more events; still serving`);
      })
      .catch(fail(clusters.length > 1 ? `scribe of ${c.cluster}` : 'scribe')),
  );

  let http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  try {
    const logLag = projectorLagOf(stores.log, projectorGroup(config.topicPrefix), config.topicPrefix);
    http = await startHttpServer(
      { clickhouse: stores.ch.connectPool('mcp', 2), lookupClickhouse: stores.ch.connect('mcp-lookups'), readCache, sqlClickhouse: { users: stores.ch.connect('sql-users'), admins: stores.ch.connect('sql-admins') }, database, logLag, jobDetails: config.mcpJobDetails, ...(config.mcpCapacity && { capacity: config.mcpCapacity }), ...mcpActionDeps(config, stores.log, signing) },
      httpOptions,
    );
  } catch (err) {
    fail('MCP HTTP server')(err as Error);
  }

  if (http) {
    // Whatever the log level: this one must be seen.
    const warning = unauthenticatedWarning(httpOptions, http.url);
    if (warning) process.stderr.write(`jobscribe: ${warning}\n`);
    const config_ = { mcpServers: { jobscribe: { type: 'http', url: http.url } } };
    process.stdout.write(
      [
        'jobscribe is up.',
        `  MCP endpoint: ${http.url}`,
        `  data dir:     ${resolve(config.dataDir)}`,
        ...clusters.map((c, i) => `  ${i === 0 ? (clusters.length > 1 ? 'clusters:' : 'cluster: ') : '         '}     ${c.cluster} (${describeSource(c)})`),
        '  client config:',
        JSON.stringify(config_, null, 2)
          .split('\n')
          .map((l) => '    ' + l)
          .join('\n'),
        ...exampleQuestions(clusters.map((c) => c.cluster)),
        '',
      ].join('\n'),
    );
  }

  // Simulated clusters on the wall clock back-fill their history first: show how far they are.
  const backfilling = scribes.flatMap(({ config: c, options }) => {
    const source = options.source as Partial<SimSource>;
    return c.source === 'sim' && source.options?.clock === 'wall' ? [{ cluster: c.cluster, time: () => source.simulator!.time, from: () => source.simulator!.options.epoch }] : [];
  });
  const stopBackfillReport = watchBackfill(backfilling, { projected: () => projector.totals.events, published: () => published }, process.stderr);

  const stopReporting = reportLag(stores.log, projectorGroup(config.topicPrefix), config.topicPrefix, logger, () => `published ${published} events, projected ${projector.totals.events}`);

  await new Promise<void>((res) => (ac.signal.aborted ? res() : ac.signal.addEventListener('abort', () => res(), { once: true })));
  stopReporting();
  stopBackfillReport();
  await Promise.allSettled([projecting, ...scribing]);
  await http?.close();
  await stores.close();
  removeHandlers();
  logger.info('stopped');
  // A configuration error found only once serving (none is known) still exits 2, like the flags.
  return failures.some((e) => e instanceof ConfigError) ? 2 : failures.length > 0 ? 1 : 0;
}

/** Three questions to try, naming the clusters being served. */
export function exampleQuestions(clusters: readonly string[]): string[] {
  const [a = 'sim', b = a] = clusters;
  return [
    '  try asking your agent:',
    `    - Which jobs failed on ${b} in the last 24 hours, and why?`,
    `    - How long are jobs waiting in ${a}'s queues right now, and which queue is busiest?`,
    `    - Who used the most core-hours on ${clusters.length > 1 ? 'each cluster' : a} this week?`,
  ];
}
