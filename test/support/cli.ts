/** Runs the built CLI (dist/deploy/cli.js; `npm test` builds first) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'deploy', 'cli.js');

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (npm test does it first)`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`jobscribe ${args.join(' ')} timed out\n${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd: REPO_ROOT });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          const m = out.match(re);
          if (m) return resolve(m);
          if (child.exitCode !== null) return reject(new Error(`process exited (${child.exitCode}) before ${re}\nstdout:\n${out}\nstderr:\n${err}`));
          if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}\nstdout:\n${out}\nstderr:\n${err}`));
          setTimeout(tick, 100);
        };
        tick();
      });
    },
  };
}

/** `jobscribe mcp --http` on a free loopback port over `dataDir` (unauthenticated loopback: no rate limit), and its endpoint URL. */
export async function startMcpHttp(dataDir: string): Promise<{ server: Running; url: string }> {
  const server = startCli(['mcp', '--http', '--http-port', '0', '--log-level', 'warn', '--data-dir', dataDir]);
  const url = (await server.waitFor(/MCP endpoint: (http:\/\/\S+\/mcp)/, 60_000))[1]!;
  return { server, url };
}

/** Stops a started CLI (SIGTERM) and waits for it to exit; nothing when it never started. */
export async function stopCli(running: Running | undefined): Promise<void> {
  if (!running) return;
  running.child.kill('SIGTERM');
  await running.exited;
}

export async function waitUntil<T>(fn: () => Promise<T | undefined | false>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - started > (opts.timeoutMs ?? 60_000)) {
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}
