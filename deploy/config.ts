/**
 * Resolves the configuration once at start-up: flags > JOBSCRIBE_* environment > config file
 * (`--config FILE` or JOBSCRIBE_CONFIG, JSON) > defaults, validated by schemas/config.ts.
 * A bad value throws a ConfigError naming the setting, where it came from and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CONFIG_KEYS, ConfigSchema, envName, flagName, type Config, type ConfigKey } from '../schemas/config.js';
import { ConfigError } from '../schemas/errors.js';

type Origin = 'flag' | 'environment' | 'config file' | 'default';

export interface LoadConfigInput {
  /** Options as commander parsed them (camelCase keys); undefined means not given. */
  flags?: Partial<Record<ConfigKey, unknown>>;
  env?: NodeJS.ProcessEnv;
  configFile?: string;
}

export function loadConfig(input: LoadConfigInput = {}): Config {
  const env = input.env ?? process.env;
  const file = input.configFile ?? env.JOBSCRIBE_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const raw: Record<string, unknown> = {};
  const origin = new Map<ConfigKey, Origin>();
  for (const key of CONFIG_KEYS) {
    const candidates: [unknown, Origin][] = [
      [input.flags?.[key], 'flag'],
      [env[envName(key)] || undefined, 'environment'],
      [fromFile[key], 'config file'],
    ];
    const found = candidates.find(([value]) => value !== undefined);
    if (found) {
      raw[key] = found[0];
      origin.set(key, found[1]);
    }
  }
  const unknownKeys = Object.keys(fromFile).filter((k) => !(CONFIG_KEYS as string[]).includes(k));
  if (unknownKeys.length > 0) {
    throw new ConfigError(`config file ${file}: unknown setting(s) ${unknownKeys.join(', ')}; known: ${CONFIG_KEYS.join(', ')}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, origin));
  return withDerivedDefaults(parsed.data, new Set(origin.keys()));
}

/** The demo center `up` simulates when nothing says otherwise: a Flux and a Slurm cluster. */
export const DEMO_CENTER = 'fluke:flux,slurmy:slurm';

/**
 * Defaults that depend on what else was given. The simulator follows the wall clock unless a speed
 * or a start was asked for; and on that clock `up` simulates the demo center (two clusters) unless
 * a cluster, a scheduler or the clusters were named.
 */
export function withDerivedDefaults(config: Config, given: ReadonlySet<ConfigKey>): Config {
  const simClock = config.simClock ?? (given.has('simSpeed') || given.has('simEpoch') ? 'paced' : 'wall');
  const demo = config.source === 'sim' && simClock === 'wall' && !['cluster', 'simScheduler', 'simClusters'].some((k) => given.has(k as ConfigKey));
  return { ...config, simClock, ...(demo && { simClusters: DEMO_CENTER }) };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path} cannot be read: ${(err as Error).message}`);
  }
  try {
    const data = JSON.parse(text) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('expected a JSON object');
    return data as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not a JSON object of settings: ${(err as Error).message}`);
  }
}

function describeIssues(error: z.ZodError, origin: Map<ConfigKey, Origin>): string {
  return error.issues
    .map((issue) => {
      const key = issue.path[0] as ConfigKey;
      const where = origin.get(key) ?? 'default';
      return `invalid setting ${key} (${flagName(key)} / ${envName(key)}, from ${where}): ${issue.message}`;
    })
    .join('\n');
}
