/**
 * deploy/compose: the compose file is valid for the Compose tool (`docker compose config`, or
 * Debian's `docker-compose`; no engine is needed for that), names the five services of the split
 * deployment, publishes the MCP port on loopback only, and every command, setting and file it
 * gives jobscribe is one jobscribe accepts. Without a Compose tool the config check is skipped
 * loudly, and FAILS under CI=true (.ci/run installs docker-compose when none is present).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokensFile } from '../../mcp/auth.js';
import { CONFIG_KEYS, envName } from '../../schemas/config.js';
import { REPO_ROOT, runCli } from '../support/cli.js';
import { prerequisite } from '../support/prereq.js';

const DIR = join(REPO_ROOT, 'deploy', 'compose');
const FILE = join(DIR, 'compose.yaml');
const text = readFileSync(FILE, 'utf8');

/** `docker compose` (plugin) or `docker-compose` (standalone), whichever answers. */
function composeTool(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { encoding: 'utf8' });
    if (r.status === 0) return cmd;
  }
  return undefined;
}

let tool: string[] | undefined;
beforeAll(async () => {
  tool = composeTool();
  await prerequisite('Docker Compose (docker compose or docker-compose)', async () => (tool ? undefined : 'neither `docker compose` nor `docker-compose` runs (Debian: apt-get install docker-compose)'));
});

const compose = (...args: string[]) => spawnSync(tool![0]!, [...tool!.slice(1), '-p', 'jobscribe', '-f', FILE, ...args], { encoding: 'utf8' });

describe('compose file', () => {
  it('is valid for the Compose tool, with the five services of the split deployment', (ctx) => {
    if (!tool) return ctx.skip();
    const check = compose('config', '-q');
    expect({ status: check.status, stderr: check.stderr.trim() }).toEqual({ status: 0, stderr: '' });
    expect(compose('config', '--services').stdout.trim().split('\n').sort()).toEqual(['clickhouse', 'kafka', 'mcp', 'projector', 'scribe-sim']);
    const normalized = compose('config').stdout;
    // the MCP port is published on the host's loopback only (the demo token is in the repository)
    expect(normalized).toMatch(/host_ip: 127\.0\.0\.1|127\.0\.0\.1:8848:8848/);
  });

  it('gives jobscribe only subcommands, flags and settings it has', async () => {
    const commands = [...text.matchAll(/command: \[(.*)\]/g)].map((m) => JSON.parse(`[${m[1]}]`) as string[]);
    expect(commands.map((c) => c[0]).sort()).toEqual(['mcp', 'project', 'scribe']);
    for (const [sub, ...args] of commands) {
      const help = await runCli([sub!, '--help']);
      expect(help.code).toBe(0);
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(help.stdout, `jobscribe ${sub} ${flag}`).toContain(flag);
    }
    const known = new Set(CONFIG_KEYS.map(envName));
    const used = [...text.matchAll(/^\s+(JOBSCRIBE_[A-Z0-9_]+):/gm)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(8);
    for (const v of used) expect(known.has(v), `${v} is not a jobscribe setting`).toBe(true);
  });

  it('its tokens file is one the MCP service accepts, and the image copies what exists', () => {
    const tokens = loadTokensFile(join(DIR, 'mcp-tokens.json'));
    expect(tokens.map((t) => t.roles)).toEqual([['admin']]);
    const dockerfile = readFileSync(join(DIR, 'Dockerfile'), 'utf8');
    for (const [, src] of dockerfile.matchAll(/^COPY (\S+)/gm)) expect(existsSync(join(REPO_ROOT, src!)), `Dockerfile copies ${src}`).toBe(true);
    for (const [, files] of dockerfile.matchAll(/^COPY ((?:\S+ )+)\.\/$/gm)) for (const f of files!.trim().split(' ')) expect(existsSync(join(REPO_ROOT, f)), `Dockerfile copies ${f}`).toBe(true);
  });
});
