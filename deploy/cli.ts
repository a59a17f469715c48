#!/usr/bin/env node
/**
 * jobscribe — event-sourced job history for HPC schedulers, answerable by AI agents over MCP.
 *
 * The CLI is the composition root: it resolves the configuration (flags > JOBSCRIBE_* env >
 * config file > defaults, validated by schemas/config.ts) and starts the components:
 *   up       everything in one process on the embedded default (simulator, log, projector, MCP)
 *   scribe   a cluster's scribe: scheduler events → event log
 *   project  the projector: event log → ClickHouse read model
 *   mcp      the MCP service over stdio or Streamable HTTP
 *   replay   re-project a range of the log, or rebuild the read model into fresh tables
 *   status   log positions, projector lag, what the read model holds
 *   schema   print the ClickHouse DDL (single server, or a replicated server cluster)
 * Exit codes: 0 ok, 1 runtime failure, 2 bad flags or configuration.
 */
import { Command, CommanderError, Option } from 'commander';
import { CONFIG_KEYS, flagName, envName, type ConfigKey } from '../schemas/config.js';
import { JobscribeError, ConfigError } from '../schemas/errors.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { runUp } from './up.js';
import { runMcpCommand, runProjectCommand, runReplayCommand, runScribeCommand, runStatusCommand } from './subcommands.js';
import { VERSION } from './runtime.js';
import { schemaScript } from './schema.js';

const HELP: Record<ConfigKey, string> = {
  dataDir: 'data directory (embedded ClickHouse, embedded log, checkpoints)',
  database: 'ClickHouse database name',
  clickhouseUrl: 'ClickHouse server URL instead of the embedded engine',
  clickhouseUser: 'ClickHouse user (with --clickhouse-url)',
  clickhousePassword: 'ClickHouse password (with --clickhouse-url)',
  topicPrefix: 'event log topic prefix',
  kafka: 'Kafka bootstrap brokers host:port[,host:port] (default: the embedded log)',
  kafkaClientId: 'Kafka client id',
  kafkaSsl: 'connect to Kafka with TLS',
  kafkaCa: 'Kafka TLS CA certificate (PEM file or text)',
  kafkaSaslMechanism: 'Kafka SASL mechanism: plain, scram-sha-256, scram-sha-512',
  kafkaUsername: 'Kafka SASL user',
  kafkaPassword: 'Kafka SASL password',
  kafkaPartitions: 'partitions of the topics jobscribe creates',
  httpHost: 'MCP HTTP bind address',
  httpPort: 'MCP HTTP port (0: any free port)',
  mcpTokens: 'MCP HTTP: JSON file of bearer tokens [{name, token_sha256|token, user, roles}]',
  mcpOauthIssuer: 'MCP HTTP OAuth: authorization server issuer (tokens\' iss)',
  mcpOauthJwksUrl: 'MCP HTTP OAuth: JWKS URL of the issuer\'s signing keys',
  mcpOauthAudience: 'MCP HTTP OAuth: audience tokens must name (default: the public MCP URL)',
  mcpOauthUserClaim: 'MCP HTTP OAuth: claim holding the scheduler user name',
  mcpOauthRolesClaim: 'MCP HTTP OAuth: claim holding roles (admin, approver)',
  mcpOauthScope: 'MCP HTTP OAuth: scope every token must carry',
  mcpPublicUrl: 'MCP HTTP: URL clients use for the MCP endpoint (proxy, 0.0.0.0 binds)',
  mcpAllowedHosts: 'MCP HTTP: more Host/Origin names to accept, comma-separated',
  mcpRateLimit: 'MCP HTTP: requests per minute per identity (0: no limit)',
  mcpRateBurst: 'MCP HTTP: burst of requests an idle identity may make',
  mcpJobDetails: 'MCP: job details a non-admin identity may read: own or all',
  mcpCapacity: 'MCP utilization: capacity per cluster as JSON {"name": {"nodes": N, "cores": N, "gpus": N}}',
  mcpApprovalThreshold: 'MCP actions: bulk actions on more jobs than this need an approver',
  mcpOwnApprovalThreshold: "MCP actions: bulk actions on more of the caller's own jobs than this need an approver",
  mcpActionTimeout: 'MCP actions: seconds to wait for the scheduler before answering pending',
  cluster: 'cluster name',
  source: 'scheduler source of the scribe: sim, flux or slurm',
  slurmPollInterval: 'Slurm: seconds between two squeue polls',
  slurmrestd: 'Slurm: slurmrestd URL to use instead of the CLIs',
  slurmrestdUser: 'Slurm: slurmrestd user name (default $USER)',
  slurmrestdToken: 'Slurm: slurmrestd JWT (default $SLURM_JWT)',
  slurmJobcompFile: 'Slurm: job completion log (jobcomp/filetxt) to read ends from without slurmdbd',
  fluxUri: 'Flux broker URI: local:///run/flux/local or ssh://[user@]host/path (default $FLUX_URI)',
  seed: 'simulator seed',
  simSpeed: 'simulator speed: simulated seconds per second',
  simJobs: 'simulator: stop submitting after this many jobs',
  simNodes: 'simulator: number of nodes',
  simEpoch: 'simulator: start of simulated time, seconds since 1970 (default: first start)',
  simScheduler: 'simulator: the scheduler it looks like, flux or slurm',
  simClock: 'simulator: wall (follow the wall clock after back-filling history) or paced (simSpeed x from simEpoch); default wall unless --sim-speed/--sim-epoch',
  simBackfillDays: 'simulator (clock wall): days of history a first start back-fills',
  simClusters: 'up: simulated clusters NAME:flux|slurm,... (a mixed center in one process)',
  logLevel: 'log level: debug, info, warn, error',
  metricsPort: 'scribe/project: serve /healthz and Prometheus /metrics on this port (default: off)',
  metricsHost: 'scribe/project: bind address of /healthz and /metrics',
  signingKeys: 'JSON file of HMAC signing keys per cluster (signs and verifies commands and events)',
  requireSignatures: 'refuse unsigned commands and quarantine unsigned events',
};

