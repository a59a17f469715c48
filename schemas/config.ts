/**
 * The whole jobscribe configuration as one zod schema. Every setting can come from a flag
 * (`--data-dir`), the environment (`JOBSCRIBE_DATA_DIR`) or a JSON config file (`"dataDir"`);
 * flags win over the environment, which wins over the file, which wins over these defaults.
 * deploy/config.ts does the resolving; this file only says what is allowed.
 */
import { z } from 'zod';
import { ClusterIdSchema } from './ids.js';

const port = z.coerce.number().int('must be a whole number').min(0).max(65535);
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a SQL identifier: letters, digits, "_"');

const count = z.number().int('must be a whole number').min(0);
const CapacitySchema = z.record(
  ClusterIdSchema,
  z.strictObject({ nodes: count, cores: count, gpus: count.optional() }, { error: 'each cluster needs {"nodes": N, "cores": N, "gpus"?: N}' }),
  { error: 'must be JSON such as {"tioga": {"nodes": 32, "cores": 2048, "gpus": 128}}' },
);

export const ConfigSchema = z.object({
  /** Where the embedded ClickHouse, the embedded log and scribe checkpoints live. */
  dataDir: z.string().min(1).default('.data'),
  /** ClickHouse database holding the read model (and the embedded log). */
  database: identifier.default('jobscribe'),
  /** A ClickHouse server instead of the embedded engine, e.g. http://127.0.0.1:8123. */
  clickhouseUrl: z.url('must be a URL such as http://127.0.0.1:8123').optional(),
  clickhouseUser: z.string().optional(),
  clickhousePassword: z.string().optional(),
  /** Kafka bootstrap brokers (host:port, comma-separated): use Kafka instead of the embedded log. */
  kafka: z
    .string()
    .regex(/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/, 'must be host:port[,host:port...]')
    .optional(),
  kafkaClientId: z.string().min(1).default('jobscribe'),
  /** TLS to the brokers (system CAs, or kafkaCa). */
  kafkaSsl: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(false),
  /** CA certificate for TLS: a PEM file path or PEM text. */
  kafkaCa: z.string().optional(),
  kafkaSaslMechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  kafkaUsername: z.string().optional(),
  kafkaPassword: z.string().optional(),
  /** Partitions of the topics jobscribe creates (fixed once created: it decides per-job order). */
  kafkaPartitions: z.coerce.number().int('must be a whole number').min(1).max(1000).default(6),
  /** Topics are `<prefix>.<cluster>.events` and `<prefix>.<cluster>.commands`. */
  topicPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 of letters, digits, "-", "_"').default('jobscribe'),
  /** MCP over HTTP: address and port (port 0 picks a free one). */
  httpHost: z.string().min(1).default('127.0.0.1'),
  httpPort: port.default(8848),
  /** MCP HTTP: a JSON file of bearer tokens `[{ name, token_sha256 | token, user?, roles? }]` (README: Authentication). */
  mcpTokens: z.string().min(1).optional(),
  /** MCP HTTP OAuth: the authorization server's issuer; a token's `iss` must equal it. */
  mcpOauthIssuer: z.string().min(1).optional(),
  /** MCP HTTP OAuth: the issuer's JWKS (signing keys) URL; https, or http on a loopback host. */
  mcpOauthJwksUrl: z.url('must be a URL such as https://idp.example.org/jwks').optional(),
  /** MCP HTTP OAuth: the audience a token's `aud` must contain; default mcpPublicUrl, else the served URL. */
  mcpOauthAudience: z.string().min(1).optional(),
  /** MCP HTTP OAuth: the claim holding the scheduler user name (a dotted path reaches a nested claim). */
  mcpOauthUserClaim: z.string().min(1).default('preferred_username'),
  /** MCP HTTP OAuth: the claim holding roles such as admin (an array, or a space-separated string). */
  mcpOauthRolesClaim: z.string().min(1).default('roles'),
  /** MCP HTTP OAuth: a scope every token must carry (403 insufficient_scope otherwise); none when unset. */
  mcpOauthScope: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be one scope token: no spaces or quotes').optional(),
  /** MCP HTTP: the URL clients use for the MCP endpoint (behind a proxy, or on 0.0.0.0); the OAuth resource. */
  mcpPublicUrl: z.url('must be a URL such as https://jobs.example.org/mcp').optional(),
  /** MCP HTTP: more Host/Origin names to accept besides loopback names, comma-separated (DNS rebinding guard). */
  mcpAllowedHosts: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === 'string' ? v.split(',') : v).map((h) => h.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/, 'must be host names (no scheme or port), comma-separated')))
    .optional(),
  /** MCP HTTP: requests per minute per authenticated identity (0: no limit); refused requests get 429. */
  mcpRateLimit: z.coerce.number().int('must be a whole number').min(0).default(600),
  /** MCP HTTP: requests an idle identity may make at once before mcpRateLimit applies. */
  mcpRateBurst: z.coerce.number().int('must be a whole number').min(1).default(100),
  /**
   * MCP utilization: each cluster's capacity, e.g. {"tioga": {"nodes": 32, "cores": 2048, "gpus": 128}}
   * (JSON; a flag or env value is JSON text). Clusters without an entry use the capacity their jobs show.
   */
  mcpCapacity: z
    .preprocess((v) => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return v; // not JSON: the schema says what is expected
      }
    }, CapacitySchema)
    .optional(),
  /** MCP: whose job details a non-admin identity may read: `own` jobs only, or `all`. */
  mcpJobDetails: z.enum(['own', 'all']).default('own'),
  /** MCP actions: a bulk action on more jobs than this waits for a second identity's approval (approve_command). */
  mcpApprovalThreshold: z.coerce.number().int('must be a whole number').min(0).default(10),
  /** MCP actions: the same for a bulk action on only the caller's own jobs (its scheduler user owns every one). */
  mcpOwnApprovalThreshold: z.coerce.number().int('must be a whole number').min(0).default(200),
  /** MCP actions: seconds an action tool waits for the scribe's result before answering `pending`. */
  mcpActionTimeout: z.coerce.number().min(0).max(600).default(10),
  /** The scribe's cluster name. */
  cluster: ClusterIdSchema.default('sim'),
  /** Scheduler source of a scribe: the simulator, a Flux instance (see fluxUri), or Slurm. */
  source: z.enum(['sim', 'flux', 'slurm']).default('sim'),
  /** Flux: local:///run/flux/local or ssh://[user@]host/<socket path>; default $FLUX_URI. */
  fluxUri: z
    .string()
    .regex(/^(local|ssh):\/\//, 'must be local:///path/to/socket or ssh://[user@]host/path/to/socket')
    .optional(),
  /** Slurm: seconds between two squeue polls. */
  slurmPollInterval: z.coerce.number().min(0.2, 'must be at least 0.2 seconds').max(3600).default(5),
  /** Slurm: read jobs and act through slurmrestd at this URL instead of the CLIs (sacct stays a CLI). */
  slurmrestd: z.url('must be a URL such as http://127.0.0.1:6820').optional(),
  slurmrestdUser: z.string().optional(),
  /** JWT for slurmrestd (X-SLURM-USER-TOKEN); also read from SLURM_JWT. */
  slurmrestdToken: z.string().optional(),
  /** Slurm: the job completion log (JobCompType=jobcomp/filetxt, JobCompLoc), read for ends when sacct has none (no slurmdbd). */
  slurmJobcompFile: z.string().min(1).optional(),
  /** Simulator: seed, speed (simulated seconds per second), size and an optional job budget. */
  seed: z.coerce.number().int('must be a whole number').min(0).max(2 ** 32 - 1).default(1),
  simSpeed: z.coerce.number().positive('must be above 0').max(1_000_000).default(60),
  simJobs: z.coerce.number().int('must be a whole number').min(1).optional(),
  simNodes: z.coerce.number().int('must be a whole number').min(1).max(4096).default(16),
  /** Simulator: start of simulated time (seconds since the epoch); default: when first started (paced), simBackfillDays before it (wall). */
  simEpoch: z.coerce.number().min(0, 'must be seconds since 1970').optional(),
  /**
   * Simulator clock. `wall`: simulated time follows the wall clock, never ahead of now; a first
   * start back-fills simBackfillDays of a busy center's history (submissions follow the working
   * day, queues build up and drain), then continues in real time. `paced`: simSpeed simulated
   * seconds per second from simEpoch, the classic constant-rate workload (tests, benchmarks).
   * Default (deploy/config.ts): paced when simSpeed or simEpoch is given, else wall.
   */
  simClock: z.enum(['wall', 'paced']).optional(),
  /** Simulator (clock wall): days of history a first start back-fills. */
  simBackfillDays: z.coerce.number().min(0).max(60, 'at most 60 days').default(7),
  /** Simulator: which scheduler the simulated cluster looks like (Flux journal events or the Slurm source's events). */
  simScheduler: z.enum(['flux', 'slurm']).default('flux'),
  /** `up`: a simulated center, one scribe per cluster in one process: "fluke:flux,slurmy:slurm" (default: the one `cluster`). */
  simClusters: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}:(flux|slurm)(,[A-Za-z0-9][A-Za-z0-9_-]{0,63}:(flux|slurm))*$/, 'must be NAME:flux|slurm pairs, comma-separated, e.g. fluke:flux,slurmy:slurm')
    .optional(),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** scribe / project: serve /healthz and Prometheus /metrics on this port (off when unset; 0 picks a free one). */
  metricsPort: port.optional(),
  /** scribe / project: address of the /healthz and /metrics server (loopback unless set). */
  metricsHost: z.string().min(1).default('127.0.0.1'),
  /** JSON file of HMAC keys per cluster (schemas/commands/v1/signingKeys.ts): sign and verify commands and events. */
  signingKeys: z.string().min(1).optional(),
  /** Refuse unsigned commands (scribe) and quarantine unsigned events (projector). */
  requireSignatures: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
    .transform((v) => v === true || v === 'true' || v === '1')
    .default(false),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigKey = keyof Config;
export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as ConfigKey[];

/** `dataDir` → `--data-dir`. */
export function flagName(key: ConfigKey): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** `dataDir` → `JOBSCRIBE_DATA_DIR`. */
export function envName(key: ConfigKey): string {
  return 'JOBSCRIBE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
