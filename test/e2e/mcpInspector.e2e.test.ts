/**
 * The MCP Inspector CLI (@modelcontextprotocol/inspector 2.x, `--cli`, a pinned devDependency)
 * drives jobscribe as an outside client would: over stdio (`jobscribe mcp --stdio`, spawned by
 * the Inspector) and over Streamable HTTP (`jobscribe mcp --http`), asking for the 2025-11-25
 * revision (`--protocol-era legacy`) and the 2026-07-28 one (`modern`). It lists the tools (the
 * same list the SDK client gets) and calls get_job with ids read straight from the data
 * directory's ClickHouse, by decimal id (--tool-args-json) and by Flux f58 id (--tool-arg);
 * an unknown job comes back as a tool error the Inspector reports with its exit code 5.
 *
 * The Inspector needs Node >= 22.19 (test/support/node24.ts finds one); without it the suite is
 * skipped loudly locally and fails under CI=true.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { toF58 } from '../../schemas/ids.js';
import { CLI, REPO_ROOT, startMcpHttp, stopCli, type Running } from '../support/cli.js';
import { packageBin, requireToolsNode } from '../support/node24.js';
import { prepareSimDataDir, readJobs, type SimDataDir } from '../support/simDataDir.js';

interface JobRow {
  id: string;
  cluster: string;
  user: string;
  state: string;
  queue: string;
}

interface Tool {
  name: string;
  inputSchema: unknown;
  annotations?: { readOnlyHint?: boolean };
}

type Era = 'legacy' | 'modern';
const ERAS: Era[] = ['legacy', 'modern'];
const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';

let toolsNode: string | undefined;
let data: SimDataDir | undefined;
let jobs: JobRow[] = [];
let http: Running | undefined;
// The Inspector keeps state under ~/.mcp-inspector: give it a throwaway home.
const inspectorHome = mkdtempSync(join(tmpdir(), 'jobscribe-inspector-home-'));

interface InspectorRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The one JSON object `--format json` prints on stdout. */
  json: { result?: Record<string, unknown>; error?: unknown };
}