const KAFKA: ConfigKey[] = ['kafka', 'kafkaClientId', 'kafkaSsl', 'kafkaCa', 'kafkaSaslMechanism', 'kafkaUsername', 'kafkaPassword', 'kafkaPartitions'];
const STORE: ConfigKey[] = ['dataDir', 'database', 'clickhouseUrl', 'clickhouseUser', 'clickhousePassword', 'topicPrefix', ...KAFKA, 'logLevel', 'signingKeys', 'requireSignatures'];
/** Settings given as bare flags (`--kafka-ssl`), not `--flag <value>`. */
const SWITCHES: ConfigKey[] = ['kafkaSsl', 'requireSignatures'];
const MCP_AUTH: ConfigKey[] = ['mcpTokens', 'mcpOauthIssuer', 'mcpOauthJwksUrl', 'mcpOauthAudience', 'mcpOauthUserClaim', 'mcpOauthRolesClaim', 'mcpOauthScope'];
const HTTP: ConfigKey[] = ['httpHost', 'httpPort', ...MCP_AUTH, 'mcpPublicUrl', 'mcpAllowedHosts', 'mcpRateLimit', 'mcpRateBurst', 'mcpJobDetails', 'mcpCapacity', 'mcpApprovalThreshold', 'mcpOwnApprovalThreshold', 'mcpActionTimeout'];
const METRICS: ConfigKey[] = ['metricsPort', 'metricsHost'];
const SOURCE: ConfigKey[] = ['cluster', 'source', 'fluxUri', 'slurmPollInterval', 'slurmrestd', 'slurmrestdUser', 'slurmrestdToken', 'slurmJobcompFile', 'seed', 'simSpeed', 'simJobs', 'simNodes', 'simEpoch', 'simScheduler', 'simClock', 'simBackfillDays'];

function withSettings(cmd: Command, keys: ConfigKey[]): Command {
  for (const key of keys) {
    const spec = SWITCHES.includes(key) ? flagName(key) : `${flagName(key)} <value>`;
    cmd.addOption(new Option(spec, `${HELP[key]} [env ${envName(key)}]`));
  }
  return cmd.option('--config <file>', 'JSON config file [env JOBSCRIBE_CONFIG]');
}

