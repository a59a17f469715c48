/**
 * Composition helpers: turn a resolved Config into the concrete ClickHouse client, event log
 * and scheduler source. The only module (with clickhouse.ts) that knows which implementation
 * backs each interface.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Config } from '../schemas/config.js';
import { eventsTopicPattern, type EventLog } from '../log/eventLog.js';
import { createEmbeddedLog } from '../log/embedded.js';
import { createKafkaLog, type KafkaLogOptions } from '../log/kafka.js';
import type { SchedulerSource } from '../scribe/source.js';
import { createSimSource } from '../scribe/sim/index.js';
import { createFluxSource } from '../scribe/flux/index.js';
import { createSlurmSource } from '../scribe/slurm/index.js';
import { ConfigError } from '../schemas/errors.js';
import { fileCheckpointStore } from '../scribe/checkpoint.js';
import type { ScribeOptions } from '../scribe/scribe.js';
import { loadKeyring, type SignaturePolicy } from '../log/signing.js';
import { openClickHouse, type OpenedClickHouse } from './clickhouse.js';
import type { Logger } from './logger.js';
import { loadTokensFile } from '../mcp/auth.js';
import { checkHttpOptions, type HttpServerOptions } from '../mcp/http.js';
import { createLogCommandSender, keyringTokenKeys } from '../mcp/commandSender.js';
import type { McpDeps } from '../mcp/server.js';

export const VERSION = '0.1.0';

export interface Stores {
  ch: OpenedClickHouse;
  log: EventLog;
  close(): Promise<void>;
}

export function openClickHouseFor(config: Config): Promise<OpenedClickHouse> {
  return openClickHouse({
    dataDir: config.dataDir,
    url: config.clickhouseUrl,
    username: config.clickhouseUser,
    password: config.clickhousePassword,
    database: config.database,
  });
}

export function kafkaOptions(config: Config, logger?: Logger): KafkaLogOptions {
  const opts: KafkaLogOptions = {
    brokers: (config.kafka ?? '').split(','),
    clientId: config.kafkaClientId,
    numPartitions: config.kafkaPartitions,
  };
  if (config.kafkaSsl || config.kafkaCa) opts.ssl = config.kafkaCa ? { ca: config.kafkaCa } : true;
  if (config.kafkaSaslMechanism) {
    if (!config.kafkaUsername || config.kafkaPassword === undefined) {
      throw new ConfigError('invalid setting kafkaSaslMechanism: SASL needs kafkaUsername and kafkaPassword (--kafka-username, --kafka-password)');
    }
    opts.sasl = { mechanism: config.kafkaSaslMechanism, username: config.kafkaUsername, password: config.kafkaPassword };
  }
  if (logger) opts.logger = (level, message) => logger[level](`kafka: ${message}`);
  return opts;
}

function openLog(config: Config, ch: OpenedClickHouse | undefined, logger?: Logger): EventLog {
  if (config.kafka) return createKafkaLog(kafkaOptions(config, logger));
  // Its consumers wait out a failing ClickHouse (a full disk) with warnings instead of stopping `up`.
  // Connections of its own (embedded chDB runs one query at a time per connection): publishes,
  // and the consumers' reads, never queue behind each other nor behind the projector's inserts
  // and the read-model queries. (A server gets the one client, which runs queries side by side.)
  return createEmbeddedLog(ch!.connect('log'), config.database, { readClient: ch!.connect('log-reads'), ...(logger && { onWarning: (m: string) => logger.warn(m) }) });
}

/** The ClickHouse read model and the event log (Kafka, or the embedded log inside ClickHouse). */
export async function openStores(config: Config, logger?: Logger): Promise<Stores> {
  const ch = await openClickHouseFor(config);
  const log = openLog(config, ch, logger);
  return {
    ch,
    log,
    async close() {
      await log.close();
      await ch.close();
    },
  };
}

/** What a scribe needs: only the log. On Kafka that opens no ClickHouse at all. */
export async function openScribeLog(config: Config, logger?: Logger): Promise<{ log: EventLog; close(): Promise<void> }> {
  if (config.kafka) {
    const log = openLog(config, undefined, logger);
    return { log, close: () => log.close() };
  }
  return openStores(config, logger);
}

/**
 * The simulator options a config describes (a saved checkpoint overrides them on restart). On the
 * wall clock the cluster is a busy center's (centerWorkload); paced, the classic constant rate.
 */
export function simOptions(config: Config) {
  const wall = config.simClock === 'wall';
  const now = Math.floor(Date.now() / 1000);
  return {
    seed: config.seed,
    cluster: config.cluster,
    speed: config.simSpeed,
    clock: wall ? ('wall' as const) : ('paced' as const),
    nodes: config.simNodes,
    epoch: config.simEpoch ?? (wall ? now - Math.round(config.simBackfillDays * 86400) : now),
    scheduler: config.simScheduler,
    ...(wall && centerWorkload(config.simNodes)),
    ...(config.simJobs !== undefined ? { maxJobs: config.simJobs } : {}),
  };
}