function inspector(args: string[], timeoutMs = 60_000): Promise<InspectorRun> {
  const bin = packageBin('@modelcontextprotocol/inspector', 'mcp-inspector');
  return new Promise((resolve, reject) => {
    const child = spawn(toolsNode!, [bin, '--cli', '--format', 'json', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOME: inspectorHome, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inspector ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      let json: InspectorRun['json'];
      try {
        json = JSON.parse(stdout) as InspectorRun['json'];
      } catch {
        return reject(new Error(`inspector ${args.join(' ')} exited ${code} without one JSON object on stdout\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

const stdioTarget = () => ['--transport', 'stdio', '--', process.execPath, CLI, 'mcp', '--stdio', '--log-level', 'warn', '--data-dir', data!.dir];
const httpTarget = (url: string) => ['--transport', 'http', '--server-url', url];

async function sdkTools(transport: StdioClientTransport | StreamableHTTPClientTransport): Promise<Tool[]> {
  const client = new Client({ name: 'jobscribe-e2e-reference', version: '1' });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools;
  } finally {
    await client.close();
  }
}

/** tools/list through the Inspector equals the SDK client's list; get_job is read-only. */
async function expectToolList(target: string[], era: Era, reference: Tool[]): Promise<void> {
  const r = await inspector(['--protocol-era', era, '--method', 'tools/list', ...target]);
  expect(r.code, r.stderr).toBe(0);
  const tools = r.json.result!.tools as Tool[];
  expect(tools.map((t) => t.name)).toEqual(reference.map((t) => t.name));
  expect(tools.map((t) => t.inputSchema)).toEqual(reference.map((t) => t.inputSchema));
  expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['get_job', 'search_jobs', 'job_timeline', 'queue_summary']));
  expect(tools.find((t) => t.name === 'get_job')!.annotations?.readOnlyHint).toBe(true);
}

/** get_job through the Inspector answers the row the data directory holds. */
async function expectGetJob(target: string[], era: Era, job: JobRow, idArgs: string[]): Promise<void> {
  const r = await inspector(['--protocol-era', era, '--method', 'tools/call', '--tool-name', 'get_job', ...idArgs, ...target]);
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  const result = r.json.result!;
  expect(result.isError ?? false).toBe(false);
  expect((result.structuredContent as { job: unknown }).job).toMatchObject({
    job_id: job.id,
    job_id_f58: toF58(BigInt(job.id)),
    cluster: job.cluster,
    user: job.user,
    state: job.state,
    queue: job.queue,
  });
  // 2026-07-28 results carry the server's identity in _meta; 2025-11-25 ones do not.
  const meta = result._meta as Record<string, { name?: string }> | undefined;
  if (era === 'modern') expect(meta?.[SERVER_INFO_META]?.name).toBe('jobscribe');
  else expect(meta?.[SERVER_INFO_META]).toBeUndefined();
}

async function expectUnknownJob(target: string[]): Promise<void> {
  const known = new Set(jobs.map((j) => j.id));
  const missing = '1' + '0'.repeat(18); // larger than any simulated id
  expect(known.has(missing)).toBe(false);
  const r = await inspector(['--method', 'tools/call', '--tool-name', 'get_job', '--tool-args-json', JSON.stringify({ job_id: missing }), ...target]);
  expect(r.code, r.stderr).toBe(5); // the Inspector's exit code for a tool result with isError
  expect(r.json.result!.isError).toBe(true);
  expect(JSON.stringify(r.json.result!.content)).toContain(`no job ${missing}`);
}

beforeAll(async () => {
  toolsNode = await requireToolsNode('MCP Inspector CLI');
  if (!toolsNode) return;
  data = await prepareSimDataDir();
  const finished = await readJobs<JobRow>(data.dir, 'toString(job_id) AS id, cluster, user, state, queue', "state = 'completed'", 1);
  const failed = await readJobs<JobRow>(data.dir, 'toString(job_id) AS id, cluster, user, state, queue', "state = 'failed'", 1);
  jobs = [...finished, ...failed];
  expect(jobs.map((j) => j.state)).toEqual(['completed', 'failed']);
}, 180_000);

afterAll(async () => {
  await stopCli(http);
  data?.cleanup();
  rmSync(inspectorHome, { recursive: true, force: true });
});

describe('MCP Inspector CLI against jobscribe', () => {
  it('over stdio: lists the tools and calls get_job by decimal and by f58 id, in both protocol eras', async (ctx) => {
    if (!toolsNode) return ctx.skip();
    const reference = await sdkTools(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio', '--log-level', 'warn', '--data-dir', data!.dir], stderr: 'pipe' }));
    const [completed, failed] = jobs as [JobRow, JobRow];
    await expectToolList(stdioTarget(), 'legacy', reference);
    await expectGetJob(stdioTarget(), 'legacy', completed, ['--tool-args-json', JSON.stringify({ job_id: completed.id })]);
    await expectGetJob(stdioTarget(), 'modern', failed, ['--tool-arg', `job_id=${toF58(BigInt(failed.id))}`, `cluster=${failed.cluster}`]);
    await expectUnknownJob(stdioTarget());
  }, 120_000);

  it('over Streamable HTTP: lists the tools and calls get_job by decimal and by f58 id, in both protocol eras', async (ctx) => {
    if (!toolsNode) return ctx.skip();
    const started = await startMcpHttp(data!.dir);
    http = started.server;
    const url = started.url;
    const reference = await sdkTools(new StreamableHTTPClientTransport(new URL(url)));
    const [completed, failed] = jobs as [JobRow, JobRow];
    for (const era of ERAS) {
      const [byDecimal, byF58] = era === 'legacy' ? [completed, failed] : [failed, completed];
      await expectToolList(httpTarget(url), era, reference);
      await expectGetJob(httpTarget(url), era, byDecimal, ['--tool-args-json', JSON.stringify({ job_id: byDecimal.id })]);
      await expectGetJob(httpTarget(url), era, byF58, ['--tool-arg', `job_id=${toF58(BigInt(byF58.id))}`]);
    }
    await expectUnknownJob(httpTarget(url));
  }, 120_000);
});