function resolve(opts: Record<string, unknown>) {
  const flags: Partial<Record<ConfigKey, unknown>> = {};
  for (const key of CONFIG_KEYS) if (opts[key] !== undefined) flags[key] = opts[key];
  const config = loadConfig({ flags, configFile: opts.config as string | undefined });
  return { config, logger: createLogger(config.logLevel) };
}

let exitCode = 0;
const action =
  (fn: (opts: Record<string, unknown>) => Promise<number>) =>
  async (opts: Record<string, unknown>): Promise<void> => {
    exitCode = await fn(opts);
  };

export function buildProgram(): Command {
  const program = new Command('jobscribe')
    .description('Event-sourced job history for HPC schedulers, answerable by AI agents over MCP')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  withSettings(program.command('up').description('run simulator, scribe, embedded log, projector and MCP over HTTP in one process'), [...STORE, ...HTTP, ...SOURCE, 'simClusters']).action(
    action(async (o) => {
      const { config, logger } = resolve(o);
      return runUp(config, logger);
    }),
  );
  withSettings(program.command('scribe').description("publish a cluster's scheduler events to the event log"), [...STORE, ...SOURCE, ...METRICS]).action(
    action(async (o) => {
      const { config, logger } = resolve(o);
      return runScribeCommand(config, logger);
    }),
  );
  withSettings(program.command('project').description('project the event log into the ClickHouse read model'), [...STORE, ...METRICS]).action(
    action(async (o) => {
      const { config, logger } = resolve(o);
      return runProjectCommand(config, logger);
    }),
  );
  withSettings(
    program
      .command('mcp')
      .description('serve the MCP tools over stdio or Streamable HTTP')
      .option('--stdio', 'serve over stdin/stdout')
      .option('--http', 'serve over Streamable HTTP (default)'),
    [...STORE, ...HTTP],
  ).action(
    action(async (o) => {
      if (o.stdio && o.http) throw new ConfigError('mcp: choose --stdio or --http, not both');
      const { config, logger } = resolve(o);
      return runMcpCommand(config, logger, { stdio: Boolean(o.stdio) });
    }),
  );
  withSettings(
    program
      .command('replay')
      .description('re-project the log from an offset or a time; --rebuild projects into fresh tables and swaps them in')
      .option('--from-offset <n>', 'start at this offset on every partition')
      .option('--from-time <iso>', 'start at the first event published at or after this time')
      .option('--rebuild', 'project into fresh tables, swapped in when caught up')
      .option('--no-swap', 'with --rebuild: keep the fresh tables (suffix __rebuild) beside the live ones'),
    STORE,
  ).action(
    action(async (o) => {
      const { config, logger } = resolve(o);
      return runReplayCommand(config, logger, {
        fromOffset: o.fromOffset as string | undefined,
        fromTime: o.fromTime as string | undefined,
        rebuild: Boolean(o.rebuild),
        swap: o.swap !== false,
      });
    }),
  );
  withSettings(program.command('status').description('show log positions, projector lag and read-model counts').option('--json', 'print JSON'), STORE).action(
    action(async (o) => {
      const { config, logger } = resolve(o);
      return runStatusCommand(config, logger, { json: Boolean(o.json) });
    }),
  );
  withSettings(
    program
      .command('schema')
      .description('print the ClickHouse DDL; with --clickhouse-cluster, for a replicated server cluster (ON CLUSTER, Replicated engines, Distributed read tables)')
      .option('--clickhouse-cluster <name>', "the server's remote_servers cluster to create the tables ON CLUSTER"),
    ['database'],
  ).action(
    action(async (o) => {
      const { config } = resolve(o);
      process.stdout.write(schemaScript(config.database, o.clickhouseCluster as string | undefined));
      return 0;
    }),
  );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every usage error exits 2 (commander already printed it)
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`jobscribe: ${err.message}\n`);
      return 2;
    }
    const msg = err instanceof JobscribeError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`jobscribe: ${msg}\n`);
    return 1;
  }
}

void main(process.argv).then((code) => {
  process.exitCode = code;
  // Embedded engine threads may linger; exit explicitly once the command is done.
  setImmediate(() => process.exit(code));
});
