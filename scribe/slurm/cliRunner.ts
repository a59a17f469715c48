/**
 * Running Slurm's CLIs: the one narrow edge of scribe/slurm that starts processes. A
 * `CommandRunner` takes an argv and returns exit status and output; the default one spawns the
 * process (no shell) with a timeout and an abort signal. Tests inject a runner that answers with
 * captured outputs.
 *
 * Not here: what to run (poller.ts, actions.ts) and what the output means.
 */
import { spawn } from 'node:child_process';
import { JobscribeError } from '../../schemas/errors.js';

export interface CliResult {
  /** Exit status; null when the process was killed (timeout, abort). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface CommandOptions {
  /** Written to the process's stdin, then closed (sbatch reads its script there). */
  input?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra environment for this command (sacct runs with TZ=UTC). */
  env?: Record<string, string>;
  /**
   * Run with only BARE_ENV_KEYS of the environment (then `env`), not the scribe's whole one: for
   * sbatch, which exports it into the job, and for commands run as another user.
   */
  bareEnv?: boolean;
}

/** What a bare environment keeps: where the CLIs and the cluster's configuration are, and the locale. */
export const BARE_ENV_KEYS: readonly string[] = ['PATH', 'SLURM_CONF', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ'];

/** `env` reduced to BARE_ENV_KEYS. Pure. */
export function bareEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of BARE_ENV_KEYS) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

export type CommandRunner = (argv: readonly string[], opts?: CommandOptions) => Promise<CliResult>;

/** An error at the Slurm edge: a CLI that could not run, timed out, or printed something unreadable. */
export class SlurmError extends JobscribeError {
  constructor(message: string, opts: { code?: string; retriable?: boolean; cause?: unknown } = {}) {
    super(message, { code: opts.code ?? 'slurm', retriable: opts.retriable ?? true, cause: opts.cause });
  }
}

export interface SpawnRunnerOptions {
  /** Added to the scribe's environment (e.g. SLURM_CONF). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Default timeout per command (ms). */
  timeoutMs?: number;
  /** Output above this many bytes kills the process (default 256 MiB: squeue --json of a big cluster). */
  maxBytes?: number;
}

/** Runs commands with child_process.spawn: no shell, a timeout (SIGTERM, then SIGKILL 2 s later). */
export function spawnRunner(options: SpawnRunnerOptions = {}): CommandRunner {
  const env = { ...process.env, ...options.env };
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  return (argv, opts = {}) =>
    new Promise((resolve, reject) => {
      const [file, ...args] = argv;
      if (!file) return reject(new SlurmError('empty command', { retriable: false }));
      if (opts.signal?.aborted) return resolve({ code: null, stdout: '', stderr: 'aborted', timedOut: false });
      const base = opts.bareEnv ? bareEnvironment(env) : env;
      const child = spawn(file, args, { env: opts.env ? { ...base, ...opts.env } : base, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      let timedOut = false;
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const kill = () => {
        child.kill('SIGTERM');
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), 2000);
      };
      const timeoutMs = opts.timeoutMs ?? options.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      const onAbort = () => kill();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const collect = (into: Buffer[]) => (b: Buffer) => {
        bytes += b.length;
        if (bytes > maxBytes) kill();
        else into.push(b);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      child.stdin.on('error', () => undefined); // the command may exit before reading its input
      child.stdin.end(opts.input ?? '');
      const finish = () => {
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        finish();
        const missing = e.code === 'ENOENT';
        const hint = file === 'runuser' ? "util-linux's runuser, through which a root scribe runs each user's commands, must be on PATH" : 'is Slurm installed and on PATH?';
        reject(new SlurmError(missing ? `${file}: command not found (${hint})` : `${file}: ${e.message}`, {
          code: missing ? 'slurm_cli_missing' : 'slurm',
          retriable: !missing,
          cause: e,
        }));
      });
      child.on('close', (code) => {
        if (settled) return;
        settled = true;
        finish();
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
      });
    });
}

/** Runs a query command and returns its stdout, or throws a SlurmError with Slurm's message. */
export async function runQuery(run: CommandRunner, argv: readonly string[], opts: CommandOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.timedOut) throw new SlurmError(`${argv[0]} timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s`, { code: 'slurm_timeout' });
  if (r.code !== 0) {
    const msg = firstLine(r.stderr) || firstLine(r.stdout) || `exit status ${r.code}`;
    throw new SlurmError(`${argv[0]} failed: ${msg}`, { code: r.code === null ? 'slurm_killed' : 'slurm_failed' });
  }
  return r.stdout;
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}
