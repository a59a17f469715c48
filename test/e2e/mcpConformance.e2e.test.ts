/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, a pinned devDependency)
 * against `jobscribe mcp --http` serving a simulated data directory. Every server scenario the
 * suite knows (`--suite all`) runs; test/conformance/expected-failures.yml lists the ones written
 * for the SDKs' fixture server, each with its reason. The test fails on a new failure, on a
 * listed scenario that now passes (stale entry), on a scenario that did not run, and on an
 * applicable scenario that "passes" without a single successful check.
 *
 * The suite needs Node >= 22 (test/support/node24.ts finds one); without it the suite is skipped
 * loudly locally and fails under CI=true.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startMcpHttp, stopCli, type Running } from '../support/cli.js';
import { packageBin, requireToolsNode } from '../support/node24.js';
import { prepareSimDataDir, type SimDataDir } from '../support/simDataDir.js';

const BASELINE = join(REPO_ROOT, 'test', 'conformance', 'expected-failures.yml');
/** Scenarios that test what every MCP server with jobscribe's features must do: never baselined. */
const APPLICABLE = ['server-initialize', 'ping', 'tools-list', 'logging-set-level', 'resources-list', 'prompts-list', 'dns-rebinding-protection'];

interface Check {
  id: string;
  /** SUCCESS, FAILURE, WARNING, INFO, or a value of a newer suite. */
  status: string;
  errorMessage?: string;
  details?: { message?: string };
}

interface BaselineEntry {
  scenario: string;
  reason: string;
}

/** The `server:` list of the baseline file, with each entry's trailing `# reason`. */
function parseBaseline(text: string): BaselineEntry[] {
  const entries: BaselineEntry[] = [];
  let inServer = false;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) inServer = /^server:\s*(#.*)?$/.test(line);
    const m = /^\s+-\s+([a-z0-9-]+)\s*(?:#\s*(.*))?$/.exec(line);
    if (inServer && m) entries.push({ scenario: m[1]!, reason: (m[2] ?? '').trim() });
  }
  return entries;
}

/** Scenario names from `conformance list --server` ("  - name [versions]"). */
function parseScenarioList(stdout: string): string[] {
  return [...stdout.matchAll(/^\s+-\s+(\S+)\s+\[/gm)].map((m) => m[1]!);
}

/** The suite's own rule in baseline mode: any FAILURE or WARNING check fails the scenario. */
function problems(checks: Check[]): string[] {
  return checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? c.details?.message ?? ''}`);
}

let toolsNode: string | undefined;
let data: SimDataDir | undefined;
let server: Running | undefined;
let url = '';
const outDir = mkdtempSync(join(tmpdir(), 'jobscribe-conformance-'));

function conformance(args: string[], timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = packageBin('@modelcontextprotocol/conformance', 'conformance');
  return new Promise((resolve, reject) => {
    const child = spawn(toolsNode!, [bin, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`conformance ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  toolsNode = await requireToolsNode('MCP conformance');
  if (!toolsNode) return;
  data = await prepareSimDataDir();
  // Unauthenticated loopback: no rate limit applies (it limits authenticated identities), so the
  // suite's few hundred requests in seconds go through.
  ({ server, url } = await startMcpHttp(data.dir));
}, 180_000);

afterAll(async () => {
  await stopCli(server);
  data?.cleanup();
  rmSync(outDir, { recursive: true, force: true });
});

describe('MCP conformance suite against jobscribe mcp --http', () => {
  it('has a baseline that names only known, inapplicable scenarios, each with its reason', async (ctx) => {
    if (!toolsNode) return ctx.skip();
    const listed = await conformance(['list', '--server']);
    expect(listed.code, listed.stderr).toBe(0);
    const scenarios = parseScenarioList(listed.stdout);
    expect(scenarios.length, listed.stdout).toBeGreaterThan(20);
    expect(scenarios).toEqual(expect.arrayContaining(APPLICABLE));

    const baseline = parseBaseline(readFileSync(BASELINE, 'utf8'));
    expect(baseline.length).toBeGreaterThan(0);
    const names = baseline.map((e) => e.scenario);
    expect(new Set(names).size, 'duplicate baseline entries').toBe(names.length);
    expect(names.filter((n) => !scenarios.includes(n)), 'baseline entries the suite does not know').toEqual([]);
    expect(names.filter((n) => APPLICABLE.includes(n)), 'applicable scenarios may not be baselined').toEqual([]);
    expect(baseline.filter((e) => e.reason.length < 10).map((e) => e.scenario), 'baseline entries without a reason').toEqual([]);
  });

  it('passes every server scenario but the baselined ones, each of which still fails', async (ctx) => {
    if (!toolsNode) return ctx.skip();
    const scenarios = parseScenarioList((await conformance(['list', '--server'])).stdout);
    const baseline = new Set(parseBaseline(readFileSync(BASELINE, 'utf8')).map((e) => e.scenario));

    const run = await conformance(['server', '--url', url, '--suite', 'all', '--expected-failures', BASELINE, '--output-dir', outDir]);
    const log = `conformance stdout:\n${run.stdout}\nstderr:\n${run.stderr}\nserver stderr:\n${server!.stderr()}`;

    // One result directory per scenario: server-<scenario>-<ISO time with dashes>.
    const results = new Map<string, Check[]>();
    for (const d of readdirSync(outDir)) {
      const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(d);
      if (m) results.set(m[1]!, JSON.parse(readFileSync(join(outDir, d, 'checks.json'), 'utf8')) as Check[]);
    }
    expect([...results.keys()].sort(), log).toEqual([...scenarios].sort());

    const failing = new Map([...results].map(([s, checks]) => [s, problems(checks)] as const).filter(([, p]) => p.length > 0));
    const unexpected = [...failing].filter(([s]) => !baseline.has(s)).map(([s, p]) => `${s}: ${p.join('; ')}`);
    const stale = [...baseline].filter((s) => !failing.has(s));
    expect(unexpected, `new failures (fix the server, or baseline a fixture-only scenario with its reason)\n${log}`).toEqual([]);
    expect(stale, 'baselined scenarios that now pass: remove them from test/conformance/expected-failures.yml').toEqual([]);
    for (const s of APPLICABLE) {
      expect(results.get(s)!.filter((c) => c.status === 'SUCCESS').length, `${s} passed without a successful check`).toBeGreaterThan(0);
    }
    // The suite's own verdict agrees (it applies the same baseline).
    expect(run.code, log).toBe(0);
  }, 120_000);
});