/**
 * A believable center's load for `nodes` nodes. Measured on 16 nodes over a simulated week
 * (test/unit/demoLoad.unit.test.ts): core utilization 0.77-0.81 on weekdays, 0.5-0.6 at the
 * weekend; median wait about 1 h in batch, 10 h in gpu (the scarce queue), none in debug; the
 * backlog drains at night. Submissions follow the working day at 2.6 a minute per 16 nodes on
 * average; one debug node per 16, three gpu nodes per 16; the scheduler looks 16 jobs deep.
 */
export function centerWorkload(nodes: number) {
  const gpuNodes = nodes >= 4 ? Math.max(1, Math.round((nodes * 3) / 16)) : 0;
  const debugNodes = nodes >= 8 ? Math.max(1, Math.round(nodes / 16)) : 0;
  // A simulated Slurm cluster is polled every 30 simulated seconds (the real scribe: every 5 s):
  // the same jobs, a sixth of the squeue work, so a week back-fills in seconds.
  return { diurnal: true, submitRate: (2.6 * nodes) / 16, gpuNodes, debugNodes, schedDepth: 16, pollInterval: 30 };
}

export function createSource(config: Config): SchedulerSource {
  switch (config.source) {
    case 'sim':
      return createSimSource(simOptions(config));
    case 'flux': {
      const uri = config.fluxUri ?? process.env.FLUX_URI;
      if (!uri) throw new ConfigError('invalid setting fluxUri (--flux-uri / JOBSCRIBE_FLUX_URI): required with --source flux (or set FLUX_URI)');
      return createFluxSource({ uri, cluster: config.cluster });
    }
    case 'slurm': {
      const pollIntervalMs = config.slurmPollInterval * 1000;
      const jobcomp = config.slurmJobcompFile !== undefined ? { jobcompFile: config.slurmJobcompFile } : {};
      if (!config.slurmrestd) return createSlurmSource({ pollIntervalMs, ...jobcomp });
      const token = config.slurmrestdToken ?? process.env.SLURM_JWT;
      const user = config.slurmrestdUser ?? process.env.USER;
      if (!token || !user) {
        throw new ConfigError('invalid setting slurmrestd: needs slurmrestdUser (or $USER) and slurmrestdToken (or $SLURM_JWT)');
      }
      return createSlurmSource({ pollIntervalMs, ...jobcomp, rest: { url: config.slurmrestd, user, token } });
    }
  }
}

/**
 * The clusters `up` runs a scribe for: the configured one, or with `simClusters`
 * ("fluke:flux,slurmy:slurm") one simulated cluster per pair, seeds seed, seed+1, ...
 */
export function upClusters(config: Config): Config[] {
  if (!config.simClusters) return [config];
  if (config.source !== 'sim') throw new ConfigError(`invalid setting simClusters (--sim-clusters): runs simulated clusters only, not with source ${config.source}`);
  const pairs = config.simClusters.split(',').map((p) => p.split(':') as [string, 'flux' | 'slurm']);
  const names = pairs.map(([name]) => name);
  if (new Set(names).size !== names.length) throw new ConfigError(`invalid setting simClusters (--sim-clusters): cluster names repeat (${names.join(',')})`);
  return pairs.map(([cluster, simScheduler], i) => ({ ...config, cluster, source: 'sim' as const, simScheduler, seed: config.seed + i }));
}

/** One line saying what a cluster's source is. */
export function describeSource(config: Config): string {
  if (config.source === 'sim') {
    const clock = config.simClock === 'wall' ? 'real time after a back-fill' : `${config.simSpeed}x`;
    return `simulated ${config.simScheduler === 'slurm' ? 'Slurm' : 'Flux'}, seed ${config.seed}, ${clock}, ${config.simNodes} nodes`;
  }
  if (config.source === 'flux') return `Flux at ${config.fluxUri ?? process.env.FLUX_URI}`;
  return `Slurm${config.slurmrestd ? ` at ${config.slurmrestd}` : ''}`;
}

/** The scribe of the configured cluster and source, publishing to `log`. */
export function scribeOptions(config: Config, log: EventLog, signing: SignaturePolicy, signal: AbortSignal, logger?: Logger): ScribeOptions {
  const source = createSource(config);
  const opts: ScribeOptions = {
    cluster: config.cluster,
    source,
    log,
    topicPrefix: config.topicPrefix,
    checkpoints: fileCheckpointStore(join(config.dataDir, 'scribe', `${config.cluster}.checkpoint.json`)),
    scribeId: `${config.cluster}@${hostname()}`,
    version: VERSION,
    signal,
  };
  if (signing.keyring) opts.keyring = signing.keyring;
  // The scribe executes its cluster's commands (scribe/commandLoop.ts) when its source can act.
  if (source.act) {
    opts.commands = {
      ledgerPath: join(config.dataDir, 'scribe', `${config.cluster}.commands.jsonl`),
      requireSignatures: config.requireSignatures,
    };
    if (logger) {
      opts.commands.onWarning = (m) => logger.warn(m);
      opts.commands.onResult = (r) => logger.info(`command ${r.command_id}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
    }
  }
  return opts;
}

/** The warning for a secrets file that group or others may read (mode & 0o077), or undefined. */
export function looseModeWarning(setting: string, path: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return `WARNING: the ${setting} file ${path} is readable or writable by group or others (mode ${octal}): anyone who can read it can use or forge its secrets; chmod 600 ${path}`;
}

/** Prints looseModeWarning on stderr whatever the log level (the file was just read, so it exists). */
function warnIfLoose(setting: string, path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return;
  }
  const warning = looseModeWarning(setting, path, mode);
  if (warning) process.stderr.write(`jobscribe: ${warning}\n`);
}

/** Signature keys and policy from `signingKeys` / `requireSignatures`; reads the keys file (compute it once per command). */
export function signingPolicy(config: Config): SignaturePolicy {
  const policy: SignaturePolicy = { require: config.requireSignatures };
  if (config.requireSignatures && !config.signingKeys) {
    throw new ConfigError('invalid setting requireSignatures (--require-signatures / JOBSCRIBE_REQUIRE_SIGNATURES): needs signingKeys (--signing-keys FILE), the keys to check signatures with');
  }
  if (config.signingKeys) {
    policy.keyring = loadKeyring(config.signingKeys);
    warnIfLoose('signingKeys', config.signingKeys);
  }
  return policy;
}

/** Logs projector progress and per-partition lag every `everyMs`; returns a stop function. */
export function reportLag(log: EventLog, group: string, topicPrefix: string, logger: Logger, progress: () => string, everyMs = 10_000): () => void {
  const tick = async () => {
    try {
      const lag = await log.lag(group, eventsTopicPattern(topicPrefix));
      const total = lag.reduce((a, p) => a + p.lag, 0n);
      const behind = lag.filter((p) => p.lag > 0n).map((p) => `${p.topic}[${p.partition}]=${p.lag}`);
      logger.info(`${progress()}; projector lag ${total}${behind.length ? ` (${behind.slice(0, 8).join(' ')})` : ''}`);
    } catch (err) {
      logger.debug(`lag check failed: ${(err as Error).message}`);
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The MCP action tools' settings: commands go to `log`, signed with the configured keys. */
export function mcpActionDeps(config: Config, log: EventLog, signing: SignaturePolicy): Pick<McpDeps, 'commands' | 'confirmKeys' | 'approvalThreshold' | 'ownApprovalThreshold' | 'actionTimeoutMs'> {
  const { keyring } = signing;
  return {
    commands: createLogCommandSender({ log, topicPrefix: config.topicPrefix, ...(keyring && { keyring }) }),
    // With signing keys, every MCP instance sharing the keys file accepts the others' bulk confirmations.
    ...(keyring && { confirmKeys: keyringTokenKeys(keyring) }),
    approvalThreshold: config.mcpApprovalThreshold,
    ownApprovalThreshold: config.mcpOwnApprovalThreshold,
    actionTimeoutMs: config.mcpActionTimeout * 1000,
  };
}

/**
 * How `mcp --http` and `up` serve MCP over HTTP: bind, authentication, allowed hosts, rate limit.
 * Reads the tokens file and throws every ConfigError the server would (call it before opening stores).
 */
export function mcpHttpOptions(config: Config, logger?: Logger): HttpServerOptions {
  const { mcpOauthIssuer: issuer, mcpOauthJwksUrl: jwksUrl } = config;
  if ((issuer === undefined) !== (jwksUrl === undefined)) {
    throw new ConfigError('invalid setting mcpOauthIssuer / mcpOauthJwksUrl: OAuth needs both (--mcp-oauth-issuer, --mcp-oauth-jwks-url)');
  }
  const tokens = config.mcpTokens !== undefined ? loadTokensFile(config.mcpTokens) : undefined;
  if (config.mcpTokens !== undefined) warnIfLoose('mcpTokens', config.mcpTokens);
  const oauth =
    issuer !== undefined && jwksUrl !== undefined
      ? {
          issuer,
          jwksUrl,
          userClaim: config.mcpOauthUserClaim,
          rolesClaim: config.mcpOauthRolesClaim,
          ...(config.mcpOauthAudience !== undefined && { audience: config.mcpOauthAudience }),
          ...(config.mcpOauthScope !== undefined && { requiredScope: config.mcpOauthScope }),
          ...(logger && { logError: (m: string) => logger.error(m) }),
        }
      : undefined;
  const options: HttpServerOptions = {
    host: config.httpHost,
    port: config.httpPort,
    ...((tokens || oauth) && { auth: { ...(tokens && { tokens }), ...(oauth && { oauth }) } }),
    ...(config.mcpPublicUrl !== undefined && { publicUrl: config.mcpPublicUrl }),
    ...(config.mcpAllowedHosts !== undefined && { allowedHosts: config.mcpAllowedHosts }),
    rateLimit: { perMinute: config.mcpRateLimit, burst: config.mcpRateBurst },
  };
  checkHttpOptions(options);
  return options;
}
